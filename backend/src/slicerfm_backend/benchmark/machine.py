"""What the figures were measured on: CPU, cores, memory, GPU, library versions, commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Dict, Optional

from .common import REPOSITORY, load_average, now_iso

LIBRARIES = ("slicerfm-backend", "slicerfm-client", "numpy", "scipy", "SimpleITK", "blosc2", "torch", "monai",
             "medim", "unigradicon", "icon_registration", "fastapi", "uvicorn", "matplotlib")


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_bytes() -> Optional[int]:
    """Physical memory (``MemTotal``), None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def versions() -> Dict[str, Optional[str]]:
    """Installed version of each of :data:`LIBRARIES` (None: not installed)."""
    out: Dict[str, Optional[str]] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def gpu() -> Optional[dict]:
    """The first CUDA device torch sees (name, memory, capability, CUDA version), else None."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_bytes": int(props.total_memory), "capability": f"{props.major}.{props.minor}",
            "count": torch.cuda.device_count(), "cuda": torch.version.cuda}


def git_commit() -> Optional[str]:
    """The checkout's commit (with ``+dirty`` when it has changes), None outside a checkout."""
    try:
        head = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPOSITORY), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def describe() -> dict:
    """Everything above, with the date, the load average and torch's CPU threads."""
    threads = None
    try:
        import torch

        threads = torch.get_num_threads()
    except ImportError:
        pass
    return {"date": now_iso(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_bytes": memory_bytes(), "gpu": gpu(), "torch_threads": threads, "load_average": load_average(),
            "python": platform.python_version(), "system": f"{platform.system()} {platform.release()}",
            "libraries": versions(), "commit": git_commit()}


def one_line(machine: dict) -> str:
    """``CPU, N cores, M GB, GPU`` in a few words."""
    memory = f", {machine['memory_bytes'] / 2**30:.0f} GiB" if machine.get("memory_bytes") else ""
    gpu_text = (f", GPU {machine['gpu']['name']} ({machine['gpu']['memory_bytes'] / 2**30:.0f} GiB)"
                if machine.get("gpu") else ", no GPU")
    return f"{machine['cpu']}, {machine['usable_cores']} cores{memory}{gpu_text}"
