"""``slicerfm-backend weights list | fetch | verify | path | import``.

Exit status: 0 on success, 1 when weights are missing or do not match, 2 on usage errors
(unknown engine, licence not accepted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from . import store
from .catalogue import CATALOGUE, WeightsEntry, entry_for
from .checks import pinned_summary


def _size(entry: WeightsEntry) -> str:
    if entry.size_bytes is not None:
        return f"{entry.size_bytes} B"
    return f"~{entry.approx_size}" if entry.approx_size != "unknown" else "unknown"


def _quick_state(entry: WeightsEntry, root: Path) -> str:
    """missing / present / size mismatch, from the file size only (``verify`` hashes)."""
    file = store.path(entry, root)
    if not file.is_file():
        return "missing"
    expected = entry.size_bytes or store.read_record(entry, root).get("size_bytes")
    return "SIZE MISMATCH" if expected is not None and file.stat().st_size != expected else "present"


def cmd_list(args: argparse.Namespace, root: Path) -> int:
    print(f"{'engine':<14} {'file':<22} {'revision':<22} {'size':<10} {'status':<14} licence")
    for entry in CATALOGUE.values():
        print(f"{entry.engine:<14} {entry.filename:<22} {entry.revision:<22} {_size(entry):<10} "
              f"{_quick_state(entry, root):<14} {entry.licence}")
    print(f"store: {root}   (`weights verify` hashes the files; `weights fetch ENGINE` downloads)")
    return 0


def _describe(entry: WeightsEntry) -> None:
    print(f"{entry.engine}: {entry.filename} from {entry.url}\n  size: {_size(entry)}; "
          f"checked: {pinned_summary(entry)}\n  licence: {entry.licence} ({entry.licence_url})\n"
          f"  note: {entry.note}")


def _confirm_licence(entry: WeightsEntry, assume_yes: bool) -> bool:
    _describe(entry)
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"error: accepting the licence needs a terminal; read it and run "
              f"`slicerfm-backend weights fetch {entry.engine} --yes`", file=sys.stderr)
        return False
    answer = input("Accept this licence and download? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def cmd_fetch(args: argparse.Namespace, root: Path) -> int:
    entry = entry_for(args.engine)
    if entry.hub_repo is None and entry.download_url is None:
        _describe(entry)  # the licence, before the user downloads it by hand
        print(f"error: {store.fix_command(entry)}", file=sys.stderr)
        return 1
    if not _confirm_licence(entry, args.yes):
        return 2
    file = store.fetch(entry, root)
    print(f"installed {file}\n{store.verify(entry, root).detail}")
    return 0


def cmd_verify(args: argparse.Namespace, root: Path) -> int:
    entries = [entry_for(args.engine)] if args.engine else list(CATALOGUE.values())
    failed = False
    for entry in entries:
        result = store.verify(entry, root)
        print(f"{entry.engine:<14} {result.state:<9} {result.detail}")
        failed |= result.state == "mismatch" or (args.engine is not None and not result.ok)
    return 1 if failed else 0


def cmd_path(args: argparse.Namespace, root: Path, override: Optional[str] = None) -> int:
    from .resolve import checkpoint_path
    from ..errors import WeightsMissingError

    try:
        print(checkpoint_path(args.engine, root, override))
    except WeightsMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_import(args: argparse.Namespace, root: Path) -> int:
    entry = entry_for(args.engine)
    file = store.import_file(entry, root, Path(args.file))
    print(f"installed {file}\n{store.verify(entry, root).detail}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    """Run the chosen ``weights`` subcommand with the store and overrides from the settings."""
    from ..settings import settings_from_args
    from .checks import WeightsError

    try:
        settings = settings_from_args(args)
        if args.weights_func is cmd_path:
            return cmd_path(args, settings.weights_dir, settings.checkpoints.get(args.engine))
        return args.weights_func(args, settings.weights_dir)
    except (WeightsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1


def add_parsers(subparsers) -> None:
    """Add ``weights`` and its subcommands to the ``slicerfm-backend`` parser."""
    weights = subparsers.add_parser("weights", help="list, fetch, verify and import model weights")
    wsub = weights.add_subparsers(dest="weights_command", required=True)
    wsub.add_parser("list", help="catalogued weights, licence and whether they are here").set_defaults(
        weights_func=cmd_list)
    fetch = wsub.add_parser("fetch", help="download an engine's weights (shows the licence first)")
    fetch.add_argument("engine")
    fetch.add_argument("--yes", action="store_true", help="accept the licence without asking")
    fetch.set_defaults(weights_func=cmd_fetch)
    verify = wsub.add_parser("verify", help="hash stored weights and compare with the catalogue")
    verify.add_argument("engine", nargs="?")
    verify.set_defaults(weights_func=cmd_verify)
    path = wsub.add_parser("path", help="print the checkpoint file an engine would load")
    path.add_argument("engine")
    path.set_defaults(weights_func=cmd_path)
    imp = wsub.add_parser("import", help="check a file brought over by hand and copy it into the store")
    imp.add_argument("engine")
    imp.add_argument("file")
    imp.set_defaults(weights_func=cmd_import)
    path.add_argument("--checkpoint", action="append", metavar="ENGINE=PATH",
                      help="an override to report instead of the store (repeatable)")
    weights.set_defaults(func=cmd_weights)
