"""A local Ray cluster for tests: ``ray start --head --block`` on loopback only, stopped by the test.

Every Ray service binds 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: Ray's
one-machine mode, which otherwise picks the machine's network address), the dashboard and
usage statistics are off, and the cluster lives in its own temporary folder.
:meth:`LocalRayCluster.stop` kills the processes ``ray start`` started (found by ancestry,
so only this cluster's), its process group, and any process that still names the folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

RAY = str(Path(sys.executable).with_name("ray"))
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalRayCluster:
    """A one-node Ray cluster with ``cpus`` logical CPUs (the session workers and job
    tasks each take one) and a small object store. ``pythonpath``: folders the cluster's
    worker processes import from (test engine plugins)."""

    def __init__(self, cpus: int = 4, object_store_bytes: int = 400 << 20, pythonpath: List[str] = ()):
        self.cpus = cpus
        self.object_store_bytes = object_store_bytes
        self.pythonpath = list(pythonpath)
        self.folder = Path(tempfile.mkdtemp(prefix="sfmray-", dir="/tmp"))  # short: Ray's socket paths
        self.port = free_port()
        self.process: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def environment(self) -> Dict[str, str]:
        env = dict(os.environ, **LOOPBACK_ENV)
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        return env

    def start(self, timeout_s: float = 240.0, tries: int = 3) -> "LocalRayCluster":
        """Start the head and wait for it. Ray gives its raylet 30 s to register, which a
        loaded machine can miss: then it is started again, up to ``tries`` times."""
        for attempt in range(1, tries + 1):
            try:
                return self._start_once(timeout_s)
            except RuntimeError:
                self.stop(keep_folder=True)
                if attempt == tries:
                    raise
        return self

    def _start_once(self, timeout_s: float) -> "LocalRayCluster":
        self.port = free_port()
        ports = {flag: free_port() for flag in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                                                "--runtime-env-agent-port", "--metrics-export-port",
                                                "--ray-client-server-port", "--node-manager-port",
                                                "--object-manager-port")}
        args = [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={self.port}",
                "--include-dashboard=false", "--disable-usage-stats", f"--num-cpus={self.cpus}", "--num-gpus=0",
                f"--object-store-memory={self.object_store_bytes}", f"--temp-dir={self.folder}",
                *(f"{flag}={port}" for flag, port in ports.items())]
        self._started_before = _count_in(self.folder / "head.log", b"Ray runtime started")
        with open(self.folder / "head.log", "ab") as log:
            self.process = subprocess.Popen(args, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}: {self.log_tail()}")
            if (self.folder / "head.log").read_bytes().count(b"Ray runtime started") > self._started_before:
                return self
            time.sleep(0.5)
        self.stop(keep_folder=True)
        raise RuntimeError(f"the Ray head did not start within {timeout_s:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.folder / "head.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` was started by this cluster (``ray start`` is among its ancestors;
        Ray's worker processes leave its process group)."""
        return self.process is not None and self.process.pid in _ancestors(pid)

    def pids_named(self, title: str) -> List[int]:
        """This cluster's processes whose command line (a Ray worker's title) contains ``title``."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if title in cmdline and self.owns(int(entry.name)):
                    found.append(int(entry.name))
        return found

    def stop(self, keep_folder: bool = False) -> None:
        """Kill every process ``ray start`` started (while it is still their ancestor, so
        only ours), then its process group, then anything left that names the folder."""
        process, self.process = self.process, None
        if process is not None:
            for _ in range(3):  # the raylet may start a worker meanwhile: look again
                for pid in _descendants(process.pid):
                    _kill(pid)
                time.sleep(0.2)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)
        for pid in _pids_mentioning(str(self.folder)):
            _kill(pid)
        if not keep_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def _pids_mentioning(text: str) -> List[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _ancestors(pid: int) -> List[int]:
    chain = []
    while pid > 1 and len(chain) < 32:
        pid = _parent(pid)
        chain.append(pid)
    return chain


def _descendants(root: int) -> List[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and root in _ancestors(int(entry.name))]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _count_in(path: Path, text: bytes) -> int:
    try:
        return path.read_bytes().count(text)
    except OSError:
        return 0
