"""Server log lines: plain text (default) or JSON, never with control characters from clients.

Nothing a client sends is logged as is: text lines escape control characters (a newline
in a client-chosen string cannot forge a line), JSON lines are JSON. The access log
(:mod:`.http_middleware`) logs route templates, never the path itself (ids) or its query
string (tokens someone put in a URL); tokens, lease secrets, image and job ids and segment
names are never passed to a logger.
"""

from __future__ import annotations

import logging
import re
import sys

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]|\n(?!  )")


def escape(text: str) -> str:
    """``text`` with control characters (and newlines, except a traceback's indented ones)
    shown as escapes."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


class SafeTextFormatter(logging.Formatter):
    """The usual text format with the message's control characters escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                             rename_fields={"levelname": "level", "name": "logger", "asctime": "time"})
    return SafeTextFormatter(TEXT_FORMAT)


def configure(level: str = "info", log_format: str = "text") -> None:
    """One handler on the root logger (stderr); uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # ours logs route templates instead
