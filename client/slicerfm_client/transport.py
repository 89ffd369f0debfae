"""How the client reaches a server: which connections are allowed, and what a failed one means.

``https://`` is always verified (see :class:`slicerfm_client.client.SlicerFMClient`); plain
``http://`` is fine on this machine and needs an explicit opt-in for another one.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from typing import Any
from urllib.parse import urlsplit

import requests

from . import errors

log = logging.getLogger("slicerfm_client.client")


def is_loopback_url(url: str) -> bool:
    """True when ``url`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(url: str, allow_insecure_http: bool) -> bool:
    """Refuse plain HTTP to another machine unless allowed (ConfigurationError saying how);
    returns True when the connection is insecure (plain HTTP off this machine)."""
    if not url.startswith("http://") or is_loopback_url(url):
        return False
    allowed = allow_insecure_http or os.environ.get("SLICERFM_ALLOW_INSECURE_HTTP", "") in ("1", "true", "yes")
    if not allowed:
        raise errors.ConfigurationError(
            f"{url} is plain HTTP to another machine: the access token and your images would cross "
            "the network unencrypted. Use the server's https:// address, or allow plain HTTP "
            "explicitly (allow_insecure_http=True, or SLICERFM_ALLOW_INSECURE_HTTP=1) on a trusted network")
    log.warning("SlicerFM: plain HTTP to %s is not encrypted; use https:// outside a trusted network", url)
    return True


def connection_lost(error: requests.exceptions.ConnectionError) -> bool:
    """True when the connection broke after the request was sent (reset, closed early),
    False when it could not be made at all (refused, no route, name not found)."""
    text = repr(error)
    return not any(marker in text for marker in ("NewConnectionError", "NameResolutionError",
                                                 "Connection refused", "Failed to establish"))


def is_stream(data: Any) -> bool:
    """A request body that can be sent only once (an iterator: an upload being encoded)."""
    return data is not None and not isinstance(data, (bytes, bytearray, str, dict))
