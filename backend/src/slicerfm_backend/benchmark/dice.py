"""Dice per simulated click, per engine and structure, through a real server and the client.

The simulated user of ``slicerfm-backend evaluate`` (first click at the deepest point of the
reference, each next one at the deepest point of the largest error region) drives one server
process per engine. Cases: the CT organs spleen (1), right and left kidney (2, 3), liver (5),
stomach (6) of ``abdomen_ct/example_ct.nii.gz`` with ``example_seg_fast_force_split.nii.gz``,
and edema on ``brain_flair``. Dice is a figure only for engines with their real weights: an
engine that needs weights and has none here is reported as such, not measured.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

CT = ("abdomen_ct/example_ct.nii.gz", "abdomen_ct/example_seg_fast_force_split.nii.gz", "CT")
# (name, image, label map, modality, label id)
CASES: List[Tuple[str, str, str, str, int]] = [
    ("spleen", *CT, 1), ("kidney_right", *CT, 2), ("kidney_left", *CT, 3),
    ("liver", *CT, 5), ("stomach", *CT, 6),
    ("flair_edema", "brain_flair/BraTS2021_01646_img.nii.gz",
     "brain_flair/BraTS2021_01646_edema_label.nii.gz", "MR", 1),
]
CT_ORGANS = ("spleen", "kidney_right", "kidney_left", "liver", "stomach")
QUICK_CASES = ("spleen", "kidney_left", "liver")


def at(dices: Sequence[float], clicks: int) -> float:
    """Dice after ``clicks`` clicks (the last value when the simulation stopped early)."""
    return float(dices[min(clicks, len(dices)) - 1])


def weights_missing(engines: Sequence[str]) -> Dict[str, str]:
    """engine -> why it has no weights here, for those of ``engines`` that need some and lack them."""
    import argparse

    from ..engine_core.served import engine_managers
    from ..settings import settings_from_args

    manager, _ = engine_managers(settings_from_args(argparse.Namespace()), segmentation=list(engines),
                                 registration=[])
    return {row["name"]: row["weights_detail"] for row in manager.describe()
            if row["needs_weights"] and not row["weights_present"]}


def structure_figures(result: dict, clicks: int) -> dict:
    """Dice per click, Dice after 1/3/5/10 clicks (None beyond ``clicks``), clicks to 0.85
    and latency (ms) of one case."""
    dices = [float(d) for d in result["dice"]]
    latency = np.asarray(result["latency_s"], float) * 1000
    return {"dice": dices, "at": {str(n): at(dices, n) if n <= clicks else None for n in (1, 3, 5, 10)},
            "clicks_to_0.85": result["clicks_to"]["0.85"],
            "latency_ms": {"median": float(np.median(latency)), "max": float(latency.max())},
            "positive": [c["positive"] for c in result["clicks"]]}


def run_engine(engine: str, cases: Sequence[Tuple[str, str, str, str, int]], clicks: int,
               progress=None) -> Dict[str, dict]:
    """Every case through one server process serving ``engine``: name -> figures."""
    from slicerfm_client.client import SlicerFMClient

    from ..evaluation.evaluate import evaluate_with_client, load_case
    from .common import require_data
    from .servers import start_backend

    data = require_data()
    rows: Dict[str, dict] = {}
    backend = start_backend([engine], f"dice-{engine}")
    try:
        with SlicerFMClient(backend.url, timeout_s=1800) as client:
            client.connect("benchmark dice")
            for name, image, label, modality, label_id in cases:
                array, ijk_to_ras, reference, spacing = load_case(str(data / image), str(data / label), label_id)
                start = time.perf_counter()
                result = evaluate_with_client(client, array, ijk_to_ras, reference, spacing, engine, clicks,
                                              modality, verbose=False)
                rows[name] = {**structure_figures(result, clicks), "seconds": time.perf_counter() - start,
                              "image": image, "label_id": label_id}
                if progress is not None:
                    progress(name, rows[name])
    finally:
        backend.stop()
    return rows


def measure(engines: Sequence[str] = ("classic",), clicks: int = 10, case_names: Optional[Sequence[str]] = None,
            log=print) -> dict:
    """Dice per click for each engine with weights; engines without are listed apart."""
    cases = [c for c in CASES if case_names is None or c[0] in case_names]
    missing = weights_missing(engines)
    figures: dict = {"clicks": clicks, "engines": {}, "not_measured": missing}
    for engine in engines:
        if engine in missing:
            log(f"  {engine}: no weights here, Dice not measured ({missing[engine]})")
            continue

        def report(name, row, engine=engine):
            log(f"  {engine} {name:<13} " + " ".join(f"{d:.3f}" for d in row["dice"]) + f"  ({row['seconds']:.1f} s)")

        figures["engines"][engine] = run_engine(engine, cases, clicks, report)
    figures["summary"] = headline(figures)
    return figures


def headline(figures: dict) -> Dict[str, float]:
    """Mean Dice at 5 clicks over the CT organs measured, per engine; Dice at 5 per structure."""
    out: Dict[str, float] = {}
    for engine, rows in figures["engines"].items():
        organs = [rows[n]["at"]["5"] for n in CT_ORGANS if n in rows and rows[n]["at"]["5"] is not None]
        if organs:
            out[f"{engine}_mean_dice_at_5_ct"] = float(np.mean(organs))
        for name, row in rows.items():
            if row["at"]["5"] is not None:
                out[f"{engine}_{name}_dice_at_5"] = row["at"]["5"]
    return out


def print_figures(figures: dict) -> None:
    """The table of ``benchmarks/dice_table.py``."""
    for engine, rows in figures["engines"].items():
        print(f"engine {engine}, {figures['clicks']} simulated clicks, through a real server and the client")
        print(f"{'structure':<14}{'@1':>8}{'@3':>8}{'@5':>8}{'@10':>8}{'to 0.85':>9}{'median ms':>11}{'max ms':>9}")
        for name, row in rows.items():
            print(f"{name:<14}" + "".join(f"{row['at'][n]:8.3f}" if row["at"][n] is not None else f"{'-':>8}"
                                          for n in ("1", "3", "5", "10"))
                  + f"{str(row['clicks_to_0.85']):>9}{row['latency_ms']['median']:11.0f}"
                  + f"{row['latency_ms']['max']:9.0f}")
        mean = figures["summary"].get(f"{engine}_mean_dice_at_5_ct")
        if mean is not None:
            print(f"mean Dice at 5 clicks over the CT organs measured: {mean:.3f}")
    for engine, why in figures["not_measured"].items():
        print(f"{engine}: not measured ({why})")
