"""VISTA3D on the CPU with the full network (vista3d132, random weights: the same compute as
the released weights): time of one 128^3 window, whole-volume automatic segmentation of the
sample CT (the 30-slice one by default: the full one needs ~27 windows), peak memory, and
the wire size of the multi-label result.

    .venv/bin/python benchmarks/vista3d_cpu.py [--classes everything|liver,spleen,...] [--threads N]

Prints figures; nothing is asserted. Random weights label arbitrary voxels, so the label map's
content (and hence its compressed size) differs from a real one; the byte figures are an
upper-bound illustration of a label map with many labels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import proc_status, require_data  # noqa: E402

from slicerfm_backend.engines.vista3d import labels as labels_mod  # noqa: E402
from slicerfm_backend.engines.base import ImageData  # noqa: E402
from slicerfm_backend.engines.vista3d.engine import Vista3DEngine  # noqa: E402
from slicerfm_backend.engines.vista3d.model import Vista3DNetwork, build_network  # noqa: E402
from slicerfm_backend.imaging import read_image  # noqa: E402
from slicerfm_client import geometry, wire  # noqa: E402


def wire_of_reference_maps(data: Path) -> None:
    """Wire bytes of real multi-label maps (TotalSegmentator's output shipped with the sample
    data) as a label map message, against raw uint8 and one mask per label."""
    for name in ("example_seg_fast_force_split.nii.gz", "example_seg.nii.gz", "example_seg_dicom.nii.gz"):
        labels, _, _ = read_image(str(data / "abdomen_ct" / name))
        labels = labels.astype(np.uint8)
        count = len(np.unique(labels)) - 1
        body = wire.encode(labels, {"labels": labels_mod.dictionary(range(1, count + 1))})
        print(f"{name}: {labels.shape} (K, J, I), {count} labels; raw uint8 {labels.nbytes:,} B, "
              f"wire {len(body):,} B ({labels.nbytes / len(body):.1f}x smaller, dictionary included); "
              f"one uint8 mask per label {labels.nbytes * count:,} B")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="everything")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--image", default="abdomen_ct/example_ct_sm.nii.gz",
                        help="image under the shared data folder (default: the 30-slice sample CT)")
    parser.add_argument("--wire-only", action="store_true",
                        help="only the wire size of the sample data's real multi-label maps")
    args = parser.parse_args()
    if args.wire_only:
        wire_of_reference_maps(require_data())
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    data = require_data()
    array, ijk_to_ras, _ = read_image(str(data / args.image))
    everything = args.classes == "everything"
    ids = list(labels_mod.EVERYTHING) if everything else labels_mod.auto_classes(args.classes.split(","))
    torch.manual_seed(0)
    engine = Vista3DEngine("cpu")
    engine.network = Vista3DNetwork(build_network(), "cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; image {array.shape} (K, J, I), "
          f"spacing {np.round(geometry.spacing_kji(ijk_to_ras), 2).tolist()} mm (k, j, i); {len(ids)} classes")

    window = torch.rand(1, 1, 128, 128, 128)
    for label, chosen in (("1 class", ids[:1]), (f"{len(ids)} classes", ids)):
        t = time.perf_counter()
        engine.network.classes(window, chosen)
        print(f"one 128^3 window, {label}: {time.perf_counter() - t:.1f} s", flush=True)

    ticks = []

    def progress(stage, done=0, total=0):
        if stage == "windows" and done:
            ticks.append((time.perf_counter(), done, total))

    image = ImageData("bench", array, geometry.spacing_kji(ijk_to_ras), ijk_to_ras, "CT")
    t = time.perf_counter()
    labels, meta = engine.segment_auto(image, ids, progress=progress)
    total = time.perf_counter() - t
    per_window = np.diff([t] + [tick[0] for tick in ticks])
    print(f"whole volume: {total:.1f} s; working crop {meta['working_shape_xyz']} (x, y, z), "
          f"{meta['windows']} windows x {meta['class_groups']} class group(s); "
          f"{np.median(per_window):.1f} s median per window; stages {json.dumps(meta['timings_s'])}")
    print(f"not computed: {meta['not_computed']['voxels']:,} of {labels.size:,} voxels "
          f"(computed box {meta['not_computed']['computed_bbox_kji']})")
    print(f"peak RSS {proc_status(os.getpid())['VmHWM'] / 2**30:.2f} GiB")

    present = np.unique(labels)
    body = wire.encode(labels, {"labels": meta["labels"]})
    one_mask_per_class = labels.size * len(ids)
    print(f"result: {len(present) - 1} labels present; uint8 label map raw {labels.nbytes:,} B, "
          f"wire message {len(body):,} B ({labels.nbytes / len(body):.1f}x smaller); "
          f"one uint8 mask per requested class would be {one_mask_per_class:,} B raw")


if __name__ == "__main__":
    main()
