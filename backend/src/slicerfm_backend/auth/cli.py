"""``slicerfm-backend users add|list|revoke``: per-user access tokens in the state directory.

The state directory is ``--state-dir`` or ``SLICERFM_STATE_DIR`` (the server's own). ``add``
prints the new token once, on the last line of its output; only its hash is kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from .identity import ANNOTATOR, ROLES
from .users import UserError, UserStore


def _store(args: argparse.Namespace) -> UserStore:
    state_dir = args.state_dir or os.environ.get("SLICERFM_STATE_DIR")
    if not state_dir:
        raise UserError("no state directory: pass --state-dir DIR or set SLICERFM_STATE_DIR to the "
                        "server's state directory")
    return UserStore(Path(state_dir).expanduser())


def cmd_users(args: argparse.Namespace) -> int:
    try:
        store = _store(args)
        if args.users_command == "add":
            token = store.add(args.name, args.role, args.expires)
            print(f"user {args.name} ({args.role}) added; give them this token (it is shown only once):",
                  file=sys.stderr)
            print(token)
        elif args.users_command == "revoke":
            store.revoke(args.name)
            print(f"user {args.name} revoked; their next request is refused")
        else:
            now = dt.datetime.now(dt.timezone.utc)
            print(f"{'user':<24} {'role':<10} {'status':<8} {'expires':<26} created")
            for record in store.list():
                print(f"{record.name:<24} {record.role:<10} {record.status(now):<8} "
                      f"{record.expires or 'never':<26} {record.created}")
        return 0
    except (UserError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def add_parsers(subparsers) -> None:
    """Add ``users`` and its subcommands to the ``slicerfm-backend`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", dest="state_dir", help="the server's state directory "
                                                              "(default SLICERFM_STATE_DIR)")
    users = subparsers.add_parser("users", help="per-user access tokens: add, list, revoke")
    usub = users.add_subparsers(dest="users_command", required=True)
    add = usub.add_parser("add", parents=[common], help="add a user and print their token once")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default=ANNOTATOR,
                     help="annotator (default) or admin (may list and end everyone's sessions)")
    add.add_argument("--expires", metavar="DATE", help="last day the token works (YYYY-MM-DD, UTC) "
                                                       "or an ISO date-time")
    revoke = usub.add_parser("revoke", parents=[common], help="revoke a user's token at once")
    revoke.add_argument("name")
    usub.add_parser("list", parents=[common], help="users, roles, status and expiry (never tokens)")
    users.set_defaults(func=cmd_users)
