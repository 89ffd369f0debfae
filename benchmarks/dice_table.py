"""Dice per simulated click for the issue's structures, through a real server and the client.

Same path as ``slicerfm-backend evaluate`` (one server process per engine): the CT organs
spleen (1), right and left kidney (2, 3), liver (5), stomach (6) on
abdomen_ct/example_ct.nii.gz with example_seg_fast_force_split.nii.gz, and edema on
brain_flair. Prints Dice after 1, 3, 5, 10 clicks, clicks to 0.85 and the mean over the CT
organs at 5 clicks. The measurement is :mod:`slicerfm_backend.benchmark.dice` (also run by
``slicerfm-backend benchmark``).

    .venv/bin/python benchmarks/dice_table.py [--engine classic] [--clicks 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from slicerfm_backend.benchmark import dice


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="classic")
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args()
    figures = dice.measure([args.engine], args.clicks)
    dice.print_figures(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
