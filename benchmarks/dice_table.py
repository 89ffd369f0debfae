"""Dice per simulated click for the classic engine's benchmark structures (issue 18).

Same path as ``slicerfm-backend evaluate``: the simulated user drives a real server process
through the client (``--in-process`` runs the engine in this process instead, for quick
iterations; the figures are the same, the latency is the engine's alone). Cases come from
:func:`slicerfm_backend.evaluation.suite.issue18_cases`: the five large CT organs, small and
thin CT structures, the abdominal MR organs, FLAIR edema and the 30 brain structures of
``brain_pair`` subject B. Prints the Markdown table (per structure: Dice after 1, 3, 5, 10
clicks, clicks to 0.85, worst single-click drop, latency) and the per-group means.

    .venv/bin/python benchmarks/dice_table.py [--groups ct_large,brain] [--clicks 10]
        [--json OUT.json] [--markdown OUT.md] [--in-process] [--engine classic]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench_common import require_data
from slicerfm_backend.evaluation.suite import GOALS, issue18_cases, markdown_table, run_cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="classic")
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--groups", default=",".join(GOALS), help="comma-separated: " + ", ".join(GOALS))
    parser.add_argument("--only", help="comma-separated structure names (within the groups)")
    parser.add_argument("--in-process", action="store_true", help="run the engine in this process")
    parser.add_argument("--json", help="write the per-structure figures here")
    parser.add_argument("--markdown", help="write the table here")
    args = parser.parse_args()
    data = require_data()
    cases = issue18_cases(data, args.groups.split(","))
    if args.only:
        cases = [c for c in cases if c.name in set(args.only.split(","))]
    load = os.getloadavg()

    def progress(case, row):
        print(f"{case.group:<11}{case.name:<32}" + " ".join(f"{d:.3f}" for d in row["dice"])
              + f"  ({row['seconds']:.1f} s)", flush=True)

    start = time.perf_counter()
    results = run_cases(cases, data, args.clicks, args.engine, in_process=args.in_process, on_case=progress)
    table = markdown_table(results)
    how = "engine in-process" if args.in_process else "through a real server and the client"
    header = (f"engine {args.engine}, {args.clicks} simulated clicks, {how}; {time.perf_counter() - start:.0f} s; "
              f"load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f}\n\n")
    print("\n" + header + table)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(header + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
