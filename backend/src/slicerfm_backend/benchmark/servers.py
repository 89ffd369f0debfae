"""Real server processes for the measurements (``slicerfm-backend serve`` on loopback)."""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from typing import Dict, Optional, Sequence

from .ball import PLUGIN_SPEC


def server_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """This process's environment with ``bench_ball`` registered and ``extra`` added."""
    env = dict(os.environ)
    plugins = env.get("SLICERFM_ENGINE_PLUGINS")
    env["SLICERFM_ENGINE_PLUGINS"] = f"{plugins},{PLUGIN_SPEC}" if plugins else PLUGIN_SPEC
    env.update(extra or {})
    return env


def log_path(name: str) -> str:
    """A log file for a server started by this process."""
    return os.path.join(tempfile.gettempdir(), f"slicerfm-{name}-{os.getpid()}.log")


def start_backend(engines: Sequence[str], name: str = "bench", device: Optional[str] = None,
                  env: Optional[Dict[str, str]] = None, startup_timeout_s: float = 120.0):
    """A started :class:`LocalBackend` serving ``engines`` (``bench_ball`` available too);
    its log at :func:`log_path` ``(name)``."""
    from slicerfm_client.launcher import LocalBackend, default_command

    backend = LocalBackend(default_command(), engines=list(engines), device=device, env=server_env(env),
                           log_path=log_path(name), startup_timeout_s=startup_timeout_s)
    backend.start()
    return backend


@contextlib.contextmanager
def sigterm_stops_servers():
    """While inside, SIGTERM raises :class:`SystemExit` in the main thread, so the servers this
    process started are stopped on the way out (their ``finally`` blocks and atexit hooks run;
    SIGTERM's default action ends this process alone and leaves them serving)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on_sigterm(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
