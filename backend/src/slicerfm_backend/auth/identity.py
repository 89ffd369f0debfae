"""The identity a request runs as, and the roles a user can have."""

from __future__ import annotations

import re
from dataclasses import dataclass

ANNOTATOR, ADMIN = "annotator", "admin"
ROLES = (ANNOTATOR, ADMIN)

#: How the identity was proven: no authentication (loopback, no token), the shared token,
#: a user token (``slicerfm-backend users``), or an OpenID Connect JWT.
NONE, SHARED_TOKEN, USER_TOKEN, OIDC = "none", "token", "user", "oidc"

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def check_user_name(name: str) -> str:
    """``name`` when it is a valid user name (letters, digits, ``. _ @ -``; 1-64 characters)."""
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise ValueError(f"user name {name!r} is not allowed: use 1 to 64 letters, digits, '.', '_', "
                         "'@' or '-', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class Identity:
    """``name`` (the user), ``role`` (annotator or admin) and ``source`` (see above).

    ``owner`` is the key that sessions, images and jobs are owned by: the same name proven
    two ways (a local user and an OIDC user) are two owners.
    """

    name: str
    role: str
    source: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def owner(self) -> str:
        return f"{self.source}:{self.name}"


#: Everyone on a server without authentication (loopback, no token): one user, who may
#: administer the server.
LOCAL = Identity("local", ADMIN, NONE)
#: The holder of the shared token (simple mode): one user for everyone with it.
SHARED = Identity("shared", ADMIN, SHARED_TOKEN)
