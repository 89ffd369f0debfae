"""A local Ray cluster for tests: ``ray start --head --block`` on loopback only, stopped by the test.

Every Ray service binds 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: Ray's
one-machine mode, which otherwise picks the machine's network address), the dashboard and
usage statistics are off, and the cluster lives in its own temporary folder.
:meth:`LocalRayCluster.stop` kills the processes ``ray start`` started (found by ancestry,
so only this cluster's), its process group, and any process that still names the folder.

:meth:`LocalRayCluster.add_node` starts a second node on this machine (``ray start
--address``: its own raylet, object store and workers). Ray's one-machine mode keeps every
address on loopback but its ``ray start`` refuses to add a node, while cluster mode turns
127.0.0.1 (the head's address and the node's own) into the machine's network address. So
the node's ``ray start`` runs in one-machine mode with only that refusal lifted
(:data:`JOIN_ON_LOOPBACK`): every service of both nodes binds loopback
(:func:`listening_addresses` shows it).
:meth:`LocalRayCluster.kill_node` kills one node's processes, as a machine that fails.
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
# `ray start` with one change: its check that refuses to add a node in one-machine mode
# reads a copy of Ray's constants that allows it; everything else (addresses) reads the real ones.
JOIN_ON_LOOPBACK = """
import sys, types
import ray._private.ray_constants as constants
from ray.scripts import scripts
allowing = types.ModuleType(constants.__name__)
allowing.__dict__.update(constants.__dict__)
allowing.ENABLE_RAY_CLUSTER = True
scripts.ray_constants = allowing
sys.argv[0] = "ray"
sys.exit(scripts.main())
"""
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
        self.nodes: List[subprocess.Popen] = []  # further nodes (add_node)

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
        args = [RAY, "start", "--head", "--block", f"--port={self.port}", "--include-dashboard=false",
                "--ray-client-server-port", str(free_port()), *self._node_args(self.cpus)]
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

    def _node_args(self, cpus: int) -> List[str]:
        """What every node of this cluster is started with: loopback, its own ports."""
        ports = {flag: free_port() for flag in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                                                "--runtime-env-agent-port", "--metrics-export-port",
                                                "--node-manager-port", "--object-manager-port")}
        return ["--node-ip-address=127.0.0.1", "--disable-usage-stats", f"--num-cpus={cpus}", "--num-gpus=0",
                f"--object-store-memory={self.object_store_bytes}", f"--temp-dir={self.folder}",
                *(f"{flag}={port}" for flag, port in ports.items())]

    def add_node(self, cpus: int = 2, timeout_s: float = 240.0) -> subprocess.Popen:
        """Start another node (its own raylet, object store, workers) joined to the head;
        returns its ``ray start`` process once that says the node runs."""
        log_path = self.folder / f"node-{len(self.nodes) + 1}.log"
        with open(log_path, "ab") as log:
            node = subprocess.Popen([sys.executable, "-c", JOIN_ON_LOOPBACK, "start", "--block",
                                     f"--address={self.address}", *self._node_args(cpus)],
                                    env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.nodes.append(node)
        deadline = time.monotonic() + timeout_s
        while b"Ray runtime started" not in log_path.read_bytes():
            if node.poll() is not None or time.monotonic() > deadline:
                self.kill_node(node)
                raise RuntimeError(f"the node did not start: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        return node

    def kill_node(self, node: subprocess.Popen) -> None:
        """Kill one node's processes (SIGKILL, as a machine that fails)."""
        for _ in range(3):  # the raylet may start a worker meanwhile: look again
            for pid in _descendants(node.pid):
                _kill(pid)
            time.sleep(0.2)
        try:
            os.killpg(node.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.wait(10)

    def node_of(self, pid: int) -> Optional[int]:
        """Which node started ``pid``: 0 the head, 1... the added ones (None: not this cluster's)."""
        ancestors = _ancestors(pid)
        for index, process in enumerate([self.process, *self.nodes]):
            if process is not None and process.pid in ancestors:
                return index
        return None

    def pids(self) -> List[int]:
        """Every process of every node of this cluster."""
        return [int(entry.name) for entry in Path("/proc").iterdir()
                if entry.name.isdigit() and self.node_of(int(entry.name)) is not None]

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
        for node in self.nodes:
            self.kill_node(node)
        self.nodes = []
        process, self.process = self.process, None
        if process is not None:
            self.kill_node(process)
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


def listening_addresses(pids: List[int]) -> List[str]:
    """The addresses on which these processes listen for TCP connections."""
    import psutil

    wanted = set(pids)
    return sorted({connection.laddr.ip for connection in psutil.net_connections("tcp")
                   if connection.status == psutil.CONN_LISTEN and connection.pid in wanted})


def is_loopback(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)
