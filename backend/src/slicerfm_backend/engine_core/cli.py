"""``slicerfm-backend engines``: the engines of both families, their device, weights, options;
and :func:`print_estimate`, the line the long-running commands print before they start.

Nothing is loaded: each engine is described from its class and a fresh instance (weights
are looked up, not read). The first line says which device the server would use and why
(``auto``: CUDA, then Apple MPS, then the CPU).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from ..settings import add_engine_flags, settings_from_args


def _option_names(option_types) -> str:
    """The options an engine accepts, with the allowed values where the parser names them."""
    return ", ".join(f"{key} ({getattr(parser, '__name__', 'value').replace('_', ' ')})"
                     for key, parser in option_types.items())


def _weights(row: dict) -> str:
    return ("present" if row["weights_present"] else "MISSING") if row["needs_weights"] else "none"


def _print_extra(row: dict, option_types, indent: int) -> None:
    """The lines under an engine's row: how to get missing weights, its options."""
    if row["needs_weights"] and not row["weights_present"]:
        print(f"{'':<{indent}} {row['weights_detail']}")
    accepted = _option_names(option_types)
    if accepted:
        current = ", ".join(f"{k}={v}" for k, v in row["options"].items()) or "defaults"
        print(f"{'':<{indent}} options (--engine-option {row['name']}.KEY=VALUE): {accepted}; set: {current}")


def segmentation_table(manager) -> None:
    print(f"{'engine':<12} {'prompts':<12} {'modalities':<10} {'device':<8} {'weights':<9} description")
    for row in manager.describe():
        kinds = ",".join(row["prompt_kinds"]) + (",auto" if row.get("automatic") else "")
        print(f"{row['name']:<12} {kinds:<12} {','.join(row['modalities']):<10} "
              f"{row['device']:<8} {_weights(row):<9} {row['description']}")
        _print_extra(row, manager.family.engine_class(row["name"]).option_types, 12)


def registration_table(manager) -> None:
    print(f"{'registration':<14} {'similarities':<16} {'io steps':<9} {'device':<8} {'weights':<9} description")
    for row in manager.describe():
        print(f"{row['name']:<14} {','.join(row['similarities']):<16} {row['default_io_steps']:<9} "
              f"{row['device']:<8} {_weights(row):<9} {row['description']}")
        _print_extra(row, manager.family.engine_class(row["name"]).option_types, 14)


def print_estimate(seconds: Optional[float], where: str, stream=None) -> None:
    """One line telling the user how long the run is expected to take (nothing when the
    engine has no estimate for its device)."""
    if seconds is None:
        return
    text = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
    print(f"  expected to take about {text} on {where} (the engine's estimate)",
          file=stream or sys.stderr, flush=True)


def cmd_engines(args: argparse.Namespace) -> int:
    from .served import FAMILIES, engine_managers

    settings = settings_from_args(args)
    segmentation, registration = FAMILIES
    try:
        managers = engine_managers(settings, segmentation.names() if args.all else None,
                                   registration.names() if args.all else None)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    choice = managers[0].device_choice
    print(f"device: {choice.device} ({choice.reason})\n")
    segmentation_table(managers[0])
    print()
    registration_table(managers[1])
    return 0


def add_parsers(subparsers) -> None:
    """Add ``engines`` to the ``slicerfm-backend`` parser."""
    engines = subparsers.add_parser("engines", help="list engines, their prompts, device, weights and options")
    engines.add_argument("--engines", help="segmentation engines to describe (default: the served ones)")
    engines.add_argument("--registration-engines", dest="registration_engines",
                         help="registration engines to describe (default: the served ones)")
    engines.add_argument("--all", action="store_true", help="all known engines, not only served ones")
    add_engine_flags(engines)
    engines.set_defaults(func=cmd_engines)
