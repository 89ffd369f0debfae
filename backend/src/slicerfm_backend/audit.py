"""The audit log: who did what, when, with what outcome.

Each event is one line on the ``slicerfm_backend.audit`` logger (``user action outcome
key=value ...``; in JSON logs also the record as the ``audit`` field) and, with a state
directory, one JSON line in ``<state dir>/audit.log`` (rotated at 10 MB, 5 files kept):
``{"time", "user", "action", "outcome", ...}``. Events name users, session ids (the public
half of a lease), engines, kinds and sizes -- never tokens, image or job ids, segment
names or voxels. Actions: ``session.claim``, ``session.end``, ``image.upload``,
``segment.interact``, ``segment.undo``/``redo``/``reset``/``seed``/``delete``/``lock``,
``job.submit``, ``job.cancel``, ``admin.sessions``, ``admin.end_session``, ``auth.refused``.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from pathlib import Path
from typing import Optional

log = logging.getLogger("slicerfm_backend.audit")


class AuditLog:
    def __init__(self, path: Optional[Path] = None):
        self._file: Optional[logging.Handler] = None
        if path is not None:
            try:
                handler = logging.handlers.RotatingFileHandler(path, maxBytes=10 << 20, backupCount=5,
                                                               encoding="utf-8", delay=True)
            except OSError as error:
                log.error("the audit log file cannot be opened (%s); audit events go to the server log only",
                          error.strerror)
            else:
                handler.setFormatter(logging.Formatter("%(message)s"))
                handler.handleError = lambda record: None  # a full disk must not flood stderr
                self._file = handler
        self._file_logger = logging.getLogger(f"slicerfm_backend.audit_file.{id(self)}")
        self._file_logger.propagate = False
        if self._file is not None:
            self._file_logger.addHandler(self._file)
            self._file_logger.setLevel(logging.INFO)

    def event(self, user: str, action: str, outcome: str = "ok", **fields) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "user": user, "action": action,
                  "outcome": outcome, **fields}
        line = json.dumps(record, separators=(",", ":"))
        words = " ".join([user, action, outcome] + [f"{key}={value}" for key, value in fields.items()])
        log.info("%s", words, extra={"audit": record})  # JSON logs carry the record as a field
        if self._file is not None:
            try:
                self._file_logger.info(line)
            except Exception:  # a full disk must not fail the request being audited
                pass

    def close(self) -> None:
        if self._file is not None:
            self._file_logger.removeHandler(self._file)
            self._file.close()
