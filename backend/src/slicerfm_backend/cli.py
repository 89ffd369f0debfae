"""The ``slicerfm-backend`` command line: one subcommand module each, the same entry.

Every module in :data:`SUBCOMMANDS` has ``add_parsers(subparsers)``, which adds its
subcommands with ``func`` set to the function that runs them; settings come from the flags
and ``SLICERFM_*`` environment variables through
:func:`slicerfm_backend.settings.settings_from_args` (flags win).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from slicerfm_client import protocol

from . import __version__, serve
from .auth import cli as users_cli
from .auto_segment import cli as segment_cli
from .benchmark import cli as benchmark_cli
from .engine_core import cli as engines_cli
from .evaluation import cli as evaluation_cli
from .registration import cli as registration_cli
from .weights import cli as weights_cli

#: serve, users, engines, evaluate, weights, segment, register / evaluate-registration, benchmark.
SUBCOMMANDS = (serve, users_cli, engines_cli, evaluation_cli, weights_cli, segment_cli, registration_cli,
               benchmark_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slicerfm-backend",
                                     description="SlicerFM inference server for 3D Slicer")
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__} (protocol {protocol.PROTOCOL_VERSION})")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parsers(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    level = getattr(args, "log_level", None) or os.environ.get("SLICERFM_LOG_LEVEL", "info")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    return int(args.func(args) or 0)
