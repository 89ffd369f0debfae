"""podman/buildah on the store that scripts/container_build.sh built into, for the smoke test.

OCI runtimes are refused on our machines, so an image is never `podman run`: its filesystem
runs with `buildah run --isolation chroot`, which shares the caller's network namespace
(scripts/container_smoke.sh starts the test in a private one with only loopback up).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence


@dataclass
class Store:
    """A podman/buildah storage root (``--root``/``--runroot``) under ``root``."""

    root: Path

    def _global(self) -> List[str]:
        return ["--root", str(self.root / "storage"), "--runroot", str(self.root / "run")]

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", *self._global(), *args], capture_output=True, text=True,
                              check=check, timeout=300)

    def buildah(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["buildah", *self._global(), *args], capture_output=True, text=True,
                              check=check, timeout=timeout)

    def inspect(self, image: str) -> dict:
        """`podman image inspect` of one image (Config, Healthcheck, Size, History...)."""
        return json.loads(self.podman("image", "inspect", image).stdout)[0]

    def run_args(self, container: str, command: Sequence[str], volumes: Sequence[str] = (),
                 env: Optional[Dict[str, str]] = None) -> List[str]:
        """The `buildah run` command line for ``command`` in ``container``, as the image's user."""
        args = ["buildah", *self._global(), "run", "--isolation", "chroot"]
        for volume in volumes:
            args += ["--volume", volume]
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        return [*args, container, "--", *command]

    def run(self, container: str, command: Sequence[str], timeout: float = 120,
            **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.run_args(container, command, **kwargs), capture_output=True,
                              text=True, timeout=timeout)


def volume_args(volumes: dict) -> List[str]:
    """``--volume`` values for the token secret and the weights and state volumes (host paths in ``volumes``)."""
    return [f"{volumes['token_file']}:/run/secrets/slicerfm_token:ro",
            f"{volumes['weights']}:/weights", f"{volumes['state']}:/var/lib/slicerfm"]


def children(pid: int) -> List[int]:
    """All descendants of ``pid``, from /proc (this machine's process table)."""
    parents: Dict[int, List[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def process_uids(pid: int) -> List[int]:
    """Real, effective, saved and filesystem uid of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(value) for value in line.split()[1:]]
    raise RuntimeError(f"no Uid line for process {pid}")


def server_process(launcher: subprocess.Popen, name: str = "slicerfm-backend") -> Optional[int]:
    """The pid of the server started by ``launcher`` (a `buildah run`), once it has exec'd."""
    for pid in children(launcher.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(name.encode()) for part in cmdline) and b"serve" in cmdline:
            return pid
    return None


def stop(launcher: subprocess.Popen, server_pid: Optional[int], grace_s: float = 30) -> Optional[int]:
    """SIGTERM the server (as `podman stop` would), wait for the launcher; its exit code, or None if killed."""
    if server_pid is not None:
        try:
            os.kill(server_pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.2)
    if launcher.poll() is None:
        launcher.kill()
        launcher.wait(timeout=30)
        return None
    return launcher.returncode
