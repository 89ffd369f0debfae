"""VISTA3D: network time per 128³ window, whole-volume automatic segmentation, peak memory
against volume size, and the wire size of multi-label results.

* :func:`network_run` -- the full network (``vista3d132``, 218 M parameters) with
  ``torch.manual_seed(0)`` weights (the compute of the released weights; the labels are
  meaningless): one window with 1 class and with all requested classes, then the whole
  image ("everything" by default), with the process's peak memory (and the GPU's on CUDA).
* :func:`memory_run` -- peak RSS of automatic segmentation ("everything") against volume size
  on synthetic CTs, each size in a fresh process, with a **reduced-cost stand-in network**
  that returns logits of the real shape (117 x 128³ float32 per window): everything the
  engine allocates is real, the network's own activations are not included.
* :func:`wire_of_label_maps` -- the wire size of the sample data's real multi-label maps
  (TotalSegmentator output) as one label map message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Sequence

import numpy as np

from .common import proc_status

SMALL_CT = "abdomen_ct/example_ct_sm.nii.gz"
MEMORY_SIZES = ("256x256x192", "512x512x384", "1024x1024x768")
MEMORY_SPACING = (0.7, 0.7, 1.0)


def wire_of_label_maps() -> List[dict]:
    """Per real label map: labels, raw uint8 bytes, wire bytes, one mask per label (bytes)."""
    from slicerfm_client import wire

    from ..engines.vista3d import labels as labels_mod
    from ..imaging import read_image
    from .common import data_file

    rows = []
    for name in ("example_seg_fast_force_split.nii.gz", "example_seg.nii.gz", "example_seg_dicom.nii.gz"):
        labels = read_image(str(data_file(f"abdomen_ct/{name}")))[0].astype(np.uint8)
        count = len(np.unique(labels)) - 1
        body = wire.encode(labels, {"labels": labels_mod.dictionary(range(1, count + 1))})
        rows.append({"name": name, "shape": list(labels.shape), "labels": count, "raw_bytes": int(labels.nbytes),
                     "wire_bytes": len(body), "one_mask_per_label_bytes": int(labels.nbytes) * count})
    return rows


def _gpu_peak(device) -> dict:
    import torch

    if device.type != "cuda":
        return {}
    return {"gpu_peak_bytes": int(torch.cuda.max_memory_allocated(device))}


def network_run(image: str = SMALL_CT, classes: str = "everything", device: str = "cpu",
                whole_volume: bool = True, log=print) -> dict:
    """Window and whole-volume times of the full network with random weights."""
    import torch

    from slicerfm_client import geometry, wire

    from ..engines.base import ImageData
    from ..engines.vista3d import labels as labels_mod
    from ..engines.vista3d.engine import Vista3DEngine
    from ..engines.vista3d.model import Vista3DNetwork, build_network
    from ..imaging import read_image
    from .common import data_file

    array, ijk_to_ras, _ = read_image(str(data_file(image)))
    ids = list(labels_mod.EVERYTHING) if classes == "everything" else labels_mod.auto_classes(classes.split(","))
    torch.manual_seed(0)
    engine = Vista3DEngine(device)
    engine.network = Vista3DNetwork(build_network(), device)
    target = engine.network.device
    out: dict = {"image": image, "shape": list(array.shape), "classes": len(ids), "device": str(target),
                 "precision": getattr(engine.network, "precision", None), "threads": torch.get_num_threads(),
                 "window_s": {}}
    window = torch.rand(1, 1, 128, 128, 128, device=target)
    for label, chosen in (("1", ids[:1]), (str(len(ids)), ids)):
        if target.type == "cuda":
            engine.network.classes(window, chosen)  # warm-up: kernel selection, allocations
            torch.cuda.reset_peak_memory_stats(target)
            torch.cuda.synchronize(target)
        start = time.perf_counter()
        engine.network.classes(window, chosen)
        if target.type == "cuda":
            torch.cuda.synchronize(target)
        out["window_s"][label] = time.perf_counter() - start
        out.setdefault("window_gpu_peak_bytes", {}).update({label: _gpu_peak(target).get("gpu_peak_bytes")})
        log(f"  vista3d one 128³ window, {label} class(es): {out['window_s'][label]:.2f} s")
    del window
    if whole_volume:
        ticks: List[float] = []

        def progress(stage, done=0, total=0):
            if stage == "windows" and done:
                ticks.append(time.perf_counter())

        if target.type == "cuda":
            torch.cuda.reset_peak_memory_stats(target)
        data = ImageData("bench", array, geometry.spacing_kji(ijk_to_ras), ijk_to_ras, "CT")
        start = time.perf_counter()
        labels, meta = engine.segment_auto(data, ids, progress=progress)
        total = time.perf_counter() - start
        body = wire.encode(labels, {"labels": meta["labels"]})
        out["whole"] = {"seconds": total, "working_shape_xyz": meta["working_shape_xyz"],
                        "windows": meta["windows"], "class_groups": meta["class_groups"],
                        "per_window_s": float(np.median(np.diff([start] + ticks))) if ticks else None,
                        "timings_s": meta["timings_s"], "not_computed_voxels": meta["not_computed"]["voxels"],
                        "voxels": int(labels.size), "labels_present": int(len(np.unique(labels)) - 1),
                        "raw_bytes": int(labels.nbytes), "wire_bytes": len(body), **_gpu_peak(target)}
        log(f"  vista3d whole volume: {total:.1f} s, {meta['windows']} windows x {meta['class_groups']} group(s)")
    out["peak_rss_bytes"] = proc_status(os.getpid())["VmHWM"]
    return out


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
    """int16 HU: air, an elliptic body (40 HU) with a spine-like bright rod, slab by slab."""
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


def memory_one(size_ijk: Sequence[int], spacing_ijk: Sequence[float], accumulator_mb: float) -> dict:
    """One size in this process (call it in a fresh one: the peak RSS is the process's)."""
    from ..engines.base import ImageData
    from ..engines.vista3d import labels as labels_mod
    from ..engines.vista3d.engine import Vista3DEngine

    i_n, j_n, k_n = size_ijk
    array = synthetic_ct((k_n, j_n, i_n))
    ijk_to_ras = np.diag(list(spacing_ijk) + [1.0])
    before = proc_status(os.getpid())["VmRSS"]
    engine = Vista3DEngine("cpu", {"accumulator_mb": accumulator_mb})
    engine.network = StandInNetwork()
    image = ImageData("bench", array, tuple(spacing_ijk[::-1]), ijk_to_ras, "CT")
    start = time.perf_counter()
    labels, meta = engine.segment_auto(image, list(labels_mod.EVERYTHING))
    status = proc_status(os.getpid())
    return {"size_ijk": list(size_ijk), "input_bytes": int(array.nbytes), "rss_before_bytes": before,
            "peak_rss_bytes": status["VmHWM"], "seconds": round(time.perf_counter() - start, 1),
            "working_xyz": meta["working_shape_xyz"], "windows": meta["windows"],
            "class_groups": meta["class_groups"], "accumulator_bytes": meta["accumulator_bytes"],
            "labels_bytes": int(labels.nbytes)}


def memory_run(sizes: Sequence[str] = MEMORY_SIZES, spacing_ijk: Sequence[float] = MEMORY_SPACING,
               accumulator_mb: float = 3072, log=print) -> List[dict]:
    """:func:`memory_one` for each size ("IxJxK") in a fresh Python process; failures say why."""
    rows = []
    for size in sizes:
        command = [sys.executable, "-m", "slicerfm_backend.benchmark.vista3d", size,
                   ",".join(str(v) for v in spacing_ijk), str(accumulator_mb)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"VISTA3D memory run for {size} failed:\n{done.stderr[-2000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        log(f"  vista3d memory {size}: peak RSS {rows[-1]['peak_rss_bytes'] / 2**30:.2f} GiB")
    return rows


def measure(network: bool = True, memory_sizes: Sequence[str] = MEMORY_SIZES, accumulator_mb: float = 3072,
            device: str = "cpu", image: str = SMALL_CT, log=print) -> dict:
    """Label-map wire sizes always; the network run and the memory sizes when asked."""
    figures: dict = {"wire": wire_of_label_maps()}
    if network:
        figures["network"] = network_run(image, device=device, log=log)
    if memory_sizes:
        figures["memory"] = {"accumulator_mb": accumulator_mb, "spacing_ijk": list(MEMORY_SPACING),
                             "sizes": memory_run(memory_sizes, MEMORY_SPACING, accumulator_mb, log)}
    figures["summary"] = headline(figures)
    return figures


def headline(figures: dict) -> Dict[str, float]:
    out = {f"wire_{row['name'].split('.')[0]}_bytes": row["wire_bytes"] for row in figures["wire"]}
    network = figures.get("network")
    if network:
        out.update({f"window_{k}_classes_s": v for k, v in network["window_s"].items()})
        if "whole" in network:
            out["whole_volume_s"] = network["whole"]["seconds"]
        out["network_peak_rss_bytes"] = network["peak_rss_bytes"]
    for row in figures.get("memory", {}).get("sizes", []):
        out[f"memory_{'x'.join(map(str, row['size_ijk']))}_peak_rss_bytes"] = row["peak_rss_bytes"]
    return out


def print_figures(figures: dict) -> None:
    """The text of ``benchmarks/vista3d_cpu.py`` / ``vista3d_memory.py``."""
    for row in figures["wire"]:
        print(f"{row['name']}: {row['shape']} (K, J, I), {row['labels']} labels; raw uint8 {row['raw_bytes']:,} B, "
              f"wire {row['wire_bytes']:,} B ({row['raw_bytes'] / row['wire_bytes']:.1f}x smaller); one uint8 "
              f"mask per label {row['one_mask_per_label_bytes']:,} B")
    network = figures.get("network")
    if network:
        print(f"\nnetwork on {network['device']} ({network['threads']} threads), {network['classes']} classes, "
              f"image {network['image']} {network['shape']}")
        for label, seconds in network["window_s"].items():
            print(f"  one 128³ window, {label} class(es): {seconds:.2f} s")
        whole = network.get("whole")
        if whole:
            print(f"  whole volume: {whole['seconds']:.1f} s; crop {whole['working_shape_xyz']} (x, y, z), "
                  f"{whole['windows']} windows x {whole['class_groups']} group(s); {whole['per_window_s']:.1f} s "
                  f"median per window; not computed {whole['not_computed_voxels']:,} of {whole['voxels']:,} voxels; "
                  f"result {whole['raw_bytes']:,} B raw -> {whole['wire_bytes']:,} B on the wire")
        print(f"  peak RSS {network['peak_rss_bytes'] / 2**30:.2f} GiB")
    memory = figures.get("memory")
    if memory:
        gib = 2**30
        print(f"\nstand-in network, 'everything', accumulator bound {memory['accumulator_mb']:.0f} MB")
        for r in memory["sizes"]:
            print(f"  {'x'.join(map(str, r['size_ijk']))}: input {r['input_bytes'] / gib:.2f} GiB, "
                  f"crop {r['working_xyz']}, "
                  f"{r['windows']} x {r['class_groups']}, accumulator {r['accumulator_bytes'] / gib:.2f} GiB, peak RSS "
                  f"{r['peak_rss_bytes'] / gib:.2f} GiB, {r['seconds']:.0f} s")


if __name__ == "__main__":  # one memory size in a fresh process: SIZE SPACING ACCUMULATOR_MB
    _size, _spacing, _accumulator = sys.argv[1:4]
    print(json.dumps(memory_one([int(v) for v in _size.split("x")], [float(v) for v in _spacing.split(",")],
                                float(_accumulator))))
