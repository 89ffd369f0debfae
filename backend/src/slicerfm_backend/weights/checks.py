"""Checking a weights file against its catalogue entry: size (bytes), sha256 and md5.

Files are hashed in 8 MiB chunks, so checking an 872 MB checkpoint needs little memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import List

from .catalogue import WeightsEntry

CHUNK_BYTES = 8 << 20


class WeightsError(RuntimeError):
    """Fetching, importing or finding weights failed; the message says what to do."""


class WeightsChecksumError(WeightsError):
    """A weights file does not match the size or digest its catalogue entry pins."""


@dataclass(frozen=True)
class FileFacts:
    """What a file on disk is: ``size`` in bytes, ``sha256`` and ``md5`` in lower-case hex."""

    size: int
    sha256: str
    md5: str


def file_facts(path: Path) -> FileFacts:
    """Size and digests of ``path``, read once."""
    sha256, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return FileFacts(size, sha256.hexdigest(), md5.hexdigest())


def mismatches(entry: WeightsEntry, facts: FileFacts) -> List[str]:
    """How ``facts`` differ from what ``entry`` pins (empty when nothing pinned differs)."""
    problems = []
    if entry.size_bytes is not None and facts.size != entry.size_bytes:
        problems.append(f"size {facts.size} bytes, expected {entry.size_bytes}")
    if entry.sha256 is not None and facts.sha256 != entry.sha256.lower():
        problems.append(f"sha256 {facts.sha256}, expected {entry.sha256.lower()}")
    if entry.md5 is not None and facts.md5 != entry.md5.lower():
        problems.append(f"md5 {facts.md5}, expected {entry.md5.lower()}")
    return problems


def pinned_summary(entry: WeightsEntry) -> str:
    """Which checks an entry pins, e.g. ``"size, sha256"``, or "size/checksum not pinned"."""
    names = [name for name, value in (("size", entry.size_bytes), ("sha256", entry.sha256),
                                      ("md5", entry.md5)) if value is not None]
    return ", ".join(names) if names else "size/checksum not pinned"


def check_file(entry: WeightsEntry, path: Path, what: str) -> FileFacts:
    """Facts of ``path``; WeightsChecksumError naming ``what`` when a pinned value differs."""
    facts = file_facts(path)
    problems = mismatches(entry, facts)
    if problems:
        raise WeightsChecksumError(f"{what} for {entry.engine} does not match the catalogue: "
                                   f"{'; '.join(problems)}. The file was not kept.")
    return facts
