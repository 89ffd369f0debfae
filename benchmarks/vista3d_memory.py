"""Peak memory of VISTA3D automatic segmentation ("everything", 117 classes) against volume
size, up to a 1024x1024x768 CT, on synthetic volumes.

    .venv/bin/python benchmarks/vista3d_memory.py [--sizes 256x256x192,512x512x384,1024x1024x768]
                                                  [--spacing 0.7,0.7,1.0] [--accumulator-mb 3072]

Each size runs in a fresh process (so its peak RSS, VmHWM, is its own). The network is a
**reduced-cost stand-in** (the real vista3d132 takes ~40 s per 128^3 window on two CPU
cores, hundreds of windows here): it returns logits of the real shape, ``[classes, 128, 128,
128]`` float32, per window, so everything the engine allocates -- the image, the 1.5 mm
working volume, the band accumulator, the class-group maxima, the label maps -- is real;
only the network's own activations are missing (measured separately by vista3d_cpu.py for a
128^3 window on the CPU; on a GPU they live in GPU memory). Sizes are (I, J, K) like a DICOM
series (columns x rows x slices); spacing is (i, j, k) in mm.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


class StandInNetwork:
    """Cheap logits of the real shape: class c gets ``window * w_c - b_c`` (deterministic)."""

    def __init__(self):
        import torch

        self.device = torch.device("cpu")
        self.precision = "stand-in (float32)"

    def classes(self, window, class_ids):
        import torch

        ids = torch.tensor([float(c) for c in class_ids])
        scale = (torch.sin(ids * 1.7) * 4)[:, None, None, None]
        out = window[0].expand(len(class_ids), *window.shape[2:]).clone()  # the one output tensor
        out.mul_(scale).sub_(0.6 * scale.abs())
        return out


def synthetic_ct(shape_kji) -> np.ndarray:
    """int16 HU: air, an elliptic body (40 HU) with a spine-like bright rod, built slab by slab."""
    k_n, j_n, i_n = shape_kji
    out = np.empty(shape_kji, np.int16)
    jj, ii = np.meshgrid(np.linspace(-1, 1, j_n), np.linspace(-1, 1, i_n), indexing="ij")
    body = (jj / 0.75) ** 2 + (ii / 0.9) ** 2 < 1
    rod = (jj - 0.4) ** 2 + ii ** 2 < 0.01
    plane = np.where(body, 40, -1000).astype(np.int16)
    plane[rod] = 700
    for k in range(k_n):
        out[k] = plane
    return out


def run_one(size_iji, spacing, accumulator_mb) -> dict:
    from bench_common import proc_status

    from slicerfm_backend.engines.vista3d import labels as labels_mod
    from slicerfm_backend.engines.base import ImageData
    from slicerfm_backend.engines.vista3d.engine import Vista3DEngine

    i_n, j_n, k_n = size_iji
    array = synthetic_ct((k_n, j_n, i_n))
    ijk_to_ras = np.diag(list(spacing) + [1.0])
    before = proc_status(os.getpid())["VmRSS"]
    engine = Vista3DEngine("cpu", {"accumulator_mb": accumulator_mb})
    engine.network = StandInNetwork()
    image = ImageData("bench", array, tuple(spacing[::-1]), ijk_to_ras, "CT")
    t = time.perf_counter()
    labels, meta = engine.segment_auto(image, list(labels_mod.EVERYTHING))
    elapsed = time.perf_counter() - t
    status = proc_status(os.getpid())
    return {"size_ijk": list(size_iji), "input_bytes": int(array.nbytes), "rss_before_bytes": before,
            "peak_rss_bytes": status["VmHWM"], "seconds": round(elapsed, 1),
            "working_xyz": meta["working_shape_xyz"], "windows": meta["windows"],
            "class_groups": meta["class_groups"], "accumulator_bytes": meta["accumulator_bytes"],
            "labels_bytes": int(labels.nbytes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256x256x192,512x512x384,1024x1024x768")
    parser.add_argument("--spacing", default="0.7,0.7,1.0")
    parser.add_argument("--accumulator-mb", type=float, default=3072)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    spacing = [float(v) for v in args.spacing.split(",")]
    if args.one:
        size = [int(v) for v in args.one.split("x")]
        print(json.dumps(run_one(size, spacing, args.accumulator_mb)))
        return
    gib = 2 ** 30
    print(f"stand-in network, 'everything' (117 classes), spacing {spacing} mm, accumulator "
          f"bound {args.accumulator_mb:.0f} MB")
    print("size (I x J x K) | input | 1.5 mm crop (x,y,z) | windows x groups | accumulator | "
          "peak RSS | peak - input | time")
    for size in args.sizes.split(","):
        done = subprocess.run([sys.executable, __file__, "--one", size, "--spacing", args.spacing,
                               "--accumulator-mb", str(args.accumulator_mb)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{size}: failed\n{done.stderr[-2000:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{size} | {r['input_bytes'] / gib:.2f} GiB | {r['working_xyz']} | "
              f"{r['windows']} x {r['class_groups']} | {r['accumulator_bytes'] / gib:.2f} GiB | "
              f"{r['peak_rss_bytes'] / gib:.2f} GiB | {(r['peak_rss_bytes'] - r['input_bytes']) / gib:.2f} GiB | "
              f"{r['seconds']:.0f} s")


if __name__ == "__main__":
    main()
