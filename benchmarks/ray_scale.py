"""The backend on Ray against one process: clicks per second, p95 click latency, per-click
overhead and memory (docs/SCALE.md).

Starts a one-node Ray cluster on loopback (Testing/ray_cluster.py: ``ray start --head``,
dashboard and usage statistics off) and, one after the other, on the same machine:

1. **overhead** -- one user, ``--overhead-clicks`` clicks with the ``bench_ball`` engine
   (``slicerfm_backend.benchmark.ball``: a ball around the click, negligible compute), on
   ``serve`` and on ``serve --ray`` with one worker, rounds interleaved. Printed: median
   and p95 round trip of each, their difference, and the ingress's own share on the Ray
   path (its ``cluster`` Server-Timing entry minus the worker's ``server`` entry: the
   actor call and the in-process call of the worker's application), and Ray's own floor:
   the round trip of a trivial call of the worker actor from this process.
2. **scale** -- ``--users`` simulated annotators (8), each with its own session on the
   sample CT (uploaded once), clicking positive points inside one organ of the reference
   labels with the built-in ``classic`` engine, back to back (no think time) for
   ``--seconds`` each: on ``serve``, then ``serve --ray`` with 1, 2 and 4 workers. Printed
   per row: clicks, errors, clicks/s, p50/p95 round trip, the sessions per worker, and
   the resident memory of each worker, of the ingress and of Ray's own processes.

The machine may be shared and loaded: ``uptime`` is printed before and after, and the
ratios within one run are what to compare. Run::

    .venv/bin/python benchmarks/ray_scale.py                       # ~10 min on 2 cores
    .venv/bin/python benchmarks/ray_scale.py --seconds 20 --workers 1,2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "Testing"))

from bench_common import proc_status, require_data  # noqa: E402
from ray_cluster import LocalRayCluster  # noqa: E402
from slicerfm_backend.benchmark.ball import PLUGIN_SPEC  # noqa: E402
from slicerfm_client.client import SlicerFMClient  # noqa: E402
from slicerfm_client.launcher import LocalBackend  # noqa: E402

EXECUTABLE = str(Path(sys.executable).with_name("slicerfm-backend"))
ORGANS = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 5, "stomach": 6, "pancreas": 7}
RESET_EVERY = 6  # clicks on one segment before it is reset (keeps the work per click alike)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def percentile(values: List[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def load_case():
    """``(image K,J,I int16, ijk_to_ras, {organ: voxel (k, j, i) points inside it})`` of the sample CT."""
    from slicerfm_backend.imaging import read_image

    folder = require_data() / "abdomen_ct"
    image, ijk_to_ras, _ = read_image(str(folder / "example_ct.nii.gz"))
    labels, _, _ = read_image(str(folder / "example_seg_fast_force_split.nii.gz"))
    rng = np.random.default_rng(0)
    points = {}
    for organ, label in ORGANS.items():
        inside = np.argwhere(labels == label)
        if len(inside):
            points[organ] = inside[rng.choice(len(inside), size=min(64, len(inside)), replace=False)]
    return image.astype(np.int16), ijk_to_ras, points


def start_server(kind: str, workers: int, cluster: Optional[LocalRayCluster], engines: List[str],
                 log_dir: Path) -> LocalBackend:
    env = dict(os.environ, SLICERFM_MAX_SESSIONS="32",
               SLICERFM_ENGINE_PLUGINS=PLUGIN_SPEC,
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    extra: List[str] = []
    if kind == "ray":
        env.update(SLICERFM_RAY_NAMESPACE=f"bench-{uuid.uuid4().hex[:8]}", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
        extra = ["--ray", cluster.address, "--ray-workers", str(workers)]
    backend = LocalBackend([EXECUTABLE], engines=engines, env=env, startup_timeout_s=600, extra_args=extra,
                           log_path=str(log_dir / f"{kind}-{workers}.log"))
    backend.start()
    return backend


def memory(backend: LocalBackend, cluster: Optional[LocalRayCluster]) -> Dict[str, object]:
    """Resident memory (MB) of the ingress or server, each worker, and Ray's own processes."""
    out: Dict[str, object] = {"server_mb": proc_status(backend.process.pid)["VmRSS"] / 1e6}
    if cluster is not None:
        workers = cluster.pids_named("SessionWorker")
        out["workers_mb"] = sorted(round(proc_status(pid)["VmRSS"] / 1e6, 1) for pid in workers)
        system = [pid for pid in cluster_processes(cluster) if pid not in workers]
        out["ray_system_mb"] = round(sum(proc_status(pid)["VmRSS"] for pid in system) / 1e6, 1)
    return out


def cluster_processes(cluster: LocalRayCluster) -> List[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and cluster.owns(int(entry.name)):
            try:
                proc_status(int(entry.name))
                pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def overhead(cluster: LocalRayCluster, clicks: int, rounds: int, log_dir: Path) -> Dict[str, object]:
    """One user, the ball engine: round trips on one process and through the Ray ingress."""
    image = np.full((64, 128, 128), -800, np.int16)
    ijk_to_ras = np.diag([-0.8, -0.8, 1.5, 1.0])
    servers = {"single": start_server("single", 1, None, ["bench_ball"], log_dir),
               "ray": start_server("ray", 1, cluster, ["bench_ball"], log_dir)}
    trips: Dict[str, List[float]] = {name: [] for name in servers}
    ingress_ms: List[float] = []
    try:
        clients = {}
        for name, server in servers.items():
            clients[name] = SlicerFMClient(server.url)
            clients[name].connect("bench", heartbeat=False)
            clients[name].set_image(image, ijk_to_ras, "CT")
            for _ in range(10):  # warm up
                clients[name].add_point("ball", (32, 64, 64), True, engine="bench_ball")
        for _ in range(rounds):
            for name, client in clients.items():
                for n in range(clicks // rounds):
                    update = client.add_point("ball", (32, 40 + n % 48, 64), n % 2 == 0, engine="bench_ball")
                    trips[name].append(update.roundtrip_ms)
                    if name == "ray":
                        ingress_ms.append(update.timings_ms["cluster"] - update.timings_ms["server"])
        ray_call_ms = ray_round_trips(cluster, servers["ray"], 200)
    finally:
        for server in servers.values():
            server.stop(timeout_s=30)
    row = {name: {"median_ms": percentile(values, 50), "p95_ms": percentile(values, 95)}
           for name, values in trips.items()}
    row["difference_median_ms"] = row["ray"]["median_ms"] - row["single"]["median_ms"]
    row["ingress_median_ms"] = percentile(ingress_ms, 50)
    row["ingress_p95_ms"] = percentile(ingress_ms, 95)
    row["ray_call_median_ms"] = percentile(ray_call_ms, 50)
    row["ray_call_p95_ms"] = percentile(ray_call_ms, 95)
    return row


def ray_round_trips(cluster: LocalRayCluster, server: LocalBackend, calls: int) -> List[float]:
    """Ray's own floor: round trips of a trivial actor call (a worker's ``load``) from here."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    ray.init(address=cluster.address, namespace=server.env["SLICERFM_RAY_NAMESPACE"], log_to_driver=False)
    try:
        worker = ray.get_actor("slicerfm-worker-0")
        for _ in range(10):
            ray.get(worker.load.remote())
        trips = []
        for _ in range(calls):
            start = time.perf_counter()
            ray.get(worker.load.remote())
            trips.append((time.perf_counter() - start) * 1000.0)
        return trips
    finally:
        ray.shutdown()


def annotate(url: str, number: int, case, deadline: float, out: dict) -> None:
    image, ijk_to_ras, points = case
    organ = list(points)[number % len(points)]
    client = SlicerFMClient(url, timeout_s=300)
    trips, errors = [], 0
    try:
        client.connect(f"bench-{number}", heartbeat=True)
        client.set_image(image, ijk_to_ras, "CT")
        match = re.match(r"^(w\d+)-", client.session_token)
        out.setdefault("workers", []).append(match.group(1) if match else "single")
        n = 0
        while time.monotonic() < deadline:
            segment = f"{organ}-{n // RESET_EVERY}"
            point = points[organ][n % len(points[organ])]
            try:
                trips.append(client.add_point(segment, tuple(int(v) for v in point), True).roundtrip_ms)
            except Exception as error:  # counted; the run goes on
                errors += 1
                out.setdefault("messages", []).append(str(error)[:200])
            n += 1
    finally:
        client.close()
        out.setdefault("trips", []).extend(trips)
        out["errors"] = out.get("errors", 0) + errors


def scale(kind: str, workers: int, users: int, seconds: float, case, cluster, log_dir: Path) -> Dict[str, object]:
    server = start_server(kind, workers, cluster if kind == "ray" else None, ["classic"], log_dir)
    try:
        image, ijk_to_ras, _ = case
        warm = SlicerFMClient(server.url)
        warm.connect("bench-warm", heartbeat=False)
        warm.upload_image(image, ijk_to_ras, "CT")  # once, for everyone
        warm.close()
        out: dict = {}
        start = time.monotonic()
        deadline = start + seconds
        threads = [threading.Thread(target=annotate, args=(server.url, n, case, deadline, out)) for n in range(users)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
        trips = out.get("trips", [])
        row = {"server": kind if kind == "single" else f"ray x{workers}", "clicks": len(trips),
               "errors": out.get("errors", 0), "clicks_per_s": len(trips) / elapsed,
               "p50_ms": percentile(trips, 50), "p95_ms": percentile(trips, 95),
               "sessions_per_worker": {w: out.get("workers", []).count(w) for w in sorted(set(out.get("workers", [])))},
               "memory": memory(server, cluster if kind == "ray" else None),
               "error_messages": out.get("messages", [])[:3]}
    finally:
        server.stop(timeout_s=30)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--workers", default="1,2,4", help="Ray worker counts to run")
    parser.add_argument("--overhead-clicks", type=int, default=200)
    parser.add_argument("--overhead-rounds", type=int, default=4)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",") if n]
    report = {"uptime_before": uptime()}
    print(report["uptime_before"], flush=True)
    case = load_case()
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"ray-scale-{uuid.uuid4().hex[:6]}"
    log_dir.mkdir()
    cluster = LocalRayCluster(cpus=max(counts + [1]) + 2, object_store_bytes=1 << 30, pythonpath=[str(HERE)])
    cluster.start()
    try:
        if not args.skip_overhead:
            report["overhead"] = overhead(cluster, args.overhead_clicks, args.overhead_rounds, log_dir)
            print("overhead:", json.dumps(report["overhead"], indent=1), flush=True)
        rows = [scale("single", 1, args.users, args.seconds, case, None, log_dir)]
        print(json.dumps(rows[-1]), flush=True)
        for workers in counts:
            rows.append(scale("ray", workers, args.users, args.seconds, case, cluster, log_dir))
            print(json.dumps(rows[-1]), flush=True)
        report["scale"] = rows
    finally:
        cluster.stop()
    report["uptime_after"] = uptime()
    print(report["uptime_after"])
    print(f"\n{'server':<10} {'clicks':>6} {'err':>4} {'clicks/s':>9} {'p50 ms':>8} {'p95 ms':>8}  memory MB")
    for row in report["scale"]:
        print(f"{row['server']:<10} {row['clicks']:>6} {row['errors']:>4} {row['clicks_per_s']:>9.2f} "
              f"{row['p50_ms']:>8.0f} {row['p95_ms']:>8.0f}  {row['memory']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 1 if any(row["errors"] for row in report["scale"]) else 0


if __name__ == "__main__":
    sys.exit(main())
