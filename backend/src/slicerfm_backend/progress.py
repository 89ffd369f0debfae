"""Progress bars for the long commands (tqdm), drawn only on a terminal.

A bar goes to standard error and only when standard error is a terminal: output piped into
another program, redirected to a log file or captured by CI carries no carriage returns
and no bars (what the commands print line by line stays). ``SLICERFM_PROGRESS=off`` turns
the bars off on a terminal too.

* :func:`bar` -- a tqdm bar (disabled off a terminal); use as a context manager.
* :class:`StageBar` -- a ``progress(stage, done, total)`` callback (the engines' progress
  protocol) drawing one bar per stage; off a terminal it prints a line per stage and every
  few seconds instead, as the commands did before.
* :func:`terminal_tqdm` -- a tqdm class for libraries that take one (huggingface_hub's
  ``tqdm_class``), disabled off a terminal like :func:`bar`.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Optional, TextIO

OFF_VALUES = ("0", "off", "no", "false")


def wanted(stream: Optional[TextIO] = None) -> bool:
    """Whether bars should be drawn on ``stream`` (default the current ``sys.stderr``)."""
    if os.environ.get("SLICERFM_PROGRESS", "").strip().lower() in OFF_VALUES:
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except (ValueError, OSError):  # a closed stream
        return False


def bar(total: Optional[float] = None, desc: Optional[str] = None, unit: str = "it",
        unit_scale: bool = False, stream: Optional[TextIO] = None, leave: bool = True, **options: Any):
    """A tqdm bar on ``stream`` (default ``sys.stderr``), disabled when that is not a terminal.

    ``unit="B", unit_scale=True`` shows bytes as kB/MB/GB. The finished bar stays on the
    terminal unless ``leave`` is False."""
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=stream,
                disable=not wanted(stream), leave=leave, dynamic_ncols=True, **options)


def write(line: str, stream: Optional[TextIO] = None) -> None:
    """Print ``line`` to ``stream`` (default ``sys.stdout``) without breaking a bar that is
    being drawn on the terminal."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout if stream is None else stream)


def terminal_tqdm():
    """A tqdm subclass that draws on ``sys.stderr`` only when it is a terminal."""
    from tqdm import tqdm

    class TerminalTqdm(tqdm):
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs["file"] = sys.stderr
            kwargs["disable"] = kwargs.get("disable") or not wanted(sys.stderr)
            super().__init__(*args, **kwargs)

    return TerminalTqdm


class StageBar:
    """``progress(stage, done=0, total=0)`` for the engines: a bar per stage on a terminal;
    elsewhere a line per stage and at most every ``interval_s`` seconds within one."""

    def __init__(self, stream: Optional[TextIO] = None, interval_s: float = 2.0):
        self.stream = stream
        self.interval_s = interval_s
        self.bars = wanted(self._stream())
        self._bar = None
        self._stage: Optional[str] = None
        self._last = 0.0

    def _stream(self) -> TextIO:
        return sys.stderr if self.stream is None else self.stream

    def __call__(self, stage: str, done: int = 0, total: int = 0) -> None:
        if self.bars:
            self._draw(stage, done, total)
            return
        now = time.monotonic()
        if stage != self._stage or now - self._last > self.interval_s or (total and done == total):
            print(f"  {stage}" + (f" {done}/{total}" if total else ""), file=self._stream(), flush=True)
            self._stage, self._last = stage, now

    def _draw(self, stage: str, done: int, total: int) -> None:
        if stage != self._stage:
            self.close()
            self._bar = bar(total=total or None, desc=stage, stream=self._stream(), leave=True)
            self._stage = stage
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        """Finish the current bar (call when the work is over)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "StageBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
