"""The classic engine on the sample CT resampled to 512x512x300: Dice and engine time per click.

The sample abdomen CT (3 mm voxels) and its reference labels are resampled with SimpleITK
onto a 512x512x300 grid over the same field of view (voxels 0.71 x 0.59 mm in plane, 1.12 mm
between slices; linear for the CT, nearest neighbour for the labels), so the engine sees a
real anatomy at the size of a clinical CT. The simulated user of ``slicerfm-backend evaluate``
clicks ``clicks`` times per structure (the five large organs, then the small and thin ones of
issue 18's suite, where they are asked for); the engine runs in-process (the server's own overhead is
measured by :mod:`.protocol`), with one per-image cache shared by the organs as in a session.
"""

from __future__ import annotations

import os
import time
from typing import Dict, Mapping, Sequence

import numpy as np

SIZE_IJK = (512, 512, 300)
ORGANS = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 5, "stomach": 6}
# The small and thin structures of ``evaluation.suite.CT_SMALL`` (ids of label_names_total_and_total_mr.json)
SMALL = {"gallbladder": 4, "pancreas": 7, "adrenal_gland_right": 8, "adrenal_gland_left": 9, "aorta": 52,
         "inferior_vena_cava": 63, "portal_vein_and_splenic_vein": 64, "vertebrae_L1": 31, "vertebrae_L2": 30,
         "vertebrae_L3": 29}


def resample(path, interpolator, default: float, size_ijk: Sequence[int] = SIZE_IJK):
    """``(array (K, J, I), spacing_kji mm)`` of the image at ``path`` on the ``size_ijk`` grid."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    spacing = [n * s / m for n, s, m in zip(image.GetSize(), image.GetSpacing(), size_ijk)]
    out = sitk.Resample(image, [int(v) for v in size_ijk], sitk.Transform(), interpolator, image.GetOrigin(),
                        spacing, image.GetDirection(), default, image.GetPixelID())
    return sitk.GetArrayFromImage(out), tuple(reversed(spacing))


def measure(clicks: int = 5, size_ijk: Sequence[int] = SIZE_IJK, log=print,
            structures: Mapping[str, int] = ORGANS) -> dict:
    """Dice per click and the engine's stage times per click, structure by structure
    (``structures``: name -> label id; kept under ``organs`` in the figures)."""
    import SimpleITK as sitk

    from ..engines.classic.engine import ClassicEngine
    from ..evaluation.inprocess import InProcessSession
    from ..evaluation.simulate import simulate_clicks
    from .common import data_file

    start = time.perf_counter()
    image, spacing = resample(data_file("abdomen_ct/example_ct.nii.gz"), sitk.sitkLinear, -1000, size_ijk)
    image = image.astype(np.int16)
    labels, _ = resample(data_file("abdomen_ct/example_seg_fast_force_split.nii.gz"), sitk.sitkNearestNeighbor, 0,
                         size_ijk)
    figures: dict = {"shape": list(image.shape), "spacing_kji": list(spacing),
                     "resample_s": time.perf_counter() - start, "clicks": clicks, "organs": {},
                     "load_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    cache: dict = {}
    for name, label in structures.items():
        session = InProcessSession(ClassicEngine(), image, spacing, "CT", cache=cache)
        result = simulate_clicks(labels == label, spacing, session.interact, clicks)
        figures["organs"][name] = {
            "dice": [float(d) for d in result["dice"]],
            "positive": [c["positive"] for c in result["clicks"]],
            # Stage times (ms) with the engine's counts (``roi_voxels``, not a time) alongside.
            "stages_ms": [{k: float(v) for k, v in {**r.timings_ms, **r.counts}.items()} for r in session.results]}
        log(f"  {name}: Dice per click " + " ".join(f"{d:.3f}" for d in result["dice"]))
    totals = [s["total"] for organ in figures["organs"].values() for s in organ["stages_ms"]]
    figures["engine_ms"] = {"median": float(np.median(totals)), "p90": float(np.percentile(totals, 90)),
                            "max": float(np.max(totals)), "n": len(totals)}
    figures["load_after"] = os.getloadavg()[0]
    figures["summary"] = {"engine_median_ms": figures["engine_ms"]["median"],
                          "engine_max_ms": figures["engine_ms"]["max"],
                          **{f"{n}_dice_last": o["dice"][-1] for n, o in figures["organs"].items()}}
    return figures


def slowest_click(figures: dict) -> Dict:
    """The organ, click number and stage times of the slowest click."""
    best = None
    for name, organ in figures["organs"].items():
        for index, stages in enumerate(organ["stages_ms"], 1):
            if best is None or stages["total"] > best["stages"]["total"]:
                best = {"organ": name, "click": index, "stages": stages}
    return best


def print_figures(figures: dict) -> None:
    """The text of ``benchmarks/classic_fine_ct.py``."""
    print(f"CT resampled to {figures['shape']} (K, J, I), voxels "
          f"{tuple(round(s, 3) for s in figures['spacing_kji'])} mm (k, j, i), in {figures['resample_s']:.1f} s")
    for name, organ in figures["organs"].items():
        print(f"\n{name}: Dice per click " + " ".join(f"{d:.3f}" for d in organ["dice"]))
        print(f"  {'click':<6}{'total':>8}{'grid':>7}{'smooth':>8}{'grow/cut':>9}{'walk':>7}{'compose':>9}"
              f"{'ROI voxels':>12}")
        for index, (positive, t) in enumerate(zip(organ["positive"], organ["stages_ms"]), 1):
            sign = "+" if positive else "-"
            print(f"  {index:<2}{sign:<4}{t['total']:8.0f}{t.get('grid', 0):7.0f}{t.get('smooth', 0):8.0f}"
                  f"{t.get('grow', t.get('cut', 0)):9.0f}{t.get('walk', 0):7.0f}{t.get('compose', 0):9.0f}"
                  f"{t.get('roi_voxels', 0):12,.0f}")
    e = figures["engine_ms"]
    print(f"\nengine time per click over {e['n']} clicks: median {e['median']:.0f} ms, "
          f"p90 {e['p90']:.0f} ms, max {e['max']:.0f} ms" + load_text(figures))


def load_text(figures: dict) -> str:
    """``; load average A before, B after on N CPUs`` where the figures carry it (else empty)."""
    if "load_before" not in figures:
        return ""
    return (f"; load average {figures['load_before']:.1f} before, {figures['load_after']:.1f} after "
            f"on {figures['cpus']} CPUs")
