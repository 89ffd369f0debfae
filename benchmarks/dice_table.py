"""Dice per simulated click for the classic engine's benchmark structures (issue 18).

Same path as ``slicerfm-backend evaluate``: the simulated user drives a real server process
through the client (``--in-process`` runs the engine in this process instead, for quick
iterations; the figures are the same, the latency is the engine's alone). Cases come from
:func:`slicerfm_backend.evaluation.suite.issue18_cases`: the five large CT organs, small and
thin CT structures, the abdominal MR organs, FLAIR edema and the 30 brain structures of
``brain_pair`` subject B. Prints the Markdown table (per structure: Dice after 1, 3, 5, 10
clicks, clicks to 0.85, worst single-click drop, latency) and the per-group means. The
measurement is :mod:`slicerfm_backend.benchmark.classic_suite` (``slicerfm-backend benchmark
--sections classic_suite``); the benchmark's ``dice`` section measures every engine on the
CT organs and FLAIR edema.

    .venv/bin/python benchmarks/dice_table.py [--groups ct_large,brain] [--only NAME,...] [--clicks 10]
        [--json OUT.json] [--markdown OUT.md] [--in-process] [--engine classic]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from slicerfm_backend.benchmark import classic_suite
from slicerfm_backend.evaluation.suite import GOALS, markdown_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="classic")
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--groups", default=",".join(GOALS), help="comma-separated: " + ", ".join(GOALS))
    parser.add_argument("--only", help="comma-separated structure names or group/name keys (within the groups)")
    parser.add_argument("--in-process", action="store_true", help="run the engine in this process")
    parser.add_argument("--json", help="write the per-structure figures here")
    parser.add_argument("--markdown", help="write the table here")
    args = parser.parse_args()
    figures = classic_suite.measure(args.clicks, args.groups.split(","), args.only.split(",") if args.only else None,
                                    args.engine, args.in_process)
    classic_suite.print_figures(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures["structures"], indent=1))
    if args.markdown:
        Path(args.markdown).write_text(classic_suite.describe_run(figures) + "\n\n"
                                       + markdown_table(figures["structures"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
