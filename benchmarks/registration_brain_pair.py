"""Registration figures on brain_pair: subject A (moving) onto subject B (fixed), T1 brain
MRI, 1 mm, 160 x 192 x 224; mean Dice over the 30 ``voxelmorph_eval_labels`` before and
after, folding (negative-Jacobian fraction), runtime, CPU time, peak memory.

Runs ``slicerfm-backend evaluate-registration`` in this process (or against ``--server``)
through :func:`slicerfm_backend.benchmark.registration.brain_pair` (also run by
``slicerfm-backend benchmark``), so the figures are exactly what that command computes.

    .venv/bin/python benchmarks/registration_brain_pair.py [--engine classic] [--io-steps N]
        [--affine] [--checkpoint ENGINE=PATH] [--server URL] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from slicerfm_backend.benchmark import registration


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="classic")
    parser.add_argument("--io-steps", dest="io_steps", type=int)
    parser.add_argument("--affine", action="store_true")
    parser.add_argument("--checkpoint", action="append", default=[])
    parser.add_argument("--server")
    parser.add_argument("--json", help="write the evaluate-registration report here")
    args = parser.parse_args()
    report = registration.brain_pair(args.engine, args.io_steps, args.affine, args.checkpoint, server=args.server)
    registration.print_figures({"classic": report})  # the brain_pair report, whatever the engine
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
