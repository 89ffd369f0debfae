"""Lab-server load test: one annotator alone, then N annotators at once, on one server.

    .venv/bin/python benchmarks/lab_load/run.py                   # 1 user 60 s, then 8 users 120 s
    .venv/bin/python benchmarks/lab_load/run.py --users 3 --alone-s 10 --shared-s 15   # short

Starts ``slicerfm-backend serve`` (built-in classic engine, loopback, a fresh state
directory) with one access token per simulated annotator (``users add``), runs locust
headless against it (``benchmarks/lab_load/locustfile.py``), and prints per phase the
number of clicks, errors, click round trip p50/p95, device wait p95 and the device's busy
fraction, the ratio shared/alone of one run, and the shared p95 against a fair share of the
device (the alone p95 stretched by 1 / (1 - busy fraction), as processor sharing would);
the machine may be shared: ``uptime`` is printed with the figures. ``--json`` writes
everything. Exit status 1 when any click failed or the server logged a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent


def percentile(values: List[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def start_server(state_dir: Path, port: int, extra_env: Dict[str, str], log) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if k != "SLICERFM_TOKEN"}, "SLICERFM_STATE_DIR": str(state_dir),
           **extra_env}
    command = [str(VENV_BIN / "slicerfm-backend"), "serve", "--port", str(port), "--engines", "classic",
               "--max-sessions", "32"]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    import requests

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/info", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start; see its log")


def make_tokens(state_dir: Path, count: int) -> List[str]:
    """One user per annotator (what ``slicerfm-backend users add`` does)."""
    from slicerfm_backend.auth.users import UserStore

    store = UserStore(state_dir)
    return [store.add(f"annotator{n}") for n in range(count)]


def run_phase(url: str, users: int, seconds: float, tokens: List[str], think: str, workdir: Path) -> dict:
    records = workdir / f"records-{users}.jsonl"
    env = {**os.environ, "SLICERFM_LOAD_RECORDS": str(records), "SLICERFM_LOAD_TOKENS": ",".join(tokens),
           "SLICERFM_LOAD_THINK_S": think}
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
                           "-u", str(users), "-r", str(users), "-t", f"{int(seconds)}s", "--host", url,
                           "--only-summary", "--stop-timeout", "30", "--loglevel", "WARNING"],
                          capture_output=True, text=True, env=env)
    wall = time.time() - started
    rows = [json.loads(line) for line in records.read_text().splitlines()] if records.exists() else []
    ok = [r for r in rows if "error" not in r]
    errors = [r["error"] for r in rows if "error" in r]
    roundtrip = [r["roundtrip_ms"] for r in ok]
    queue = [r["queue_ms"] for r in ok if r.get("queue_ms") is not None]
    engine = [r["engine_ms"] for r in ok if r.get("engine_ms") is not None]
    ahead = [r["ahead"] for r in ok if r.get("ahead") is not None]
    return {"users": users, "seconds": seconds, "wall_s": round(wall, 1), "clicks": len(ok),
            "errors": len(errors), "error_examples": errors[:5], "locust_exit": done.returncode,
            "locust_tail": done.stderr[-2000:] if done.returncode not in (0,) else "",
            "roundtrip_p50_ms": percentile(roundtrip, 50), "roundtrip_p95_ms": percentile(roundtrip, 95),
            "queue_p50_ms": percentile(queue, 50), "queue_p95_ms": percentile(queue, 95),
            "engine_p50_ms": percentile(engine, 50), "engine_p95_ms": percentile(engine, 95),
            "ahead_mean": float(np.mean(ahead)) if ahead else None,
            "device_busy": sum(engine) / 1000.0 / seconds if engine else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--alone-s", type=float, default=60)
    parser.add_argument("--shared-s", type=float, default=120)
    parser.add_argument("--think", default="1,3", help="think time between clicks, min,max seconds")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    from slicerfm_client.launcher import free_port

    port = args.port or free_port()
    with tempfile.TemporaryDirectory(prefix="slicerfm-load-") as tmp:
        workdir = Path(tmp)
        state_dir = workdir / "state"
        state_dir.mkdir()
        tokens = make_tokens(state_dir, args.users)
        with open(workdir / "server.log", "wb") as log:
            server = start_server(state_dir, port, {}, log)
            try:
                url = f"http://127.0.0.1:{port}"
                alone = run_phase(url, 1, args.alone_s, tokens[:1], args.think, workdir)
                shared = run_phase(url, args.users, args.shared_s, tokens, args.think, workdir)
            finally:
                server.terminate()
                server.wait(30)
        server_log = (workdir / "server.log").read_text(errors="replace")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    ratio = shared["roundtrip_p95_ms"] / alone["roundtrip_p95_ms"]
    busy = shared["device_busy"] or 0.0
    # A fair share of the device: under processor sharing (the ideal fair scheduler) every
    # click is stretched by 1 / (1 - utilisation); the goal is p95 <= 1.5x that.
    fair_p95 = alone["roundtrip_p95_ms"] / (1.0 - busy) if busy < 1.0 else float("inf")
    result = {"alone": alone, "shared": shared, "p95_ratio": ratio, "fair_share_p95_ms": fair_p95,
              "p95_over_fair_share": shared["roundtrip_p95_ms"] / fair_p95, "uptime": uptime,
              "think_s": args.think, "cores": os.cpu_count()}
    print(f"machine: {os.cpu_count()} cores; {uptime}")
    print(f"{'phase':<8} {'users':>5} {'clicks':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'wait p95':>9} {'engine p50':>10} {'busy':>5}")
    for name, phase in (("alone", alone), ("shared", shared)):
        print(f"{name:<8} {phase['users']:>5} {phase['clicks']:>6} {phase['errors']:>6} "
              f"{phase['roundtrip_p50_ms']:>8.0f} {phase['roundtrip_p95_ms']:>8.0f} "
              f"{phase['queue_p95_ms']:>9.0f} {phase['engine_p50_ms']:>10.0f} {phase['device_busy'] or 0:>5.2f}")
    print(f"p95 shared / alone: {ratio:.2f}; fair-share p95 (alone / (1 - busy)): {fair_p95:.0f} ms; "
          f"shared p95 / fair share: {result['p95_over_fair_share']:.2f} (goal <= 1.5)")
    for phase in (alone, shared):
        for example in phase["error_examples"]:
            print("error:", example)
    if "Traceback" in server_log:
        print("the server log holds a traceback:\n" + server_log[-3000:])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if not alone["clicks"] or not shared["clicks"]:
        print("a phase made no click: locust said\n" + (alone["locust_tail"] or shared["locust_tail"]))
        return 1
    return 1 if alone["errors"] or shared["errors"] or "Traceback" in server_log else 0


if __name__ == "__main__":
    sys.exit(main())
