"""The module's link to a SlicerFM backend: local process or remote server, plus status.

"local": the module starts ``slicerfm-backend serve`` itself on 127.0.0.1 with a free port
(``slicerfm_client.launcher.LocalBackend``), from a configured executable or Python
environment, in a clean environment (:func:`launch_environment`), and stops it on
disconnect or when Slicer exits. "remote": a URL and an
optional access token. Either way one ``SlicerFMClient`` holds one session.

Qt-free and MRML-free: the Logic calls ``connect``/``reconnect`` from its worker thread.
The access token is kept only in memory: it is excluded from ``repr`` and never logged.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from slicerfm_client import errors
from slicerfm_client.client import SlicerFMClient, normalise_url
from slicerfm_client.launcher import LocalBackend, clean_environment, default_command

from .client_setup import running_in_slicer_app

log = logging.getLogger(__name__)

LOCAL, REMOTE = "local", "remote"
BACKEND_EXECUTABLE = "slicerfm-backend"
CLIENT_NAME = "3D Slicer (SlicerFM)"


@dataclass
class ConnectionSettings:
    """How to reach a backend.

    mode: "local" (start a backend process) or "remote" (connect to ``url``).
    url, token: remote server address (http:// or https://) and its access token ("" = none).
    ca_bundle: remote https://: PEM file of the certificate authority that signed the server's
        certificate ("" = the system's store); certificates are always verified.
    allow_insecure_http: remote plain http:// to another machine is allowed (the token and the
        images cross the network unencrypted); refused otherwise.
    backend: local mode: the ``slicerfm-backend`` executable, a Python interpreter, or a
        Python environment folder holding the backend; "" = ``slicerfm-backend`` on PATH.
    engines: local mode: comma-separated engines to serve (e.g. "classic").
    device: local mode: "auto", "cpu", "cuda" or "cuda:N".
    log_path: local mode: file receiving the backend's output ("" = discard).
    """

    mode: str = LOCAL
    url: str = ""
    token: str = field(default="", repr=False)
    ca_bundle: str = ""
    allow_insecure_http: bool = False
    backend: str = ""
    engines: str = "classic"
    device: str = "auto"
    log_path: str = ""


@dataclass
class ServerStatus:
    """What the connection panel shows. ``engines`` are the server's engine descriptions
    (name, description, prompt_kinds, device, weights_present, ...)."""

    url: str
    mode: str
    server_version: str
    protocol_version: str
    auth_required: bool
    engines: List[Dict[str, Any]]
    device: str = ""

    def summary(self) -> str:
        """One line per engine: ``name (device)``, plus the server line."""
        lines = [f"SlicerFM backend {self.server_version} at {self.url} "
                 f"(protocol {self.protocol_version}, {self.mode})"]
        for engine in self.engines:
            ready = "ready" if engine.get("weights_present", True) else "weights missing"
            lines.append(f"  {engine.get('name')}: {engine.get('device', '?')}, {ready}")
        return "\n".join(lines)


def _python_in_environment(folder: Path) -> Optional[Path]:
    for candidate in (folder / "bin" / "python", folder / "bin" / "python3",
                      folder / "Scripts" / "python.exe", folder / "python.exe"):
        if candidate.is_file():
            return candidate
    return None


def backend_command(backend: str) -> List[str]:
    """The command line that starts the local backend (before ``serve ...``).

    ``backend`` is an executable (``.../bin/slicerfm-backend``), a Python interpreter
    (``.../bin/python`` -> ``python -m slicerfm_backend``), a Python environment folder,
    or "" (``slicerfm-backend`` found on PATH). Raises ConfigurationError saying what to set.
    """
    text = (backend or "").strip()
    if not text:
        found = shutil.which(BACKEND_EXECUTABLE)
        if found is None:
            raise errors.ConfigurationError(
                f"no '{BACKEND_EXECUTABLE}' found on PATH: install the backend in its own Python "
                f"environment (pip install slicerfm-client slicerfm-backend) and enter the path of "
                f"its '{BACKEND_EXECUTABLE}' executable or of the environment folder in the "
                "connection settings, or use a remote server")
        return [found]
    path = Path(os.path.expanduser(text))
    if path.is_dir():
        python = _python_in_environment(path)
        if python is None:
            raise errors.ConfigurationError(
                f"the folder {path} is not a Python environment (no bin/python or "
                "Scripts/python.exe in it): enter the environment holding slicerfm-backend")
        return default_command(str(python))
    if not path.is_file():
        raise errors.ConfigurationError(
            f"the backend path {path} does not exist: enter the '{BACKEND_EXECUTABLE}' "
            "executable or the Python environment folder that holds the backend")
    if path.name.lower().startswith("python"):
        return default_command(str(path))
    return [str(path)]


def launch_environment() -> Dict[str, str]:
    """The environment the local backend starts in.

    Inside Slicer: ``slicer.util.startupEnvironment()``, the environment Slicer was started
    in, without what its launcher added for Slicer's own Python and libraries
    (``PYTHONHOME``, ``PYTHONPATH``, ``PYTHONNOUSERSITE``, library paths:
    ``SuperBuild/External_python.cmake``; Slicer's script repository recommends it for
    starting external programs, ``Docs/developer_guide/script_repository/gui.md``; available
    in 5.8 and later). Elsewhere: this process's environment. Either way without Python's
    runtime variables (:func:`slicerfm_client.launcher.clean_environment`).
    """
    if running_in_slicer_app():
        import slicer

        return clean_environment(slicer.util.startupEnvironment())
    return clean_environment(os.environ)


def configured_test_backend(environ: Optional[Dict[str, str]] = None,
                            which: Callable[[str], Optional[str]] = shutil.which
                            ) -> Tuple[Optional[str], str]:
    """The backend the module's self-test should start: ``(backend, "")`` from
    ``SLICERFM_BACKEND`` (an executable or Python environment) or ``slicerfm-backend`` on
    PATH; ``(None, reason)`` when neither is configured (the test is skipped then)."""
    environ = os.environ if environ is None else environ
    configured = (environ.get("SLICERFM_BACKEND") or "").strip()
    if configured:
        return configured, ""
    found = which(BACKEND_EXECUTABLE)
    if found:
        return found, ""
    return None, ("no SlicerFM backend configured: set SLICERFM_BACKEND to a "
                  f"'{BACKEND_EXECUTABLE}' executable or its Python environment (CMake: "
                  "-DSLICERFM_TEST_BACKEND=...), or put it on PATH")


def describe_error(error: BaseException, settings: Optional[ConnectionSettings] = None) -> str:
    """A message for the user: what went wrong and what to do. Never contains the token."""
    message = str(error)
    if isinstance(error, errors.AuthenticationError):
        message = ("the server refused the access token: enter the token the server's "
                   "administrator gave you (remote connection settings) and connect again")
    elif isinstance(error, errors.ServerUnreachableError) and settings is not None \
            and settings.mode == LOCAL and settings.log_path:
        message += f" (local backend log: {settings.log_path})"
    elif isinstance(error, errors.SessionExpiredError):
        message = ("the server no longer knows this session (it was restarted, or the session "
                   "timed out): SlicerFM reconnects and re-sends your image and segment")
    if settings is not None and settings.token:
        message = message.replace(settings.token, "<token>")
    return message


class Connection:
    """One backend connection. ``generation`` grows by one whenever the server side starts
    from scratch (new session, or another image attached): segments synced in an older
    generation must be seeded again. Not thread-safe: used by one thread at a time (the
    Logic's worker)."""

    def __init__(self, environment: Callable[[], Dict[str, str]] = launch_environment):
        #: () -> the local backend's environment variables (see :func:`launch_environment`)
        self.environment = environment
        self.settings: Optional[ConnectionSettings] = None
        self.client: Optional[SlicerFMClient] = None
        self.local_backend: Optional[LocalBackend] = None
        self.status: Optional[ServerStatus] = None
        self.generation = 0
        self.attached_image_id: Optional[str] = None

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.session_token is not None

    def connect(self, settings: ConnectionSettings) -> ServerStatus:
        """Disconnect, then (local) start a backend and connect: version check, session,
        heartbeats. Raises a ``slicerfm_client.errors.SlicerFMError`` (see describe_error)."""
        self.disconnect()
        self.settings = settings
        if settings.mode == LOCAL:
            url = self._start_local(settings)
            token = None
        elif settings.mode == REMOTE:
            url, token = normalise_url(settings.url), settings.token or None
        else:
            raise errors.ConfigurationError(f"unknown connection mode {settings.mode!r}: "
                                            f"use '{LOCAL}' or '{REMOTE}'")
        remote = settings.mode == REMOTE
        ca_bundle = os.path.expanduser(settings.ca_bundle) if remote and settings.ca_bundle else None
        client = SlicerFMClient(url, token=token, ca_bundle=ca_bundle,
                                allow_insecure_http=remote and settings.allow_insecure_http)
        try:
            info = client.connect(CLIENT_NAME)
            engines = client.engines()
        except Exception:
            client.close()
            raise
        self.client = client
        self._new_generation()
        self.status = ServerStatus(url=url, mode=settings.mode,
                                   server_version=str(info.get("server_version", "?")),
                                   protocol_version=str(info.get("protocol_version", "?")),
                                   auth_required=bool(info.get("auth_required", False)),
                                   engines=engines)
        log.info("SlicerFM connected to %s (%s)", url, settings.mode)
        return self.status

    def _start_local(self, settings: ConnectionSettings) -> str:
        command = backend_command(settings.backend)
        engines = [e.strip() for e in settings.engines.split(",") if e.strip()] or ["classic"]
        device = None if settings.device in ("", "auto") else settings.device
        self.local_backend = LocalBackend(command, engines=engines, device=device,
                                          env=self.environment(),
                                          log_path=settings.log_path or None)
        return self.local_backend.start()

    def reconnect(self) -> None:
        """Claim a new session after the old one was lost; restarts a local backend that
        is no longer running. The image must be attached again afterwards."""
        if self.client is None or self.settings is None:
            raise errors.ConfigurationError("not connected: connect to a SlicerFM backend first")
        if self.local_backend_died():
            log.info("SlicerFM: the local backend is not running; starting it again")
            self.local_backend.start()
        self.client.connect(CLIENT_NAME)
        self._new_generation()

    def local_backend_died(self) -> bool:
        """True in local mode when the backend process is no longer running."""
        backend = self.local_backend
        return backend is not None and (backend.process is None or backend.process.poll() is not None)

    def _new_generation(self) -> None:
        self.generation += 1
        self.attached_image_id = None

    def attach(self, image_id: str) -> bool:
        """Attach ``image_id`` (already on the server) unless it is attached; True when the
        session's segments were reset by attaching another image."""
        if image_id == self.attached_image_id:
            return False
        self.client.attach_image(image_id)
        changed = self.attached_image_id is not None
        self.attached_image_id = image_id
        if changed:
            self.generation += 1
        return changed

    def disconnect(self) -> None:
        """Release the session and stop a local backend (both best effort)."""
        client, self.client = self.client, None
        if client is not None:
            client.close()
        backend, self.local_backend = self.local_backend, None
        if backend is not None:
            backend.stop()
        self.status = None
        self._new_generation()


def default_log_path() -> str:
    """Where a local backend writes its output: ``<temp>/slicerfm-backend.log``."""
    import tempfile

    return str(Path(tempfile.gettempdir()) / "slicerfm-backend.log")

