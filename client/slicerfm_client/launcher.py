"""Start and stop a local backend process on loopback (Slicer's "local" mode, evaluate).

The backend runs in its own Python environment -- torch and the models never enter the
caller's process. ``LocalBackend`` picks a free port on 127.0.0.1, starts
``<command> serve --host 127.0.0.1 --port P``, waits until ``/api/info`` answers, and stops
the process on ``stop()``, on leaving a ``with`` block, or when the caller exits.

A caller that runs inside another application's Python (3D Slicer) must not hand its own
Python runtime variables to the backend: Slicer's launcher sets ``PYTHONHOME``,
``PYTHONPATH`` and ``PYTHONNOUSERSITE`` for Slicer's Python, and the backend's interpreter
would then load Slicer's standard library and fail to start. :func:`clean_environment`
removes them; the Slicer module starts from ``slicer.util.startupEnvironment()`` as well.
On Windows the backend's console window is hidden (:func:`hidden_console_options`).
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import requests

from . import errors, protocol


#: Python's runtime variables: they point an interpreter at a standard library and packages
#: (Slicer's launcher sets the first three for its own Python: SuperBuild/External_python.cmake)
PYTHON_RUNTIME_VARIABLES = ("PYTHONHOME", "PYTHONPATH", "PYTHONNOUSERSITE", "PYTHONSTARTUP",
                            "PYTHONEXECUTABLE", "PYTHONUSERBASE", "PYTHONPLATLIBDIR",
                            "PYTHONSAFEPATH")
#: Win32 STARTUPINFO: use wShowWindow; SW_HIDE
STARTF_USESHOWWINDOW, SW_HIDE = 0x00000001, 0


def clean_environment(environ: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """A copy of ``environ`` (default ``os.environ``) without :data:`PYTHON_RUNTIME_VARIABLES`,
    so that another Python installation started with it uses its own standard library and
    packages."""
    source = os.environ if environ is None else environ
    return {key: value for key, value in source.items()
            if key.upper() not in PYTHON_RUNTIME_VARIABLES}


def hidden_console_options(platform: Optional[str] = None, subprocess_module=subprocess) -> dict:
    """``subprocess.Popen`` keyword arguments that keep the backend's console window hidden
    on Windows (a console program started from a GUI application gets one), as
    ``slicer.util.launchConsoleProcess`` does: ``STARTUPINFO`` with ``STARTF_USESHOWWINDOW``
    and ``SW_HIDE``. Empty elsewhere."""
    if (platform or sys.platform) != "win32":
        return {}
    info = subprocess_module.STARTUPINFO()
    info.dwFlags |= STARTF_USESHOWWINDOW
    info.wShowWindow = SW_HIDE
    return {"startupinfo": info}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def default_command(python: Optional[str] = None) -> List[str]:
    """``[python, -m, slicerfm_backend]`` for a Python environment holding the backend."""
    return [python or sys.executable, "-m", "slicerfm_backend"]


class LocalBackend:
    """A backend subprocess on 127.0.0.1. ``command`` is the executable and its leading args,
    e.g. ``["/opt/slicerfm/bin/slicerfm-backend"]`` or :func:`default_command`. ``env``: its
    environment (default: this process's, as it is; pass :func:`clean_environment` from
    inside another application's Python). ``extra_args``: more ``serve`` flags, e.g.
    ``["--ray", ADDRESS]``."""

    def __init__(self, command: Sequence[str], engines: Sequence[str] = ("classic",),
                 device: Optional[str] = None, port: Optional[int] = None,
                 env: Optional[Dict[str, str]] = None, log_path: Optional[str] = None,
                 startup_timeout_s: float = 120.0, extra_args: Sequence[str] = ()):
        self.command = list(command)
        self.extra_args = list(extra_args)
        self.engines = list(engines)
        self.device = device
        self.port = port or free_port()
        self.env = env
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.process: Optional[subprocess.Popen] = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the process and wait until it answers; returns its URL."""
        args = self.command + ["serve", "--host", "127.0.0.1", "--port", str(self.port),
                               "--engines", ",".join(self.engines)]
        if self.device:
            args += ["--device", self.device]
        args += self.extra_args
        env = dict(os.environ if self.env is None else self.env)
        env.pop("SLICERFM_HOST", None)  # local mode is loopback, whatever the environment says
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(args, env=env, stdout=self._log, stderr=self._log,
                                            **hidden_console_options())
        except OSError as error:
            raise errors.ConfigurationError(
                f"cannot start the local backend {self.command[0]!r}: {error}. Install it with "
                f"'pip install {protocol.SERVER_PACKAGE}' and set its path in the settings."
            ) from error
        atexit.register(self.stop)
        self._wait_ready()
        return self.url

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                where = f"; see its log at {self.log_path}" if self.log_path else ""
                raise errors.ServerUnreachableError(
                    f"the local backend exited with code {code} while starting{where}"
                )
            try:
                if requests.get(self.url + protocol.PATH_INFO, timeout=1.0).ok:
                    return
            except requests.exceptions.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise errors.ServerUnreachableError(
            f"the local backend did not answer within {self.startup_timeout_s:.0f} s"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the process to stop (SIGTERM), kill it if it does not within ``timeout_s``."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
            self._log = None

    def __enter__(self) -> "LocalBackend":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
