"""``slicerfm-backend benchmark``'s output: the report, its plots, the JSON beside it, the
comparison of two runs -- from figures built by the measurement modules' own helpers."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from slicerfm_backend.benchmark import cli as benchmark_cli
from slicerfm_backend.benchmark import compare, dice, protocol, pump, runner, sam_med3d
from slicerfm_backend.benchmark.machine import describe
from slicerfm_backend.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def an_update(engine_ms, roundtrip_ms, size=600, stages=None):
    """What the client returns for a click (the fields the measurements read)."""
    timings = {"decode": 0.1, "engine": engine_ms, "commit": 0.3, "encode": 0.5, "server": engine_ms + 1.0,
               **(stages or {})}
    return SimpleNamespace(timings_ms=timings, roundtrip_ms=roundtrip_ms, wire_bytes=size,
                           bbox=((0, 0, 0), (4, 5, 6)), mask=np.zeros((4, 5, 6), bool))


def a_protocol_section():
    plan = [("liver", (1, 2, 3), True)] * 4
    ball = [an_update(0.2, 6.0 + n) for n in range(4)]
    classic = [an_update(400.0 + n, 410.0 + n, 4000, {"engine.grid": 15.0, "engine.grow": 300.0}) for n in range(4)]
    figures = {"image": {"shape": [300, 512, 512], "dtype": "int16", "raw_bytes": 157286400, "seed": 0},
               "upload_s": 3.2, "heartbeat_ms": {"n": 29, "median": 4.0, "p90": 5.0, "min": 3.0, "max": 6.0},
               "engines": {"bench_ball": protocol.engine_figures(ball, plan),
                           "classic": protocol.engine_figures(classic, plan)}}
    figures["summary"] = protocol.headline(figures)
    return figures


def a_dice_section():
    result = {"dice": [0.7, 0.8, 0.9, 0.88, 0.93], "latency_s": [0.05] * 5,
              "clicks": [{"point_kji": [1, 2, 3], "positive": True}] * 5, "clicks_to": {"0.85": 3}}
    rows = {"spleen": {**dice.structure_figures(result, 5), "seconds": 1.0, "image": "x", "label_id": 1},
            "liver": {**dice.structure_figures(result, 5), "seconds": 1.0, "image": "x", "label_id": 5}}
    figures = {"clicks": 5, "engines": {"classic": rows}, "not_measured": {"sam-med3d": "no weights here"}}
    figures["summary"] = dice.headline(figures)
    return figures


def a_sam_section():
    def row(kind, encoder, decoder, roundtrip):
        return {"kind": kind, "segment": "organ1", "point_kji": [1, 2, 3], "positive": True,
                "roundtrip_ms": roundtrip, "response_bytes": 900,
                "timings_ms": {"engine.encoder": encoder, "engine.decoder": decoder,
                               "engine.total": encoder + decoder + 20, "engine": encoder + decoder + 21,
                               "server": encoder + decoder + 22}}

    clicks = [row("load+first", 12000.0, 40.0, 15500.0)] + [row("refine", 0.0, 40.0 + n, 70.0 + n) for n in range(4)]
    run = {"clicks": clicks, "groups": sam_med3d.group_table(clicks),
           "refinement_ratio": sam_med3d.refinement_ratio(clicks),
           "memory": {"after start-up": {"VmHWM": 80e6, "VmRSS": 80e6}, "at the end": {"VmHWM": 2.1e9, "VmRSS": 1e9}}}
    figures = {"device": "cpu", "torch": "2", "threads": 2, "runs": {
        "empty": run, "model": {"device": "cpu", "precision": "fp32", "prepare_ms": 50.0, "encoder_ms": 11500.0,
                                "decoder_ms": {"n": 10, "median": 39.0, "p90": 45.0, "min": 35.0, "max": 46.0}},
        "pipeline": {"one_crop": {"crops": 1,
                                  "pipeline_ms": {"n": 3, "median": 8.0, "p90": 9.0, "min": 7.0, "max": 9.0}}}}}
    figures["summary"] = sam_med3d.headline(figures)
    return figures


def a_codecs_section():
    def writers(ratio):
        return {name: {"bytes": int(1e6 * ratio * f), "encode_s": 0.01, "decode_s": 0.012, "speedup": s}
                for name, f, s in (("1.0", 1.0, 1.0), ("format 1", 0.95, 1.1), ("format 2", 0.9, 1.05))}

    return {"blosc2": "4", "c_blosc2": "3", "threads": 1, "clock": "thread CPU time", "repeats": 3,
            "phantom_floor": 0.336, "volumes": {
                "phantom": {"name": "phantom 300x512x512 int16", "raw_bytes": 1000000, "writers": writers(0.41)},
                "labels61": {"name": "label map, 61 labels, uint8", "raw_bytes": 1000000, "writers": writers(0.1)}},
            "summary": {"phantom_format2_ratio": 0.37}}


def a_registration_section():
    labels = [2, 3, 4]
    return {"classic": {"labels": labels, "dice_before": {"2": 0.5, "3": 0.6, "4": 0.4},
                        "dice_after": {"2": 0.8, "3": 0.75, "4": 0.7}, "mean_dice_before": 0.5,
                        "mean_dice_after": 0.75, "neg_jacobian_fraction": 0.0008, "runtime_s": 26.4, "cpu_s": 44.6,
                        "timings_s": {"preprocess": 0.3, "demons": 20.5, "jacobian": 5.2, "total": 26.4},
                        "command_wall_s": 31.0, "command_cpu_s": 50.0, "peak_rss_bytes": 1.25 * 2**30, "shrink": 1,
                        "label_names": {"2": "Left-Cerebral-White-Matter", "3": "Left-Cerebral-Cortex",
                                        "4": "Left-Lateral-Ventricle"}},
            "summary": {"classic_mean_dice_after": 0.75}}


def a_pump_section():
    times = {None: [(3.6, 0)], 0.0: [(5.0, 120)], 0.015: [(3.2, 79)]}
    rounds = {None: [(0.2, 0)], 0.0: [(1.45, 44)], 0.015: [(0.23, 8)]}
    figures = {"raw_bytes": 157286400, "interval_ms": 30, "default_wait_s": 0.015, "repeats": 1, "round_trips": 30,
               "upload": pump._rows(times, 0.03), "round_trip_rows": pump._rows(rounds, 0.03)}
    figures["summary"] = pump.headline(figures)
    return figures


@pytest.fixture
def a_document():
    document = runner.new_document("slicerfm-backend benchmark --quick", describe())
    measured = {"date": "2026-12-01T00:00:00Z", "seconds": 12.0, "load_before": 1.0, "load_after": 1.5,
                "quick": True, "machine": document["machine"]}
    for name, figures in (("protocol", a_protocol_section()), ("dice", a_dice_section()),
                          ("sam_med3d", a_sam_section()), ("codecs", a_codecs_section()),
                          ("registration", a_registration_section()), ("pump", a_pump_section())):
        document["sections"][name] = {"measured": dict(measured), "figures": figures}
    return document


def test_the_report_embeds_a_plot_per_measured_kind_and_says_what_was_not_measured(a_document, tmp_path):
    report = benchmark_cli.write_report(a_document, tmp_path)
    text = report.read_text()
    folder = tmp_path / "benchmarks"
    for name in ("dice_per_click.png", "latency_per_stage.png", "transfer_bytes.png", "registration_dice.png"):
        assert (folder / name).read_bytes()[:8] == PNG, name
        assert f"](benchmarks/{name})" in text, name
    assert "Not measured in this report: `--engines vista3d`" in text
    assert "Not measured yet: no GPU" in text
    assert "Refinement round trip / decoder: **median 1.72**" in text  # median of 70/40, 71/41, 72/42, 73/43
    assert "**Mean Dice at 5 clicks over the CT organs measured: 0.930**" in text
    assert "`sam-med3d`: not measured here — no weights here" in text
    assert "Left-Lateral-Ventricle (4): 0.700" in text
    assert "| `wait_s = 0.015` (default) | 3.20 = 1.6× faster | 79 | 0.230 = 6.3× faster | 8 |" in text
    saved = json.loads((folder / "figures.json").read_text())
    assert set(saved["sections"]) == set(a_document["sections"])


def test_every_section_says_when_where_and_under_what_load_it_was_measured(a_document, tmp_path):
    text = benchmark_cli.write_report(a_document, tmp_path).read_text()
    assert text.count("load average 1.0 → 1.5; quick run, 12 s") == len(a_document["sections"])


def test_compare_prints_the_ratio_of_each_headline_figure_and_marks_large_changes(a_document):
    newer = json.loads(json.dumps(a_document))
    newer["sections"]["protocol"]["figures"]["summary"]["classic_roundtrip_ms"] *= 2
    text = compare.report(a_document, newer)
    line = next(line for line in text.splitlines() if line.startswith("protocol.classic_roundtrip_ms"))
    assert line.split()[-2:] == ["2.000", ">>"]
    assert "dice.classic_mean_dice_at_5_ct" in text and "1.000" in text


def test_update_keeps_the_sections_this_run_did_not_measure(a_document):
    fresh = runner.new_document("again", a_document["machine"])
    fresh["sections"]["codecs"] = {"measured": {}, "figures": {"summary": {}}}
    merged = runner.merge(fresh, a_document)
    assert merged["sections"]["codecs"]["measured"] == {}
    assert set(merged["sections"]) == set(a_document["sections"])


def test_the_command_measures_a_section_writes_the_report_and_compares(a_data_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["benchmark", "--quick", "--sections", "codecs", "--out", str(out)]) == 0
    document = runner.load(out / "benchmarks" / "figures.json")
    section = document["sections"]["codecs"]
    assert section["measured"]["quick"] and section["measured"]["machine"]["cores"] >= 1
    assert section["figures"]["volumes"]["sample_ct"]["writers"]["format 2"]["bytes"] > 0
    assert "### Wire codecs in-process" in (out / "BENCHMARKS.md").read_text()
    capsys.readouterr()
    assert main(["benchmark", "--compare", str(out / "benchmarks" / "figures.json"),
                 "--against", str(out / "benchmarks" / "figures.json")]) == 0
    assert "codecs.sample_ct_format2_ratio" in capsys.readouterr().out


def test_a_failed_section_is_reported_and_the_others_are_still_written(monkeypatch, tmp_path):
    from slicerfm_backend.benchmark import sections

    def broken(quick, engines, log):
        raise RuntimeError("the server did not start")

    fine = sections.Section("codecs", "fine", (), lambda quick, engines, log: a_codecs_section())
    monkeypatch.setattr(sections, "SECTIONS", [sections.Section("dice", "broken", (), broken), fine])
    assert main(["benchmark", "--quick", "--out", str(tmp_path)]) == 1
    document = runner.load(tmp_path / "benchmarks" / "figures.json")
    assert set(document["sections"]) == {"codecs"}
    report = (tmp_path / "BENCHMARKS.md").read_text()
    assert "Not measured in this report: `slicerfm-backend benchmark --sections dice`" in report


def test_an_unknown_engine_or_section_is_a_usage_error(tmp_path, capsys):
    assert main(["benchmark", "--engines", "nonesuch", "--out", str(tmp_path)]) == 2
    assert main(["benchmark", "--sections", "nonesuch", "--out", str(tmp_path)]) == 2
    assert "unknown engine" in capsys.readouterr().err
    assert main(["benchmark", "--report-only", "--out", str(tmp_path / "empty")]) == 2


def test_gpu_results_join_the_report_as_their_own_section(a_document, tmp_path):
    gpu = {"measured": {"date": "2026-12-02T00:00:00Z", "seconds": 300.0, "load_before": 0.1, "load_after": 0.2,
                        "quick": False, "machine": a_document["machine"]},
           "figures": {"device_name": "NVIDIA H200", "cuda": "13.0", "torch": "2.11",
                       "sam_med3d": {"precisions": {"bf16": {"encoder_ms": 30.0, "decoder_median_ms": 4.0,
                                                             "gpu_peak_bytes": 2**30}}},
                       "peak_gpu_bytes": {"SAM-Med3D encoder+decoder (bf16)": 2**30}, "skipped": {}, "summary": {}}}
    out = tmp_path / "report"
    benchmark_cli.write_report(a_document, out)
    (tmp_path / "gpu.json").write_text(json.dumps(gpu))
    assert main(["benchmark", "--report-only", "--gpu-results", str(tmp_path / "gpu.json"), "--out", str(out)]) == 0
    text = (out / "BENCHMARKS.md").read_text()
    assert "NVIDIA H200 (CUDA 13.0" in text and "| bf16 | 30.0 | 4.0 | 1.00 GiB |" in text
    assert (out / "benchmarks" / "gpu.png").read_bytes()[:8] == PNG


def a_classic_suite_section():
    """Two structures of the issue-18 suite: one where a click hurts, one where none does."""
    from slicerfm_backend.benchmark import classic_suite
    from slicerfm_backend.evaluation.suite import figures as structure_figures
    from slicerfm_backend.evaluation.suite import summarise

    def row(name, group, dices):
        return {"name": name, "group": group, "label_id": 1, "image": "x", "label": "y", "modality": "MR",
                **structure_figures(dices, [0.1] * len(dices)), "seconds": 1.0}

    caudate = [0.4, 0.6, 0.7, 0.7, 0.7, 0.3, 0.5, 0.6, 0.6, 0.6]
    edema = [0.6, 0.7, 0.72, 0.73, 0.74, 0.75, 0.76, 0.77, 0.77, 0.78]
    structures = {"brain/Right-Caudate": row("Right-Caudate", "brain", caudate),
                  "flair/flair_edema": row("flair_edema", "flair", edema)}
    groups = summarise(structures)
    return {"engine": "classic", "clicks": 10, "in_process": False, "structures": structures, "groups": groups,
            "seconds": 20.0, "load_before": 1.0, "load_after": 1.5, "summary": classic_suite.headline(groups)}


def test_the_classic_suite_section_shows_each_group_against_its_goals_and_the_clicks_that_hurt(a_document, tmp_path):
    section = a_classic_suite_section()
    assert section["summary"]["brain_clicks_that_hurt"] == 1 and section["summary"]["flair_clicks_that_hurt"] == 0
    a_document["sections"]["classic_suite"] = {"measured": a_document["sections"]["dice"]["measured"],
                                               "figures": section}
    text = benchmark_cli.write_report(a_document, tmp_path).read_text()
    assert "### The classic engine on small, thin and MR structures (issue 18)" in text
    assert "| brain | Right-Caudate (1) | 0.400 | 0.700 | 0.700 | 0.600 | – | 0.400 |" in text
    assert "@5 ≥ 0.8: not met, @10 ≥ 0.85: not met" in text
    assert "| flair | 1 | 0.600 | 0.720 | 0.740 | 0.780 |" in text


def test_a_run_stopped_part_way_keeps_the_sections_it_measured_and_update_goes_on(monkeypatch, tmp_path):
    from slicerfm_backend.benchmark import sections

    def stopped(quick, engines, log):  # the user presses Ctrl-C during the second section
        raise KeyboardInterrupt

    first = sections.Section("codecs", "first", (), lambda quick, engines, log: a_codecs_section())
    monkeypatch.setattr(sections, "SECTIONS", [first, sections.Section("dice", "stopped", (), stopped)])
    with pytest.raises(KeyboardInterrupt):
        main(["benchmark", "--quick", "--out", str(tmp_path)])
    assert set(runner.load(tmp_path / "benchmarks" / "figures.json")["sections"]) == {"codecs"}

    monkeypatch.setattr(sections, "SECTIONS", [first, sections.Section(
        "dice", "resumed", (), lambda quick, engines, log: a_codecs_section())])
    from slicerfm_backend.benchmark import report  # a dice report needs dice figures; the figures are the point here

    monkeypatch.setattr(report, "build", lambda document, drawn, folder: "")
    assert main(["benchmark", "--quick", "--sections", "dice", "--update", "--out", str(tmp_path)]) == 0
    assert set(runner.load(tmp_path / "benchmarks" / "figures.json")["sections"]) == {"codecs", "dice"}


def test_a_benchmark_ended_by_sigterm_stops_the_servers_it_started(a_data_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    command = [str(Path(sys.executable).parent / "slicerfm-backend"), "benchmark", "--quick", "--sections", "protocol",
               "--out", str(tmp_path / "report")]
    benchmark = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=dict(os.environ, SLICERFM_DATA=str(a_data_dir)))
    try:
        servers = []
        deadline = time.monotonic() + 120
        while not servers and benchmark.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            servers = [p for p in psutil.Process(benchmark.pid).children(recursive=True)
                       if "serve" in p.cmdline()]
        assert servers, "the benchmark never started a server"
        benchmark.send_signal(signal.SIGTERM)
        assert benchmark.wait(timeout=60) != 0
        gone, alive = psutil.wait_procs(servers, timeout=30)
        assert not alive, f"servers still running after the benchmark ended: {[p.pid for p in alive]}"
    finally:
        if benchmark.poll() is None:
            benchmark.kill()
