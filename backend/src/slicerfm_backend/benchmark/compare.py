"""``--compare OLD.json``: the ratio new / old of every headline figure two runs share.

Headline figures are each section's ``summary`` (times, ratios, bytes, Dice); with
``everything`` all numeric leaves of the sections' figures are compared. A ratio beyond
``flag`` (default 20 %) either way is marked, so a regression shows at a glance; timings on
a shared machine vary by about that much between runs, Dice and byte counts do not.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple


def leaves(value, prefix: str = "") -> Iterator[Tuple[str, float]]:
    """``(dotted path, number)`` of every int/float leaf (booleans and None left out)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{prefix}[{index}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield prefix, float(value)


def figures_of(document: dict, everything: bool = False) -> Dict[str, float]:
    """section.key -> value of the figures to compare."""
    out: Dict[str, float] = {}
    for name, section in document["sections"].items():
        source = section["figures"] if everything else section["figures"].get("summary", {})
        out.update({f"{name}.{path}": number for path, number in leaves(source)})
    return out


def ratios(old: dict, new: dict, everything: bool = False) -> List[Tuple[str, float, float, Optional[float]]]:
    """``(figure, old, new, new/old)`` for figures in both (ratio None when old is 0)."""
    before, after = figures_of(old, everything), figures_of(new, everything)
    rows = []
    for key in sorted(set(before) & set(after)):
        a, b = before[key], after[key]
        rows.append((key, a, b, b / a if a else None))
    return rows


def report(old: dict, new: dict, everything: bool = False, flag: float = 0.2) -> str:
    """The comparison as text, one figure a line, with the dates and machines of both runs."""
    lines = [f"old: {old.get('generated')} on {old.get('machine', {}).get('cpu')}",
             f"new: {new.get('generated')} on {new.get('machine', {}).get('cpu')}",
             f"{'figure':<60} {'old':>12} {'new':>12} {'new/old':>8}"]
    rows = ratios(old, new, everything)
    for key, a, b, ratio in rows:
        mark = "" if ratio is None or abs(ratio - 1) <= flag else ("  <<" if ratio < 1 else "  >>")
        text = "     n/a" if ratio is None else f"{ratio:8.3f}"
        lines.append(f"{key:<60} {a:12.5g} {b:12.5g} {text}{mark}")
    only_old = sorted(set(old["sections"]) - set(new["sections"]))
    only_new = sorted(set(new["sections"]) - set(old["sections"]))
    if only_old or only_new:
        lines.append(f"sections only in old: {', '.join(only_old) or 'none'}; "
                     f"only in new: {', '.join(only_new) or 'none'}")
    if not rows:
        lines.append("no figure in common")
    return "\n".join(lines)
