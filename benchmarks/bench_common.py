"""What several benchmark scripts share: the sample data folder and process memory readings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

DATA = Path(os.environ.get("SLICERFM_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
"""The shared sample data: ``$SLICERFM_DATA``, else ``../shared/data`` beside the repository."""


def require_data() -> Path:
    """``DATA``, or exit with a message saying how to point to it."""
    if not DATA.is_dir():
        raise SystemExit(f"sample data not found at {DATA}; set SLICERFM_DATA")
    return DATA


def proc_status(pid: int) -> Dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a process in bytes, and its Threads count (Linux /proc)."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) * 1024
            elif key == "Threads":
                out[key] = int(value)
    return out
