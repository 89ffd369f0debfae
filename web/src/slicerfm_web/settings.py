"""Settings of ``slicerfm-web``: command-line flags, else ``SLICERFM_WEB_<NAME>`` variables.

Two secrets, never taken from a flag (flags are visible to every local user in ``ps``):

* the **web access token** (``SLICERFM_WEB_TOKEN`` or ``--web-token-file``): what a browser
  must present to use the page. Required when listening on anything but loopback.
* the **backend token** (``SLICERFM_TOKEN``, the backend's own variable, or ``--token-file``):
  what the tabs send to a remote backend that requires one.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

MIB = 1024 * 1024
DEFAULT_PORT = 8770


class SettingsError(ValueError):
    """A setting that cannot work; the message says what to change."""


@dataclass
class WebSettings:
    """host/port: where the gateway listens. server_url: a running backend ("" with
    local=True: start one). backend/engines/device: the local backend (as in the Slicer
    module's local mode). data_dir: a folder the pages may open images from. max_tabs:
    open tabs at once; spare_tabs: tab processes started ahead of need; tab_grace_s: how
    long a closed tab keeps its session (a reload within it finds its work again).
    ca_bundle / allow_insecure_http: how the tabs reach a remote backend (see
    ``SlicerFMLib.connection.ConnectionSettings``)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    server_url: str = ""
    local: bool = False
    backend: str = ""
    engines: str = "classic"
    device: str = "auto"
    backend_token: str = field(default="", repr=False)
    ca_bundle: str = ""
    allow_insecure_http: bool = False
    web_token: str = field(default="", repr=False)
    data_dir: str = ""
    max_tabs: int = 8
    spare_tabs: int = 1
    tab_grace_s: int = 30
    max_upload_bytes: int = 2048 * MIB
    max_voxels: int = 600_000_000
    auto_engines: str = "vista3d"
    log_dir: str = ""

    def validate(self) -> "WebSettings":
        if self.local and self.server_url:
            raise SettingsError("give either --server URL or --local, not both")
        if not self.local and not self.server_url:
            raise SettingsError("say which backend to use: --server URL (a running "
                                "slicerfm-backend) or --local (start one here)")
        if not is_loopback(self.host) and not self.web_token:
            raise SettingsError(
                f"refusing to listen on {self.host} without an access token: anyone who can "
                "reach it could use your backend and see your images. Set SLICERFM_WEB_TOKEN "
                "(e.g. SLICERFM_WEB_TOKEN=$(openssl rand -hex 24)) or --web-token-file, or "
                "keep the default --host 127.0.0.1")
        if self.web_token and len(self.web_token) < 16:
            raise SettingsError("the web access token must have at least 16 characters")
        for name in ("port", "max_tabs", "tab_grace_s", "max_upload_bytes", "max_voxels"):
            if int(getattr(self, name)) <= 0:
                raise SettingsError(f"{name.replace('_', '-')} must be positive")
        if self.spare_tabs < 0:
            raise SettingsError("spare-tabs must be 0 or more")
        if self.server_url:
            self._check_backend_transport()
        if self.data_dir and not Path(self.data_dir).expanduser().is_dir():
            raise SettingsError(f"the data folder {self.data_dir} does not exist")
        return self

    def _check_backend_transport(self) -> None:
        """At start, not in every tab: plain HTTP to another machine needs the opt-in, and a
        CA bundle must be a file (raises SettingsError saying what to change)."""
        from slicerfm_client import errors
        from slicerfm_client.transport import check_transport

        try:
            check_transport(self.server_url, self.allow_insecure_http)
        except errors.ConfigurationError:
            raise SettingsError(
                f"{self.server_url} is plain HTTP to another machine: the backend token and the "
                "images would cross the network unencrypted. Use the backend's https:// address "
                "(with --ca-bundle for a lab's own CA), or --allow-insecure-http on a trusted "
                "network") from None
        if self.ca_bundle:
            self.ca_bundle = str(Path(self.ca_bundle).expanduser())
            if not Path(self.ca_bundle).is_file():
                raise SettingsError(f"the CA bundle {self.ca_bundle} does not exist")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost"."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_secret_file(path: Optional[str], what: str) -> str:
    if not path:
        return ""
    try:
        value = Path(path).expanduser().read_text().strip()
    except OSError as error:
        raise SettingsError(f"cannot read the {what} file {path}: {error.strerror}") from error
    if not value:
        raise SettingsError(f"the {what} file {path} is empty")
    return value


def env(name: str, default=None):
    return os.environ.get(f"SLICERFM_WEB_{name}", default)
