"""Running sections and keeping their figures: the JSON document beside the report.

The document (``figures.json``)::

    {"schema": 1, "generated": ISO date, "command": "...", "machine": {...this run's machine...},
     "sections": {name: {"measured": {"date", "seconds", "load_before", "load_after", "quick",
                                      "machine": {...}},
                         "figures": {..., "summary": {headline figures}}}}}

Each section carries the machine, date and load it was measured with, so that a document
merged from several runs (``--update``, a GPU suite's results) stays honest about where each
figure comes from.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

from .common import now_iso, rounded, timed_run

SCHEMA = 1


def new_document(command: str, machine: dict) -> dict:
    return {"schema": SCHEMA, "generated": now_iso(), "command": command, "machine": machine, "sections": {}}


def run_sections(document: dict, sections: Sequence, quick: bool, engines: Sequence[str],
                 log: Callable[[str], None] = print, progress=None,
                 after_each: Optional[Callable[[dict], None]] = None) -> Dict[str, str]:
    """Measure ``sections`` into ``document``; returns section -> error for those that failed
    (the others are still measured and kept). ``after_each(document)`` runs after every
    measured section: the command saves the figures so far, so a run stopped part-way (an
    hour on 2 cores) keeps what it measured and ``--update`` goes on from there."""
    failures: Dict[str, str] = {}
    for section in sections:
        if progress is not None:
            progress.set_description(section.name)
        log(f"[{section.name}] {section.title}")
        try:
            run = timed_run(lambda section=section: section.measure(quick, engines, log))
        except (Exception, SystemExit) as error:  # noqa: BLE001 - one failed section must not lose the others
            failures[section.name] = f"{type(error).__name__}: {error}"
            log(f"[{section.name}] FAILED: {failures[section.name]}\n{traceback.format_exc(limit=4)}")
        else:
            run["measured"].update({"quick": quick, "machine": document["machine"]})
            document["sections"][section.name] = rounded(run)
            log(f"[{section.name}] done in {run['measured']['seconds']:.0f} s "
                f"(load average {run['measured']['load_before']} -> {run['measured']['load_after']})")
            if after_each is not None:
                after_each(document)
        if progress is not None:
            progress.update(1)
    return failures


def load(path: Path) -> dict:
    """A figures document; ValueError when it is not one."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read benchmark figures from {path}: {error}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA or "sections" not in document:
        raise ValueError(f"{path} is not a benchmark figures document (schema {SCHEMA})")
    return document


def merge(document: dict, older: Optional[dict], keep: Sequence[str] = ()) -> dict:
    """``document`` plus the sections of ``older`` it does not have (all, or those in ``keep``)."""
    if older:
        for name, section in older["sections"].items():
            if name not in document["sections"] and (not keep or name in keep):
                document["sections"][name] = section
    return document


def add_section(document: dict, name: str, section: dict) -> dict:
    """``section`` (``{"measured", "figures"}``, e.g. a GPU suite's result) under ``name``."""
    if not isinstance(section, dict) or "figures" not in section or "measured" not in section:
        raise ValueError(f"the {name} results are not a benchmark section (need 'measured' and 'figures')")
    document["sections"][name] = section
    return document


def save(document: dict, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path


def load_section(path: Path) -> dict:
    """One section written on its own (a GPU suite's ``gpu.json``); ValueError otherwise."""
    try:
        section = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    if not isinstance(section, dict) or "figures" not in section or "measured" not in section:
        raise ValueError(f"{path} is not a benchmark section (need 'measured' and 'figures')")
    return section
