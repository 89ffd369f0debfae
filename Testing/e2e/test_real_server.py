"""End to end: a real `slicerfm-backend serve` process driven by the client on the sample CT,
as one process and on a Ray cluster (``a_backend_process`` is parametrised)."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from slicerfm_backend.evaluation.evaluate import evaluate_with_client, load_case
from slicerfm_client import errors
from slicerfm_client.client import SlicerFMClient
from slicerfm_client.launcher import LocalBackend

EXECUTABLE = str(Path(sys.executable).with_name("slicerfm-backend"))
SPLEEN = 1


@pytest.fixture(scope="module")
def a_spleen_case(a_data_dir):
    ct = a_data_dir / "abdomen_ct"
    return ct / "example_ct.nii.gz", ct / "example_seg_fast_force_split.nii.gz"


@pytest.fixture(scope="module", params=["single-process", "ray"])
def a_backend_process(request, tmp_path_factory):
    """The server as one process, and on a local Ray cluster (two workers behind the
    ingress, docs/SCALE.md): the same tests pass against both."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    options = {}
    if request.param == "ray":
        cluster = request.getfixturevalue("a_ray_cluster")
        options = {"extra_args": ["--ray", cluster.address, "--ray-workers", "2"], "startup_timeout_s": 300,
                   "env": dict(os.environ, SLICERFM_RAY_NAMESPACE=f"e2e-{uuid.uuid4().hex[:8]}")}
    backend = LocalBackend([EXECUTABLE], engines=["classic"], log_path=str(log), **options)
    backend.start()
    yield backend
    backend.stop(timeout_s=30)


def test_the_cli_lists_the_builtin_engine_as_ready_without_weights():
    output = subprocess.run([EXECUTABLE, "engines"], capture_output=True, text=True, check=True).stdout
    assert "classic" in output and "point,box" in output and "none" in output


def test_clicks_on_the_spleen_through_a_real_server_give_a_good_segment(a_backend_process, a_spleen_case):
    image, ijk_to_ras, reference, spacing = load_case(str(a_spleen_case[0]), str(a_spleen_case[1]), SPLEEN)
    with SlicerFMClient(a_backend_process.url) as client:
        client.connect("e2e", heartbeat=True)
        result = evaluate_with_client(client, image.astype(np.int16), ijk_to_ras, reference, spacing,
                                      "classic", clicks=3, modality="CT", verbose=False)
        assert result["dice"][-1] >= 0.8, result["dice"]
        labels, segments = client.labelmap()
        assert labels.shape == image.shape


def test_the_evaluate_command_writes_the_documented_json_and_its_plot(a_spleen_case, tmp_path):
    out, plot = tmp_path / "spleen.json", tmp_path / "spleen.png"
    completed = subprocess.run(
        [EXECUTABLE, "evaluate", "--engine", "classic", "--image", str(a_spleen_case[0]),
         "--label", str(a_spleen_case[1]), "--label-id", str(SPLEEN), "--clicks", "3", "--json", str(out),
         "--plot", str(plot)],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "clicks to Dice" in completed.stdout
    assert "\r" not in completed.stderr and "click/s" not in completed.stderr, "a progress bar went into a pipe"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = json.loads(out.read_text())
    assert len(result["dice"]) == len(result["latency_s"]) == 3
    assert set(result["clicks_to"]) == {"0.80", "0.85", "0.90"}
    assert all(0.0 <= d <= 1.0 for d in result["dice"])


def test_the_evaluate_command_against_a_running_server_gives_the_same_dice(a_backend_process, a_spleen_case, tmp_path):
    runs = []
    for server in (["--server", a_backend_process.url], []):
        out = tmp_path / f"run{len(runs)}.json"
        subprocess.run([EXECUTABLE, "evaluate", "--image", str(a_spleen_case[0]), "--label", str(a_spleen_case[1]),
                        "--label-id", str(SPLEEN), "--clicks", "2", "--json", str(out), *server],
                       check=True, capture_output=True, timeout=300)
        runs.append(json.loads(out.read_text())["dice"])
    assert runs[0] == runs[1]


def test_the_evaluate_command_draws_a_progress_bar_on_a_terminal(a_spleen_case):
    import fcntl
    import os
    import pty
    import struct
    import termios

    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    process = subprocess.Popen(
        [EXECUTABLE, "evaluate", "--image", str(a_spleen_case[0]), "--label", str(a_spleen_case[1]),
         "--label-id", str(SPLEEN), "--clicks", "2"],
        stdout=subprocess.DEVNULL, stderr=terminal, env={**os.environ, "SLICERFM_PROGRESS": ""})
    os.close(terminal)  # the child holds the terminal now; reading ends when it exits
    drawn = b""
    try:
        while True:
            try:
                piece = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not piece:
                break
            drawn += piece
    finally:
        os.close(main)
        process.wait(timeout=300)
    assert process.returncode == 0, drawn.decode(errors="replace")[-2000:]
    assert b"clicks:" in drawn and b"2/2" in drawn and b"\r" in drawn


def test_the_evaluate_command_explains_a_missing_label(a_spleen_case):
    completed = subprocess.run([EXECUTABLE, "evaluate", "--image", str(a_spleen_case[0]),
                                "--label", str(a_spleen_case[1]), "--label-id", "999"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2 and "label 999 does not occur" in completed.stderr


def test_a_server_restart_expires_the_session_and_a_new_claim_recovers(a_spleen_case, tmp_path):
    image, ijk_to_ras, reference, spacing = load_case(str(a_spleen_case[0]), str(a_spleen_case[1]), SPLEEN)
    backend = LocalBackend([EXECUTABLE], engines=["classic"])
    backend.start()
    try:
        client = SlicerFMClient(backend.url)
        client.connect("e2e", heartbeat=False)
        client.set_image(image, ijk_to_ras, "CT")
        before = client.add_point("spleen", (104, 32, 23), True)
        backend.stop()
        backend.start()  # same port, fresh process: all sessions and images are gone
        with pytest.raises(errors.SessionExpiredError, match="claim a new session"):
            client.add_point("spleen", (93, 51, 15), True)
        client.connect("e2e", heartbeat=False)
        client.set_image(image, ijk_to_ras, "CT")
        restored = client.seed("spleen", before.mask, before.bbox)
        assert restored.voxels == before.voxels
    finally:
        backend.stop()


def test_refusing_a_public_address_without_a_token():
    completed = subprocess.run([EXECUTABLE, "serve", "--host", "0.0.0.0", "--port", "0"],
                               capture_output=True, text=True, timeout=60,
                               env={k: v for k, v in __import__("os").environ.items() if k != "SLICERFM_TOKEN"})
    assert completed.returncode == 2 and "without credentials" in completed.stderr
