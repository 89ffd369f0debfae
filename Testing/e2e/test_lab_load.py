"""The lab load test, short: three locust annotators on a real server with per-user tokens,
each with their own session on the sample CT (uploaded once), clicking with think time.
No click may fail and the server may log no traceback; the timing figures are printed,
not asserted (the full run and its figures: docs/LAB_SERVER.md)."""

import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "lab_load" / "run.py"


def test_three_annotators_clicking_at_once_get_no_errors(a_data_dir, tmp_path):
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, str(RUN), "--users", "3", "--alone-s", "8", "--shared-s", "15",
                           "--think", "0.5,1.5", "--json", str(out)], capture_output=True, text=True, timeout=600)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    for phase in ("alone", "shared"):
        assert result[phase]["errors"] == 0 and result[phase]["clicks"] > 0, result[phase]
    assert result["shared"]["ahead_mean"] is not None  # the queue position came back in Server-Timing
