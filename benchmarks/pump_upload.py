"""The worker pump under PythonQt's condition: a 157 MB upload while the main thread holds the GIL.

Inside 3D Slicer, PythonQt keeps the GIL while the main thread waits in Qt's event loop, so a
worker thread runs only while the main thread runs Python (see SlicerFM/SlicerFMLib/pump.py).
The main thread here loops "one pump tick, then block in a C call that keeps the GIL for the
rest of the timer interval" while the module's BackgroundWorker uploads the synthetic
512x512x300 int16 CT to a REAL backend process, or makes small round trips; see
:mod:`slicerfm_backend.benchmark.pump` (also run by ``slicerfm-backend benchmark``).

Run::

    .venv/bin/python benchmarks/pump_upload.py                 # ~2-4 min on 2 cores
    .venv/bin/python benchmarks/pump_upload.py --repeats 1 --waits 0.015
"""

from __future__ import annotations

import argparse

from slicerfm_backend.benchmark import pump
from slicerfm_backend.benchmark.common import load_average


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--waits", help="pump wait budgets to measure, s (0 is always measured; default "
                                        "0.005,0.010,the module's default,0.020,0.025)")
    parser.add_argument("--interval-ms", type=int, help="timer interval (default: the module's)")
    parser.add_argument("--round-trips", type=int, default=30)
    args = parser.parse_args()
    waits = [float(w) for w in args.waits.split(",")] if args.waits else None
    print(f"load {load_average()}")
    pump.print_figures(pump.measure(args.repeats, waits, args.interval_ms, args.round_trips, log=lambda line: None))
    print(f"\nload after: {load_average()}")


if __name__ == "__main__":
    main()
