"""``slicerfm-backend evaluate``: simulate a user clicking on one structure through a real
server and client; Dice and latency per click (see :mod:`.evaluate`)."""

from __future__ import annotations

import argparse
import sys

from ..settings import add_engine_flags, modality_argument


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import run_evaluation

    if args.plot:
        from .plots import INSTALL_HINT

        try:
            import matplotlib  # noqa: F401 - checked before the run, not after it
        except ImportError:
            print(f"error: {INSTALL_HINT}", file=sys.stderr)
            return 2
    return run_evaluation(args)


def add_parsers(subparsers) -> None:
    """Add ``evaluate`` to the ``slicerfm-backend`` parser."""
    evaluate = subparsers.add_parser("evaluate", help="simulate a user clicking, report Dice per click")
    evaluate.add_argument("--engine", default="classic")
    evaluate.add_argument("--image", required=True, help="image file (NIfTI, NRRD, ...)")
    evaluate.add_argument("--label", required=True, help="reference label map on the image's grid")
    evaluate.add_argument("--label-id", type=int, required=True, dest="label_id")
    evaluate.add_argument("--clicks", type=int, default=10)
    evaluate.add_argument("--json", help="write the results as JSON to this file")
    evaluate.add_argument("--plot", metavar="OUT.png", help="draw Dice and latency per click into this PNG")
    evaluate.add_argument("--server", help="URL of a running server (default: start one)")
    evaluate.add_argument("--modality", default="other", type=modality_argument,
                          help="CT, MR or other (any case; MRI, unknown, ... accepted)")
    add_engine_flags(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)
