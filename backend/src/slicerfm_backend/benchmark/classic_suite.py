"""The classic engine on the structures of issue 18: Dice per simulated click, per group.

Cases come from :func:`slicerfm_backend.evaluation.suite.issue18_cases`: the five large CT
organs, ten small and thin CT structures, the abdominal MR organs, FLAIR edema and the 30
brain structures of ``brain_pair`` subject B. The simulated user of ``slicerfm-backend
evaluate`` clicks ``clicks`` times per structure through a real server process and the client
(``in_process``: the engine in this process, for quick iterations; the Dice figures are the
same). Each group's mean is checked against the issue's goals, and every structure against
"clicks never hurt" (no click lowers Dice by more than 0.02, Dice after 10 not below Dice
after 5).
"""

from __future__ import annotations

import os
import time
from typing import Callable, Optional, Sequence

QUICK_KEYS = ("ct_large/spleen", "ct_small/gallbladder", "mr_abdomen/liver", "brain/3rd-Ventricle")


def measure(clicks: int = 10, groups: Optional[Sequence[str]] = None, only: Optional[Sequence[str]] = None,
            engine: str = "classic", in_process: bool = False, log: Callable[[str], None] = print) -> dict:
    """Figures per structure (``structures``: case key -> figures), per group (``groups``: means,
    goals, clicks that hurt) and the headline (``summary``). ``only``: case keys
    (``group/name``) or structure names to keep."""
    from ..evaluation.suite import issue18_cases, run_cases, summarise
    from .common import require_data

    data = require_data()
    cases = issue18_cases(data, groups)
    if only:
        wanted = set(only)
        cases = [c for c in cases if c.key in wanted or c.name in wanted]
    if not cases:
        raise ValueError("no structure of the suite matches the groups and names given")

    def progress(case, row):
        log(f"  {case.group:<11}{case.name:<32}" + " ".join(f"{d:.3f}" for d in row["dice"])
            + f"  ({row['seconds']:.1f} s)")

    load = os.getloadavg()[0]
    start = time.perf_counter()
    results = run_cases(cases, data, clicks, engine, in_process=in_process, on_case=progress)
    groups_summary = summarise(results)
    return {"engine": engine, "clicks": clicks, "in_process": in_process, "structures": results,
            "groups": groups_summary, "seconds": time.perf_counter() - start,
            "load_before": load, "load_after": os.getloadavg()[0], "summary": headline(groups_summary)}


def headline(groups: dict) -> dict:
    """Mean Dice after 5 and 10 clicks per group and the count of structures where a click hurt."""
    out = {}
    for group, s in groups.items():
        out[f"{group}_mean_dice_at_5"] = s["mean"]["5"]
        out[f"{group}_mean_dice_at_10"] = s["mean"]["10"]
        out[f"{group}_clicks_that_hurt"] = len(set(s["drops_over_limit"]) | set(s["worse_at_10_than_5"]))
    return out


def print_figures(figures: dict) -> None:
    """The text of ``benchmarks/dice_table.py``: the Markdown tables with a one-line header."""
    from ..evaluation.suite import markdown_table

    print("\n" + describe_run(figures) + "\n\n" + markdown_table(figures["structures"]))


def describe_run(figures: dict) -> str:
    """One line: engine, clicks, path, duration and load."""
    how = "engine in-process" if figures["in_process"] else "through a real server and the client"
    return (f"engine {figures['engine']}, {figures['clicks']} simulated clicks, {how}; {figures['seconds']:.0f} s; "
            f"load average before {figures['load_before']:.1f}, after {figures['load_after']:.1f}")
