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

Prints the upload time of each row (median of ``--repeats``), its speed-up over
``wait_s = 0`` and the machine load. Ratios within one run are what to compare on a busy
machine.

Run::

    .venv/bin/python benchmarks/pump_upload.py                 # ~2-4 min on 2 cores
    .venv/bin/python benchmarks/pump_upload.py --repeats 1 --waits 0.015
"""

from __future__ import annotations

import argparse
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


def timed_upload(client, array, ijk_to_ras, wait_s, interval_s, serial):
    """One fresh upload on a worker; returns (seconds, ticks) (ticks 0 for "free")."""
    array[0, 0, 0] = serial                     # new content: the server lacks it
    worker = BackgroundWorker()
    finished = []
    try:
        start = time.monotonic()
        worker.submit(client.upload_image, array, ijk_to_ras, "CT", on_done=finished.append,
                      on_error=lambda error: finished.append(error))
        if wait_s is None:
            worker.wait(600)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--waits", default=f"0.005,0.010,{DEFAULT_WAIT_S},0.020,0.025",
                        help="pump wait budgets to measure, s (0 is always measured)")
    parser.add_argument("--interval-ms", type=int, default=DEFAULT_INTERVAL_MS)
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
            serial, times = 1, {wait_s: [] for wait_s in waits}
            for _ in range(args.repeats):            # interleaved: drift hits every row alike
                for wait_s in waits:
                    times[wait_s].append(timed_upload(client, array, ijk_to_ras, wait_s,
                                                      interval_s, serial))
                    serial += 1
            rows = {wait_s: (statistics.median(t for t, _ in runs), min(t for t, _ in runs),
                             statistics.median(n for _, n in runs))
                    for wait_s, runs in times.items()}
        finally:
            client.close()
            backend.stop()
    old = rows[0.0][0]
    print(f"\n| main thread | upload s, median (min) of {args.repeats} | ticks | speed-up vs wait 0 "
          "| UI share |")
    print("|---|---|---|---|---|")
    for wait_s, (seconds, fastest, ticks) in rows.items():
        label = "free (not holding the GIL)" if wait_s is None else f"pump wait_s = {wait_s:g}"
        share = "-" if wait_s is None else f"{max(0.0, 1 - wait_s / interval_s):.0%}"
        print(f"| {label} | {seconds:.2f} ({fastest:.2f}) | {ticks:.0f} | {old / seconds:.1f}x | {share} |")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
