"""The one place that decides whether a server needs credentials, and whose they are.

Modes, combinable: the shared token (``SLICERFM_TOKEN`` / ``--token-file``: simple mode,
one user ``shared`` for everyone holding it), per-user tokens (``<state dir>/users.json``,
see :mod:`.users`) and OpenID Connect JWTs (:mod:`.oidc`). A server with none of them needs
no credentials (meant for loopback; ``serve`` refuses another address) and everyone is the
user ``local``. Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from typing import List, Optional

from slicerfm_client import protocol

from ..errors import DomainError
from .identity import LOCAL, SHARED, Identity
from .oidc import OIDCError, OIDCVerifier, looks_like_jwt
from .users import TOKEN_PREFIX, UserStore


def unauthorized(message: str) -> DomainError:
    return DomainError(protocol.ERROR_UNAUTHORIZED, message)


class Authenticator:
    def __init__(self, token: Optional[str] = None, users: Optional[UserStore] = None,
                 oidc: Optional[OIDCVerifier] = None):
        if token is not None and not token.strip():
            raise ValueError("an empty access token would switch authentication off; set a real token")
        self._token = token
        self.users = users
        self.oidc = oidc

    @classmethod
    def from_settings(cls, settings) -> "Authenticator":
        users = UserStore(settings.state_dir) if settings.state_dir is not None else None
        return cls(settings.token_value(), users, OIDCVerifier.from_settings(settings))

    @property
    def required(self) -> bool:
        """Whether requests need credentials (the server's ``auth_required``)."""
        return self._token is not None or self.oidc is not None or (
            self.users is not None and self.users.enabled)

    def modes(self) -> List[str]:
        """The kinds of credentials this server takes: ``token``, ``users``, ``oidc``."""
        return [name for name, on in (("token", self._token is not None),
                                      ("users", self.users is not None and self.users.enabled),
                                      ("oidc", self.oidc is not None)) if on]

    def authenticate(self, authorization: Optional[str]) -> Identity:
        """The identity behind an ``Authorization`` header; 401 with what to do otherwise."""
        if not self.required:
            return LOCAL
        scheme, _, given = (authorization or "").partition(" ")
        given = given.strip()
        if not given or scheme.lower() != "bearer":
            raise unauthorized("this server requires an access token; enter it in the connection settings")
        if self._token is not None and hmac.compare_digest(given.encode(), self._token.encode()):
            return SHARED
        if self.users is not None and given.startswith(TOKEN_PREFIX):
            identity = self.users.authenticate(given)
            if identity is None:
                raise unauthorized(self.users.refusal(given))
            return identity
        if self.oidc is not None and looks_like_jwt(given):
            try:
                return self.oidc.verify(given)
            except OIDCError as error:
                raise unauthorized(str(error)) from None
        raise unauthorized("the access token is wrong; ask the server's administrator for the right one")
