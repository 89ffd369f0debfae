"""Progress bars appear on a terminal and never in a pipe, a file or a captured stream."""

import io
import json

import numpy as np

from slicerfm_backend import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_draws_on_a_terminal_and_nothing_elsewhere(monkeypatch):
    monkeypatch.delenv("SLICERFM_PROGRESS", raising=False)
    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        with progress.bar(total=4, desc="clicks", stream=stream) as bar:
            for _ in range(4):
                bar.update(1)
        assert ("4/4" in stream.getvalue()) is drawn
        assert ("\r" in stream.getvalue()) is drawn


def test_slicerfm_progress_off_silences_bars_on_a_terminal(monkeypatch):
    monkeypatch.setenv("SLICERFM_PROGRESS", "off")
    stream = Terminal()
    with progress.bar(total=2, stream=stream) as bar:
        bar.update(2)
    assert stream.getvalue() == ""


def test_stage_progress_is_a_bar_on_a_terminal_and_sparse_lines_elsewhere(monkeypatch):
    monkeypatch.delenv("SLICERFM_PROGRESS", raising=False)
    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        with progress.StageBar(stream) as stages:
            stages("demons", 0, 50)
            for done in range(1, 51):
                stages("demons", done, 50)
            stages("jacobian")
    assert "50/50" in terminal.getvalue() and "\r" in terminal.getvalue()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and lines[0] == "  demons 0/50" and "  demons 50/50" in lines
    assert lines[-1] == "  jacobian" and len(lines) < 10


def test_byte_downloads_show_sizes_in_bytes_on_a_terminal(monkeypatch):
    monkeypatch.delenv("SLICERFM_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", Terminal())
    bar_class = progress.terminal_tqdm()
    with bar_class(total=3 * 2**20, unit="B", unit_scale=True) as bar:
        bar.update(3 * 2**20)
    import sys

    assert "3.15M" in sys.stderr.getvalue()


def test_evaluate_registration_draws_its_plot(tmp_path):
    from slicerfm_backend.evaluation.plots import plot_registration

    report = {"labels": [1, 2], "dice_before": {"1": 0.5, "2": 0.4}, "dice_after": {"1": 0.9, "2": 0.8},
              "mean_dice_before": 0.45, "mean_dice_after": 0.85, "neg_jacobian_fraction": 0.0}
    path = plot_registration(report, str(tmp_path / "r.png"), "classic", {1: "one", 2: "two"})
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    json.dumps(report)  # the report it reads is the JSON one


def test_the_clicks_plot_marks_negative_clicks(tmp_path):
    from slicerfm_backend.evaluation.plots import plot_clicks

    result = {"dice": list(np.linspace(0.5, 0.9, 4)), "latency_s": [0.1, 0.2, 0.1, 0.3],
              "clicks": [{"positive": True}, {"positive": False}, {"positive": True}, {"positive": True}]}
    path = plot_clicks(result, str(tmp_path / "c.png"), "classic: spleen")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
