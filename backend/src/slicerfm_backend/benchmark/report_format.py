"""Formatting helpers of the report templates: numbers, tables, the line under each title."""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence

from .machine import one_line


def table(header: Sequence[str], rows: Sequence[Sequence], align: Optional[str] = None) -> str:
    """A Markdown table (``align``: a string of l/r per column; default first left, others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join("–" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def ms(value: Optional[float], digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def num(value: Optional[float], digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def mib(value: Optional[float]) -> str:
    return "–" if value is None else f"{value / 2**20:,.1f} MiB"


def gib(value: Optional[float]) -> str:
    return "–" if value is None else f"{value / 2**30:.2f} GiB"


def mb(value: Optional[float]) -> str:
    return "–" if value is None else f"{value / 1e6:,.1f} MB"


def spread(s: Mapping, digits: int = 1) -> str:
    """``median [min–max]`` of a summary."""
    if not s or s.get("median") is None:
        return "–"
    if s.get("n", 1) <= 1:
        return f"{s['median']:,.{digits}f}"
    return f"{s['median']:,.{digits}f} [{s['min']:,.{digits}f}–{s['max']:,.{digits}f}]"


def measured_line(section: Mapping) -> str:
    """The italic line under a section's title: when, where, how loaded, quick or full."""
    m = section["measured"]
    machine = m.get("machine") or {}
    kind = "quick run" if m.get("quick") else "full run"
    where = one_line(machine) if machine else "an unrecorded machine"
    return (f"*Measured {m['date'][:16].replace('T', ' ')} UTC on {where}"
            f" (commit {machine.get('commit') or '?'}); load average {m.get('load_before')} → {m.get('load_after')}; "
            f"{kind}, {m['seconds']:.0f} s.*\n")


def plot_link(plots: Mapping[str, str], key: str, alt: str, folder: str) -> str:
    name = plots.get(key)
    return f"![{alt}]({folder}/{name})\n" if name else ""


def not_measured(how: str) -> str:
    """The line a section gets when it is not in the figures: how to measure it."""
    return f"Not measured in this report: {how}.\n"


def section_block(sections: Mapping, name: str, title: str, level: int, body: Callable[[Mapping], str],
                  missing: str) -> str:
    """``## title``, the measured line and ``body(figures)``, or the not-measured line."""
    lines = [f"{'#' * level} {title}", ""]
    section = sections.get(name)
    if section is None:
        lines.append(missing)
        return "\n".join(lines) + "\n"
    lines.append(measured_line(section))
    lines.append(body(section["figures"]))
    return "\n".join(lines) + "\n"


def by_key(rows: Dict, keys: Sequence) -> List:
    return [rows[k] for k in keys if k in rows]
