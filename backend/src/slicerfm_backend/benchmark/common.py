"""What the measurements share: the sample data, process memory, statistics, run facts.

Sample data: ``$SLICERFM_DATA``, else ``shared/data`` beside the repository (the
development layout: ``<work>/shared/data`` next to ``<work>/<checkout>``), else ``shared/data``
inside it.
"""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[4]
"""The checkout this package was imported from (when it runs from a source tree)."""


def data_folder() -> Path:
    """The sample data folder (it may not exist; see :func:`require_data`)."""
    given = os.environ.get("SLICERFM_DATA")
    if given:
        return Path(given)
    beside = REPOSITORY.parent / "shared" / "data"
    inside = REPOSITORY / "shared" / "data"
    return beside if beside.is_dir() or not inside.is_dir() else inside


def require_data() -> Path:
    """The sample data folder, or SystemExit saying how to point to it."""
    folder = data_folder()
    if not folder.is_dir():
        raise SystemExit(f"sample data not found at {folder}; set SLICERFM_DATA to the shared data folder")
    return folder


def data_file(relative: str) -> Path:
    """A file of the sample data, or SystemExit naming it."""
    path = require_data() / relative
    if not path.exists():
        raise SystemExit(f"{path} not found; set SLICERFM_DATA to the shared data folder")
    return path


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


def summary(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """``{"n", "median", "p90", "min", "max"}`` of ``values`` (None entries when empty)."""
    a = np.asarray(list(values), dtype=float)
    if a.size == 0:
        return {"n": 0, "median": None, "p90": None, "min": None, "max": None}
    return {"n": int(a.size), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "min": float(a.min()), "max": float(a.max())}


def load_average() -> float:
    """The 1-minute load average (how busy the machine was; timings scale with it)."""
    return round(os.getloadavg()[0], 2)


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def timed_run(measure: Callable[[], dict]) -> dict:
    """``{"measured": {date, seconds, load_before, load_after}, "figures": measure()}``."""
    date, load, start = now_iso(), load_average(), time.perf_counter()
    figures = measure()
    return {"measured": {"date": date, "seconds": round(time.perf_counter() - start, 1),
                         "load_before": load, "load_after": load_average()},
            "figures": figures}


def rounded(value, digits: int = 6):
    """``value`` with floats rounded to ``digits`` significant decimals, recursively (JSON)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if np.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    if isinstance(value, np.generic):
        return rounded(value.item(), digits)
    return value


def log_tail(path: str, lines: int = 15) -> str:
    """The last lines of a server log (for error messages)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
