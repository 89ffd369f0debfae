"""``--local``: one ``slicerfm-backend`` process on loopback for every tab, kept running.

Started the way the Slicer module's local mode starts it (``SlicerFMLib.connection
.backend_command`` finds the executable -- by default the ``slicerfm-backend`` installed
beside this Python, else on PATH -- and ``slicerfm_client.launcher.LocalBackend`` runs it on
127.0.0.1 with a free port). When the process dies it is started again on the same port;
the tabs' Logic then finds its session gone, reconnects and re-seeds from its scene.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from pathlib import Path
from typing import Optional

from slicerfm_client.launcher import LocalBackend

from SlicerFMLib.connection import BACKEND_EXECUTABLE, backend_command

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 2.0


def local_backend_command(backend: str) -> list:
    """The backend command: ``backend`` when given, else the ``slicerfm-backend`` beside this
    interpreter (one venv with both), else the module's rule (PATH)."""
    if not backend:
        beside = Path(sys.executable).with_name(BACKEND_EXECUTABLE)
        if beside.is_file():
            return [str(beside)]
        if shutil.which(BACKEND_EXECUTABLE) is None:
            return backend_command("")          # raises, saying what to install
    return backend_command(backend)


class BackendSupervisor:
    def __init__(self, backend: str, engines: str, device: str, log_path: Path):
        names = [e.strip() for e in engines.split(",") if e.strip()] or ["classic"]
        self.backend = LocalBackend(local_backend_command(backend), engines=names,
                                    device=None if device in ("", "auto") else device,
                                    log_path=str(log_path))
        self.log_path = log_path
        self.restarts = 0
        self._task: Optional[asyncio.Task] = None

    @property
    def url(self) -> str:
        return self.backend.url

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.backend.start)
        self._task = loop.create_task(self._watch())
        return self.url

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            process = self.backend.process
            if process is not None and process.poll() is None:
                continue
            self.restarts += 1
            log.warning("the local backend stopped (code %s); starting it again (log %s)",
                        None if process is None else process.returncode, self.log_path)
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._restart)
            except Exception as error:                     # keep watching, try again later
                log.error("the local backend did not start again: %s", error)

    def _restart(self) -> None:
        self.backend.stop()                       # closes the old log handle
        self.backend.start()                      # same port: the tabs' URL stays valid

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self.backend.stop)
