"""The classic engine on the sample CT resampled to 512x512x300: Dice and engine time per click.

The sample abdomen CT (3 mm voxels) and its reference labels are resampled with SimpleITK
onto a 512x512x300 grid over the same field of view (voxels 0.71 x 0.59 mm in plane, 1.12 mm
between slices; linear for the CT, nearest neighbour for the labels), so the engine sees a
real anatomy at the size of a clinical CT. The simulated user of ``slicerfm-backend evaluate``
clicks 5 times per structure (the large organs, then the small and thin ones of the
benchmark suite, ``evaluation/suite.py``); the engine runs in-process (the server's own overhead is measured
by ``protocol_overhead.py``), with one per-image cache shared by the organs as in a session.
Prints Dice per click and the engine's stage times (ms) per click.

    .venv/bin/python benchmarks/classic_fine_ct.py [--clicks 5] [--large-only]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from bench_common import require_data
from slicerfm_backend.engines.classic.engine import ClassicEngine
from slicerfm_backend.evaluation.inprocess import InProcessSession
from slicerfm_backend.evaluation.simulate import simulate_clicks

SIZE_IJK = (512, 512, 300)
ORGANS = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 5, "stomach": 6}
SMALL = {"gallbladder": 4, "pancreas": 7, "adrenal_gland_right": 8, "adrenal_gland_left": 9, "aorta": 52,
         "inferior_vena_cava": 63, "portal_vein_and_splenic_vein": 64, "vertebrae_L1": 31, "vertebrae_L2": 30,
         "vertebrae_L3": 29}


def resample(path: Path, interpolator, default: float):
    """``(array (K, J, I), spacing_kji mm)`` of the image at ``path`` on the SIZE_IJK grid."""
    image = sitk.ReadImage(str(path))
    spacing = [n * s / m for n, s, m in zip(image.GetSize(), image.GetSpacing(), SIZE_IJK)]
    out = sitk.Resample(image, SIZE_IJK, sitk.Transform(), interpolator, image.GetOrigin(), spacing,
                        image.GetDirection(), default, image.GetPixelID())
    return sitk.GetArrayFromImage(out), tuple(reversed(spacing))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--large-only", action="store_true", help="only the five large organs")
    args = parser.parse_args()
    ct = require_data() / "abdomen_ct"
    start = time.perf_counter()
    image, spacing = resample(ct / "example_ct.nii.gz", sitk.sitkLinear, -1000)
    image = image.astype(np.int16)
    labels, _ = resample(ct / "example_seg_fast_force_split.nii.gz", sitk.sitkNearestNeighbor, 0)
    print(f"CT resampled to {image.shape} (K, J, I), voxels {tuple(round(s, 3) for s in spacing)} mm "
          f"(k, j, i), in {time.perf_counter() - start:.1f} s; {os.cpu_count()} CPUs")
    cache: dict = {}
    all_ms = []
    structures = ORGANS if args.large_only else {**ORGANS, **SMALL}
    for name, label in structures.items():
        session = InProcessSession(ClassicEngine(), image, spacing, "CT", cache=cache)
        result = simulate_clicks(labels == label, spacing, session.interact, args.clicks)
        print(f"\n{name}: Dice per click " + " ".join(f"{d:.3f}" for d in result["dice"]))
        print(f"  {'click':<6}{'total':>8}{'grid':>7}{'smooth':>8}{'grow/cut':>9}{'compose':>9}{'ROI voxels':>12}{'mm':>6}")
        for index, (click, engine) in enumerate(zip(result["clicks"], session.results), 1):
            t = engine.timings_ms
            all_ms.append(t["total"])
            sign = "+" if click["positive"] else "-"
            print(f"  {index:<2}{sign:<4}{t['total']:8.0f}{t.get('grid', 0):7.0f}{t.get('smooth', 0):8.0f}"
                  f"{t.get('grow', t.get('cut', 0)):9.0f}{t.get('compose', 0):9.0f}{t.get('roi_voxels', 0):12,.0f}"
                  f"{t.get('working_mm', 0):6.2f}")
    print(f"\nengine time per click over {len(all_ms)} clicks: median {np.median(all_ms):.0f} ms, "
          f"p90 {np.percentile(all_ms, 90):.0f} ms, max {np.max(all_ms):.0f} ms; "
          f"load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
