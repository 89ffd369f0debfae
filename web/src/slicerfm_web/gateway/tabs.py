"""Tab processes: one per browser tab, started on demand (or ahead of need), reaped on exit.

Each tab process (``python -m slicerfm_web.tab``) gets its configuration -- backend URL and
token, its own random key and tab id -- as one JSON line on stdin, answers ``{"port": N}``
on stdout once it listens on 127.0.0.1, and writes its log to ``<log dir>/tab-<id>.log``.
A tab ends by itself when its page has been gone for the grace time; the pool notices and
forgets it. ``spare_tabs`` processes are kept started, so that a new tab opens at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..settings import WebSettings
from ..tab.config import TabConfig

log = logging.getLogger(__name__)
START_TIMEOUT_S = 180.0


class TooManyTabs(RuntimeError):
    """All tab slots are in use."""


@dataclass
class TabProcess:
    """A started tab process. ``port``: where it listens on 127.0.0.1 (after start)."""

    tab_id: str
    key: str = field(repr=False)
    log_path: Path
    process: Optional[asyncio.subprocess.Process] = None
    port: int = 0
    started: float = field(default_factory=time.monotonic)
    claimed: bool = False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> Optional[int]:
        return self.process.pid if self.process is not None else None

    def rss_bytes(self) -> Optional[int]:
        """Resident memory of the process (bytes), or None when it is gone."""
        import psutil

        try:
            return int(psutil.Process(self.pid).memory_info().rss) if self.alive else None
        except psutil.Error:
            return None

    async def stop(self, timeout_s: float = 10.0) -> None:
        if not self.alive:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()


def tab_command() -> List[str]:
    """``python [-P] -m slicerfm_web.tab``: -P keeps the working folder off the import path."""
    flags = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *flags, "-m", "slicerfm_web.tab"]


class TabPool:
    """The gateway's tab processes. ``backend_url()`` gives the URL the tabs connect to."""

    def __init__(self, settings: WebSettings, backend_url, log_dir: Path):
        self.settings = settings
        self.backend_url = backend_url
        self.log_dir = log_dir
        self.tabs: Dict[str, TabProcess] = {}
        self.spares: List[TabProcess] = []
        self._filling: Optional[asyncio.Task] = None
        self._starting = 0

    # -- starting ------------------------------------------------------------------------------

    def _config(self, tab: TabProcess) -> TabConfig:
        settings = self.settings
        return TabConfig(tab_id=tab.tab_id, backend_url=self.backend_url(),
                         backend_token=settings.backend_token, ca_bundle=settings.ca_bundle,
                         allow_insecure_http=settings.allow_insecure_http, tab_key=tab.key,
                         data_dir=settings.data_dir, max_upload_bytes=settings.max_upload_bytes,
                         max_voxels=settings.max_voxels, grace_s=settings.tab_grace_s,
                         auto_engines=settings.auto_engines, base_path=f"/t/{tab.tab_id}/")

    async def _spawn(self) -> TabProcess:
        tab_id = secrets.token_hex(8)            # lower case: the trame client lower-cases its URL
        tab = TabProcess(tab_id=tab_id, key=secrets.token_urlsafe(32),
                         log_path=self.log_dir / f"tab-{tab_id}.log")
        env = dict(os.environ)
        env.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")   # no X server needed
        env.pop("SLICERFM_TOKEN", None)         # the token travels on stdin, not in the environment
        env.pop("SLICERFM_WEB_TOKEN", None)
        with open(tab.log_path, "ab") as log_file:
            tab.process = await asyncio.create_subprocess_exec(
                *tab_command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=log_file, env=env, cwd=str(self.log_dir))
        tab.process.stdin.write((self._config(tab).to_json() + "\n").encode())
        await tab.process.stdin.drain()
        tab.process.stdin.close()
        try:
            line = await asyncio.wait_for(tab.process.stdout.readline(), START_TIMEOUT_S)
            tab.port = int(json.loads(line.decode())["port"])
        except (asyncio.TimeoutError, ValueError, KeyError, TypeError) as error:
            await tab.stop()
            raise RuntimeError(f"a tab process did not start (see {tab.log_path}): {error!r}") from error
        asyncio.get_running_loop().create_task(self._drain(tab))
        log.info("tab process %s started (pid %s, port %s)", tab.tab_id, tab.pid, tab.port)
        return tab

    async def _drain(self, tab: TabProcess) -> None:
        """Read the rest of the tab's stdout (nothing expected) until it exits."""
        while tab.process.stdout and await tab.process.stdout.readline():
            pass
        await tab.process.wait()
        log.info("tab %s ended (code %s)", tab.tab_id, tab.process.returncode)
        self.tabs.pop(tab.tab_id, None)
        if tab in self.spares:
            self.spares.remove(tab)

    async def new_tab(self) -> TabProcess:
        """A tab for a new page: a spare when one is ready, else a fresh process."""
        self.reap()
        if len(self.tabs) >= self.settings.max_tabs:
            raise TooManyTabs(f"this server has all its {self.settings.max_tabs} tabs open; close "
                              "one (its session ends after a short grace time) or ask the "
                              "administrator to raise --max-tabs")
        tab = self.spares.pop(0) if self.spares else None
        if tab is None:
            self._starting += 1
            try:
                tab = await self._spawn()
            finally:
                self._starting -= 1
        tab.claimed = True
        self.tabs[tab.tab_id] = tab
        self.fill_spares()
        return tab

    def fill_spares(self) -> None:
        """Start spare tabs in the background up to ``spare_tabs`` (within ``max_tabs``)."""
        if self._filling is not None and not self._filling.done():
            return

        async def fill():
            while len(self.spares) < self.settings.spare_tabs and \
                    len(self.tabs) + len(self.spares) < self.settings.max_tabs:
                try:
                    self.spares.append(await self._spawn())
                except RuntimeError as error:
                    log.error("%s", error)
                    return

        self._filling = asyncio.get_running_loop().create_task(fill())

    # -- finding and stopping ------------------------------------------------------------------

    def get(self, tab_id: str) -> Optional[TabProcess]:
        tab = self.tabs.get(tab_id)
        if tab is not None and not tab.alive:
            self.tabs.pop(tab_id, None)
            return None
        return tab

    def reap(self) -> None:
        for tab_id in [t for t, tab in self.tabs.items() if not tab.alive]:
            self.tabs.pop(tab_id, None)
        self.spares = [tab for tab in self.spares if tab.alive]

    def describe(self) -> List[dict]:
        self.reap()
        now = time.monotonic()
        return [{"tab_id": tab.tab_id, "pid": tab.pid, "age_s": round(now - tab.started, 1),
                 "rss_mb": None if tab.rss_bytes() is None else round(tab.rss_bytes() / 2**20, 1),
                 "spare": tab in self.spares}
                for tab in list(self.tabs.values()) + self.spares]

    async def stop_all(self) -> None:
        if self._filling is not None:
            self._filling.cancel()
        tabs = list(self.tabs.values()) + self.spares
        await asyncio.gather(*(tab.stop() for tab in tabs), return_exceptions=True)
        self.tabs.clear()
        self.spares.clear()
