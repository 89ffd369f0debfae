"""The Slicer module's worker pump under PythonQt's condition: an upload and round trips
while the main thread holds the GIL.

Inside 3D Slicer, PythonQt keeps the GIL while the main thread waits in Qt's event loop, so a
worker thread runs only while the main thread runs Python (``SlicerFM/SlicerFMLib/pump.py``).
This reproduces that: the main thread loops "one pump tick, then block in a C call that keeps
the GIL for the rest of the timer interval" (``ctypes.PyDLL(None).usleep``, as Qt's event
loop between two timer ticks), while the module's ``BackgroundWorker`` uploads the synthetic
300x512x512 int16 CT of :mod:`.phantom` (157.3 MB raw) to a REAL backend process with
``SlicerFMClient.upload_image`` (hash, HEAD, streamed PUT; heartbeats on, as in the module),
or makes ``round_trips`` small requests (``SlicerFMClient.info``, what a click's round trips
cost). Rows, each a fresh upload (one voxel changed, so the server does not have it yet),
interleaved over ``repeats`` rounds:

* ``free``: the main thread simply waits for the worker (no GIL held) -- the upper bound;
* ``wait_s = 0``: the pump before the fix (poll only, then the GIL is held until the next tick);
* ``wait_s = W``: the pump waits up to W s per tick with the GIL released while a task is
  pending; ``UI share`` is the fraction of each interval left to the event loop.

Needs the module's Qt-free library (``SlicerFM/SlicerFMLib``) from a source checkout.
"""

from __future__ import annotations

import concurrent.futures
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

from .common import REPOSITORY


def _module_library():
    """``(WorkerPump, BackgroundWorker, DEFAULT_INTERVAL_MS, DEFAULT_WAIT_S)`` from the checkout."""
    folder = REPOSITORY / "SlicerFM"
    if not (folder / "SlicerFMLib" / "pump.py").is_file():
        raise RuntimeError(f"the Slicer module's library is not at {folder}/SlicerFMLib: the pump benchmark "
                           "runs from a source checkout")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    from SlicerFMLib.pump import DEFAULT_INTERVAL_MS, DEFAULT_WAIT_S, WorkerPump
    from SlicerFMLib.worker import BackgroundWorker

    return WorkerPump, BackgroundWorker, DEFAULT_INTERVAL_MS, DEFAULT_WAIT_S


def gil_held_event_loop(pump, done, interval_s: float) -> int:
    """Tick every ``interval_s`` like a QTimer; between ticks block holding the GIL.
    Returns the number of ticks until ``done()``."""
    import ctypes

    libc = ctypes.PyDLL(None)  # PyDLL: calls keep the GIL (unlike ctypes.CDLL)
    ticks = 0
    while not done():
        start = time.monotonic()
        pump.tick()
        ticks += 1
        rest = interval_s - (time.monotonic() - start)
        if rest > 0 and not done():
            libc.usleep(int(rest * 1e6))
    return ticks


def timed_task(fn, wait_s: Optional[float], interval_s: float):
    """Run ``fn()`` on a worker under the simulated event loop; returns (seconds, ticks)
    (ticks 0 for "free": the main thread just waits, GIL released)."""
    WorkerPump, BackgroundWorker, _, _ = _module_library()
    worker = BackgroundWorker()
    finished: List = []
    try:
        start = time.monotonic()
        task = worker.submit(fn, on_done=finished.append, on_error=finished.append)
        if wait_s is None:
            concurrent.futures.wait([task.future])  # blocks on a lock: GIL released
            worker.poll()
            ticks = 0
        else:
            ticks = gil_held_event_loop(WorkerPump([worker], wait_s=wait_s), lambda: bool(finished), interval_s)
        seconds = time.monotonic() - start
    finally:
        worker.shutdown()
    if isinstance(finished[0], BaseException):
        raise finished[0]
    return seconds, ticks


def _rows(times: Dict, interval_s: float) -> List[dict]:
    out = []
    for wait_s, runs in times.items():
        out.append({"wait_s": wait_s, "median_s": statistics.median(t for t, _ in runs),
                    "min_s": min(t for t, _ in runs), "ticks": statistics.median(n for _, n in runs),
                    "ui_share": None if wait_s is None else max(0.0, 1 - wait_s / interval_s)})
    return out


def measure(repeats: int = 3, waits: Optional[Sequence[float]] = None, interval_ms: Optional[int] = None,
            round_trips: int = 30, log=print) -> dict:
    """Upload and round-trip times per pump setting (median and min of ``repeats``)."""
    from slicerfm_client.client import SlicerFMClient

    from .phantom import make_synthetic_ct
    from .servers import start_backend

    _, _, default_interval, default_wait = _module_library()
    interval_ms = interval_ms or default_interval
    interval_s = interval_ms / 1000.0
    chosen = sorted({float(w) for w in (waits or (0.005, 0.010, default_wait, 0.020, 0.025)) if float(w) > 0})
    settings = [None, 0.0] + chosen
    array, ijk_to_ras = make_synthetic_ct()
    backend = start_backend(["classic"], "pump")
    uploads: Dict = {w: [] for w in settings}
    clicks: Dict = {w: [] for w in settings}
    try:
        with SlicerFMClient(backend.url) as client:
            client.connect("benchmark pump")
            warm = array[:1, :16, :16].copy()  # pays the server's lazy codec import
            timed_task(lambda: client.upload_image(warm, ijk_to_ras, "CT"), None, interval_s)
            serial = 1
            for _ in range(repeats):  # interleaved: drift hits every row alike
                for wait_s in settings:
                    array[0, 0, 0] = serial
                    uploads[wait_s].append(timed_task(lambda: client.upload_image(array, ijk_to_ras, "CT"),
                                                      wait_s, interval_s))
                    clicks[wait_s].append(timed_task(lambda: [client.info() for _ in range(round_trips)],
                                                     wait_s, interval_s))
                    serial += 1
    finally:
        backend.stop()
    figures = {"raw_bytes": int(array.nbytes), "interval_ms": interval_ms, "default_wait_s": default_wait,
               "repeats": repeats, "round_trips": round_trips,
               "upload": _rows(uploads, interval_s), "round_trip_rows": _rows(clicks, interval_s)}
    figures["summary"] = headline(figures)
    log(f"  pump: upload at the default {figures['summary'].get('upload_speedup_default', 0):.1f}x, round trips "
        f"{figures['summary'].get('round_trips_speedup_default', 0):.1f}x faster than the pump before the fix")
    return figures


def _speedup(rows: List[dict], wait_s: float) -> Optional[float]:
    old = next(r for r in rows if r["wait_s"] == 0.0)["median_s"]
    row = next((r for r in rows if r["wait_s"] == wait_s), None)
    return None if row is None else old / row["median_s"]


def headline(figures: dict) -> Dict[str, Optional[float]]:
    default = figures["default_wait_s"]
    return {"upload_speedup_default": _speedup(figures["upload"], default),
            "round_trips_speedup_default": _speedup(figures["round_trip_rows"], default),
            "upload_default_s": next((r["median_s"] for r in figures["upload"] if r["wait_s"] == default), None)}


def print_figures(figures: dict) -> None:
    """The tables of ``benchmarks/pump_upload.py``."""
    for title, rows in ((f"{figures['raw_bytes'] / 1e6:.1f} MB upload", figures["upload"]),
                        (f"{figures['round_trips']} small round trips (client.info)", figures["round_trip_rows"])):
        old = next(r for r in rows if r["wait_s"] == 0.0)["median_s"]
        print(f"\n{title}\n\n| main thread | s, median (min) of {figures['repeats']} | ticks | speed-up vs wait 0 "
              "| UI share |")
        print("|---|---|---|---|---|")
        for r in rows:
            label = "free (not holding the GIL)" if r["wait_s"] is None else f"pump wait_s = {r['wait_s']:g}"
            share = "-" if r["ui_share"] is None else f"{r['ui_share']:.0%}"
            print(f"| {label} | {r['median_s']:.3f} ({r['min_s']:.3f}) | {r['ticks']:.0f} | "
                  f"{old / r['median_s']:.1f}x | {share} |")
