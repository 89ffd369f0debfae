"""The GPU suite runs end to end on the CPU in its dry-run size: the shell script (one call,
its own PYTHONPATH and sample data), the Python driver, the section it writes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from slicerfm_backend.benchmark import gpu

REPO = Path(__file__).resolve().parents[2]


def test_the_suite_script_runs_a_part_on_the_cpu_and_writes_a_section(tmp_path, a_data_dir):
    env = {**os.environ, "OUT": str(tmp_path), "SLICERFM_GPU_PYTHON": sys.executable, "SLICERFM_DATA": str(a_data_dir),
           "SLICERFM_GPU_DIR": str(tmp_path / "no-prepared-folder")}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_suite.sh"), "--device", "cpu", "--tiny",
                           "--parts", "protocol,vista3d"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    section = json.loads((tmp_path / "gpu.json").read_text())
    figures = section["figures"]
    assert section["measured"]["quick"] and figures["tiny"] and not figures["failed"]
    assert figures["protocol"]["engines"]["bench_ball"]["stages_ms"]["roundtrip"]["n"] == 9
    assert figures["vista3d"]["stand_in"]["windows"] >= 1
    assert "[protocol] done" in (tmp_path / "gpu.log").read_text()


def test_a_failing_part_is_recorded_and_the_others_still_run(monkeypatch):
    def broken(device, tiny, log):
        raise RuntimeError("out of memory")

    monkeypatch.setitem(gpu.RUNNERS, "unigradicon", broken)
    monkeypatch.setitem(gpu.RUNNERS, "medsam", lambda device, tiny, log: {"skipped": "not here"})
    saved = []
    section = gpu.run("cpu", True, ["unigradicon", "medsam"], log=lambda line: None, save=saved.append)
    assert section["figures"]["failed"] == {"unigradicon": "RuntimeError: out of memory"}
    assert section["figures"]["skipped"] == {"medsam": "not here"}
    assert len(saved) == 2  # saved after each part: a time limit keeps what was measured


def test_asking_for_cuda_without_it_says_so(monkeypatch):
    import pytest
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="CUDA is not available"):
        gpu.run("cuda", False, ["protocol"])
