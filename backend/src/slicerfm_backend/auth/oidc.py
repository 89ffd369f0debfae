"""JWTs from the site's OpenID Connect provider (optional), verified with PyJWT.

A bearer token with three dot-separated parts is taken as a JWT when the server was
started with ``oidc_issuer``, ``oidc_audience`` and ``oidc_jwks``: its signature must
verify with a key of the provider's JWKS (a file, re-read when it changes, or an https URL,
fetched and cached by ``jwt.PyJWKClient``), with an asymmetric algorithm only (never
``none`` or a shared-secret HMAC), and its ``iss``, ``aud`` and ``exp`` must be right. The
user name comes from ``oidc_user_claim``; the ``oidc_admin_role`` in ``oidc_roles_claim``
makes an admin.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Optional

import jwt

from .identity import ADMIN, ANNOTATOR, OIDC, Identity, check_user_name

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_S = 30


class OIDCError(ValueError):
    """A JWT is not acceptable; the message says why (shown in the 401 answer)."""


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("sfmu_")


class _JWKSFile:
    """The signing keys in a JWKS file, re-read when the file changes."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp = None
        self._keys = None
        self._lock = threading.Lock()

    def key_for(self, token: str):
        kid = jwt.get_unverified_header(token).get("kid")
        with self._lock:
            stamp = self.path.stat().st_mtime_ns
            if stamp != self._stamp:
                self._keys = jwt.PyJWKSet.from_json(self.path.read_text(encoding="utf-8"))
                self._stamp = stamp
            keys = self._keys.keys
        matching = [key for key in keys if kid is None or key.key_id == kid]
        if not matching:
            raise OIDCError("the token's signing key is not among the provider's keys")
        return matching[0]


class OIDCVerifier:
    def __init__(self, issuer: str, audience: str, jwks: str, user_claim: str = "preferred_username",
                 roles_claim: str = "roles", admin_role: str = "slicerfm-admin"):
        if not (issuer and audience and jwks):
            raise ValueError("OpenID Connect needs all of SLICERFM_OIDC_ISSUER, SLICERFM_OIDC_AUDIENCE "
                             "and SLICERFM_OIDC_JWKS")
        self.issuer, self.audience = issuer, audience
        self.user_claim, self.roles_claim, self.admin_role = user_claim, roles_claim, admin_role
        if jwks.startswith("https://") or jwks.startswith("http://"):
            self._keys = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=300, timeout=10)
            self._key_for = lambda token: self._keys.get_signing_key_from_jwt(token)
        else:
            path = Path(jwks).expanduser()
            if not path.is_file():
                raise ValueError(f"SLICERFM_OIDC_JWKS: no such file {path}")
            self._keys = _JWKSFile(path)
            self._key_for = self._keys.key_for

    def verify(self, token: str) -> Identity:
        """The identity in a valid JWT; OIDCError saying what is wrong otherwise."""
        try:
            key = self._key_for(token)
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=self.audience, issuer=self.issuer,
                                leeway=LEEWAY_S, options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError as error:
            raise OIDCError("the sign-in token has expired; sign in again") from error
        except (jwt.PyJWTError, OSError, ValueError) as error:
            raise OIDCError(f"the sign-in token is not accepted ({type(error).__name__})") from error
        name = claims.get(self.user_claim)
        try:
            check_user_name(name)
        except ValueError as error:
            raise OIDCError(f"the sign-in token's {self.user_claim!r} claim is not a usable user name") from error
        roles = claims.get(self.roles_claim) or []
        role = ADMIN if isinstance(roles, list) and self.admin_role in roles else ANNOTATOR
        return Identity(name, role, OIDC)

    @classmethod
    def from_settings(cls, settings) -> Optional["OIDCVerifier"]:
        if not (settings.oidc_issuer or settings.oidc_audience or settings.oidc_jwks):
            return None
        return cls(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks,
                   settings.oidc_user_claim, settings.oidc_roles_claim, settings.oidc_admin_role)
