"""The worker pump under PythonQt's condition: a 157 MB upload while the main thread holds the GIL.

Inside 3D Slicer, PythonQt keeps the GIL while the main thread waits in Qt's event loop, so a
worker thread runs only while the main thread runs Python (see SlicerFM/SlicerFMLib/pump.py).
This script reproduces that: the main thread loops "one pump tick, then block in a C call
that keeps the GIL for the rest of the timer interval" (``ctypes.PyDLL(None).usleep``, as
Qt's event loop between two 30 ms timer ticks), while the module's
:class:`~SlicerFMLib.worker.BackgroundWorker` uploads the synthetic 512x512x300 int16 CT of
``protocol_overhead.py`` (157.3 MB raw) to a REAL backend process with
``SlicerFMClient.upload_image`` (hash, HEAD, streamed blosc2 PUT; heartbeats on, as in the
module).

Rows, each a fresh upload (one voxel changed, so the server does not have it yet):

* ``free``: the main thread simply waits for the worker (no GIL held) -- the upper bound;
* ``wait_s = 0``: the pump before the fix (poll only, then the GIL is held until the next tick);
* ``wait_s = W``: the pump waits up to W s per tick with the GIL released while a task is
  pending; ``UI share`` is the fraction of each interval left to the event loop.

A second table does the same for what a click costs in round trips: ``--round-trips`` (30)
small requests (``SlicerFMClient.info``) in one worker task.

Prints the upload time of each row (median of ``--repeats``), its speed-up over
``wait_s = 0`` and the machine load. Ratios within one run are what to compare on a busy
machine.

Run::

    .venv/bin/python benchmarks/pump_upload.py                 # ~2-4 min on 2 cores
    .venv/bin/python benchmarks/pump_upload.py --repeats 1 --waits 0.015
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "SlicerFM"))

from protocol_overhead import make_synthetic_ct, start_backend  # noqa: E402

from SlicerFMLib.pump import DEFAULT_INTERVAL_MS, DEFAULT_WAIT_S, WorkerPump  # noqa: E402
from SlicerFMLib.worker import BackgroundWorker  # noqa: E402

LIBC = ctypes.PyDLL(None)     # PyDLL: calls keep the GIL (unlike ctypes.CDLL)


def gil_held_event_loop(pump: WorkerPump, done, interval_s: float) -> int:
    """Tick every ``interval_s`` like a QTimer; between ticks block holding the GIL.
    Returns the number of ticks until ``done()``."""
    ticks = 0
    while not done():
        start = time.monotonic()
        pump.tick()
        ticks += 1
        rest = interval_s - (time.monotonic() - start)
        if rest > 0 and not done():
            LIBC.usleep(int(rest * 1e6))
    return ticks


def timed_task(fn, wait_s, interval_s):
    """Run ``fn()`` on a worker under the simulated event loop; returns (seconds, ticks)
    (ticks 0 for "free": the main thread just waits, GIL released)."""
    worker = BackgroundWorker()
    finished = []
    try:
        start = time.monotonic()
        task = worker.submit(fn, on_done=finished.append, on_error=finished.append)
        if wait_s is None:
            concurrent.futures.wait([task.future])    # blocks on a lock: GIL released
            worker.poll()
            ticks = 0
        else:
            ticks = gil_held_event_loop(WorkerPump([worker], wait_s=wait_s),
                                        lambda: bool(finished), interval_s)
        seconds = time.monotonic() - start
    finally:
        worker.shutdown()
    if isinstance(finished[0], BaseException):
        raise finished[0]
    return seconds, ticks


def timed_upload(client, array, ijk_to_ras, wait_s, interval_s, serial):
    """One fresh upload (one voxel changed: the server lacks it)."""
    array[0, 0, 0] = serial
    return timed_task(lambda: client.upload_image(array, ijk_to_ras, "CT"), wait_s, interval_s)


def timed_round_trips(client, count, wait_s, interval_s):
    def round_trips():
        for _ in range(count):
            client.info()
    return timed_task(round_trips, wait_s, interval_s)


def print_table(title, rows, repeats, interval_s):
    old = rows[0.0][0]
    print(f"\n{title}\n\n| main thread | s, median (min) of {repeats} | ticks | speed-up vs wait 0 "
          "| UI share |")
    print("|---|---|---|---|---|")
    for wait_s, (seconds, fastest, ticks) in rows.items():
        label = "free (not holding the GIL)" if wait_s is None else f"pump wait_s = {wait_s:g}"
        share = "-" if wait_s is None else f"{max(0.0, 1 - wait_s / interval_s):.0%}"
        print(f"| {label} | {seconds:.3f} ({fastest:.3f}) | {ticks:.0f} | {old / seconds:.1f}x | {share} |")


def summarise(times):
    return {wait_s: (statistics.median(t for t, _ in runs), min(t for t, _ in runs),
                     statistics.median(n for _, n in runs)) for wait_s, runs in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--waits", default=f"0.005,0.010,{DEFAULT_WAIT_S},0.020,0.025",
                        help="pump wait budgets to measure, s (0 is always measured)")
    parser.add_argument("--interval-ms", type=int, default=DEFAULT_INTERVAL_MS)
    parser.add_argument("--round-trips", type=int, default=30)
    args = parser.parse_args()
    interval_s = args.interval_ms / 1000.0
    waits = [None, 0.0] + sorted({float(w) for w in args.waits.split(",") if float(w) > 0})

    from slicerfm_client.client import SlicerFMClient

    array, ijk_to_ras = make_synthetic_ct()
    print(f"volume {list(array.shape)} {array.dtype}: {array.nbytes / 1e6:.1f} MB raw; "
          f"timer interval {args.interval_ms} ms; load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as folder:
        backend = start_backend(["classic"], str(Path(folder) / "backend.log"))
        client = SlicerFMClient(backend.url)
        try:
            client.connect("pump_upload")
            warm = array[:1, :16, :16].copy()       # pays the server's lazy codec import
            timed_upload(client, warm, ijk_to_ras, None, interval_s, 0)
            serial = 1
            uploads = {wait_s: [] for wait_s in waits}
            clicks = {wait_s: [] for wait_s in waits}
            for _ in range(args.repeats):            # interleaved: drift hits every row alike
                for wait_s in waits:
                    uploads[wait_s].append(timed_upload(client, array, ijk_to_ras, wait_s,
                                                        interval_s, serial))
                    clicks[wait_s].append(timed_round_trips(client, args.round_trips, wait_s,
                                                            interval_s))
                    serial += 1
        finally:
            client.close()
            backend.stop()
    print_table(f"157 MB upload ({array.nbytes / 1e6:.1f} MB raw)", summarise(uploads),
                args.repeats, interval_s)
    print_table(f"{args.round_trips} small round trips (client.info)", summarise(clicks),
                args.repeats, interval_s)
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
