"""Per-user access tokens, stored hashed in ``<state dir>/users.json``.

``slicerfm-backend users add NAME`` makes a token ``sfmu_<id>_<secret>`` and prints it once;
the file keeps only the token's id and the SHA-256 of the whole token (tokens are 256-bit
random, so a fast hash is enough), the role, the expiry and, once revoked, when. A running
server sees changes at the next request (the file is re-read when it changes), so a
revoked user's next request is refused. Once the file exists the server requires a token,
even when every user has been revoked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from .identity import ADMIN, ANNOTATOR, ROLES, USER_TOKEN, Identity, check_user_name

USERS_FILE = "users.json"
TOKEN_PREFIX = "sfmu_"


class UserError(ValueError):
    """A users command cannot be done (unknown user, existing name, bad expiry)."""


@dataclass
class UserRecord:
    name: str
    role: str
    token_id: str
    token_sha256: str
    created: str
    expires: Optional[str] = None
    revoked: Optional[str] = None

    def status(self, now: dt.datetime) -> str:
        if self.revoked:
            return "revoked"
        if self.expires and now >= dt.datetime.fromisoformat(self.expires):
            return "expired"
        return "active"


def parse_expiry(text: Optional[str]) -> Optional[dt.datetime]:
    """``YYYY-MM-DD`` (valid through that day, UTC) or an ISO date-time; None for None."""
    if not text:
        return None
    try:
        if len(text) == 10:
            return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
        moment = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise UserError(f"--expires {text!r} is not a date (YYYY-MM-DD) or ISO date-time") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UserStore:
    """The users of one state directory; thread-safe; re-reads the file when it changed."""

    def __init__(self, state_dir: Path, clock=_now):
        self.path = Path(state_dir) / USERS_FILE
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = None
        self._users: Dict[str, UserRecord] = {}
        self._by_token_id: Dict[str, UserRecord] = {}

    @property
    def enabled(self) -> bool:
        """True once the users file exists (then the server always requires a token)."""
        return self.path.exists()

    # -- reading -------------------------------------------------------------------------

    def _refresh(self) -> None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._users, self._by_token_id = None, {}, {}
            return
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        if stamp == self._stamp:
            return
        users = {name: UserRecord(**row) for name, row in
                 json.loads(self.path.read_text(encoding="utf-8")).get("users", {}).items()}
        self._users, self._stamp = users, stamp
        self._by_token_id = {record.token_id: record for record in users.values()}

    def list(self) -> List[UserRecord]:
        with self._lock:
            self._refresh()
            return sorted(self._users.values(), key=lambda record: record.name)

    def active_identities(self) -> List[Identity]:
        """The identities of users whose tokens work now (not revoked, not expired)."""
        now = self._clock()
        return [Identity(r.name, r.role, USER_TOKEN) for r in self.list() if r.status(now) == "active"]

    def authenticate(self, token: str) -> Optional[Identity]:
        """The identity of a user token; None when it is wrong, revoked or expired."""
        _, _, rest = token.partition(TOKEN_PREFIX)
        token_id = rest.split("_", 1)[0]
        with self._lock:
            self._refresh()
            record = self._by_token_id.get(token_id)
        if record is None or not hmac.compare_digest(_digest(token), record.token_sha256):
            return None
        if record.status(self._clock()) != "active":
            return None
        return Identity(record.name, record.role, USER_TOKEN)

    def refusal(self, token: str) -> str:
        """Why a user token was refused (revoked, expired or unknown), for the 401 message."""
        token_id = token[len(TOKEN_PREFIX):].split("_", 1)[0]
        with self._lock:
            self._refresh()
            record = self._by_token_id.get(token_id)
        if record is None or not hmac.compare_digest(_digest(token), record.token_sha256):
            return "the access token is wrong; ask the server's administrator for yours"
        return (f"this access token was {record.status(self._clock())}; ask the server's administrator "
                "for a new one")

    # -- changing (the users command) ----------------------------------------------------

    @contextlib.contextmanager
    def _editing(self) -> Iterator[Dict[str, UserRecord]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with self._lock:
                self._stamp = None
                self._refresh()
                users = dict(self._users)
            yield users
            payload = json.dumps({"users": {name: asdict(r) for name, r in sorted(users.items())}}, indent=1)
            temporary = self.path.with_suffix(".tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)

    def add(self, name: str, role: str = ANNOTATOR, expires: Optional[str] = None) -> str:
        """Create (or re-create a revoked) user; returns the token, which is not stored."""
        try:
            check_user_name(name)
        except ValueError as error:
            raise UserError(str(error)) from None
        if role not in ROLES:
            raise UserError(f"role {role!r} unknown; use {' or '.join(ROLES)}")
        expiry = parse_expiry(expires)
        with self._editing() as users:
            existing = users.get(name)
            if existing is not None and existing.status(self._clock()) == "active":
                raise UserError(f"user {name!r} exists; revoke it first to issue a new token")
            token_id = secrets.token_hex(5)
            token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
            users[name] = UserRecord(name, role, token_id, _digest(token), self._clock().isoformat(),
                                     expiry.isoformat() if expiry else None)
        return token

    def revoke(self, name: str) -> None:
        with self._editing() as users:
            record = users.get(name)
            if record is None:
                raise UserError(f"no user {name!r}; `slicerfm-backend users list` shows them")
            if not record.revoked:
                record.revoked = self._clock().isoformat()


__all__ = ["ADMIN", "ANNOTATOR", "TOKEN_PREFIX", "UserError", "UserRecord", "UserStore", "parse_expiry"]
