"""SAM-Med3D (``sam-med3d``) latency through a real server and the client, on this machine.

The network (medim SAM-Med3D, ≈100.5 M parameters) is built with RANDOM weights
(``torch.manual_seed(0)``) and saved in the released layout ``{"model_state_dict": ...}``
to a temporary directory; a REAL backend process is started with
``LocalBackend(default_command(), engines=["sam-med3d"], device="cpu")`` and
``SLICERFM_CHECKPOINTS="sam-med3d=<that file>"``. Random weights make the masks
meaningless: only the timings (and memory) are figures here, not Dice. Because the masks
are arbitrary, how many 128³ crops a click opens (extension crops when a prediction touches
a crop face) is arbitrary too; the per-click table shows the encoder time of each click so
every encoder pass is visible.

The sample CT ``abdomen_ct/example_ct.nii.gz`` (``$SLICERFM_DATA``, else ``../shared/data``)
is uploaded; click points come from its label map (deepest voxel of an organ, other organ
voxels near it, background voxels just outside it). Measured per click:

* round trip at the client (``MaskUpdate.roundtrip_ms``);
* the engine's own stages from ``Server-Timing`` (``MaskUpdate.timings_ms``):
  ``engine.encoder`` (image encoder passes of this click, 0 when the crop's embedding is
  cached), ``engine.decoder`` (prompt encoder + mask decoder passes), ``engine.total``
  (the engine's ``segment``: also z-normalisation, resampling the crop, upsampling the
  logits, pasting onto the image grid); ``engine`` (server-side, around ``segment``),
  ``server`` (the whole request on the server);
* the server's peak memory (``VmHWM`` from ``/proc/<pid>/status``) after start-up, after the
  first click (engine loaded) and at the end.

Clicks: (0) the first click on a fresh server (engine load + encoder + decoder); then per
organ a first click (new crop: encoder + decoder) and refinement clicks inside that crop
(decoder only, once the embedding is cached); at the end a positive click far away (outside
the first crop) on the same segment, which opens a second crop.

Derived: refinement round trip / its ``engine.decoder`` time (the issue's goal: a refinement
click costs at most twice the decoder's own compute).

With random weights the masks spread over the crop, so the first click of a segment opens
extension crops up to ``max_crops`` (8) and a later far click finds no crop left to open.
``--empty-masks`` zeroes the last layer of the decoder's output hypernetworks in the saved
checkpoint: every mask is empty, no extension crop is opened, each first click runs
exactly one encoder pass and the far click opens a second crop (the network does the same
amount of work per pass).

``--model-only`` instead times the network alone in this process (no server): one image
encoder pass and decoder passes on one 128³ crop of the sample CT (same random weights),
which gives the cost of ONE encoder pass to divide the per-click encoder times by.

Run::

    .venv/bin/python benchmarks/sam_med3d_latency.py               # ~3.5 min on 2 CPU cores
    .venv/bin/python benchmarks/sam_med3d_latency.py --empty-masks # ~1.5 min
    .venv/bin/python benchmarks/sam_med3d_latency.py --model-only  # ~1 min
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

from bench_common import DATA, proc_status, require_data

IMAGE = "abdomen_ct/example_ct.nii.gz"
LABELS = "abdomen_ct/example_seg_fast_force_split.nii.gz"
ENGINE = "sam-med3d"



def make_checkpoint(folder: Path, empty_masks: bool = False) -> Path:
    """Random-weights SAM-Med3D saved as ``{"model_state_dict": ...}`` (the released layout).
    ``empty_masks``: the last layer of the mask decoder's output hypernetworks set to zero, so
    every logit is exactly 0 and every mask empty (the same amount of compute per pass)."""
    import torch

    from slicerfm_backend.engines.sam_med3d.model import build_network

    torch.manual_seed(0)
    model = build_network()
    if empty_masks:
        with torch.no_grad():
            for mlp in model.mask_decoder.output_hypernetworks_mlps:
                mlp.layers[-1].weight.zero_()
                mlp.layers[-1].bias.zero_()
    path = folder / "sam_med3d_turbo.pth"
    torch.save({"model_state_dict": model.state_dict()}, path)
    return path


def organ_points(labels: np.ndarray, label_id: int, spacing_kji: Sequence[float],
                 refinements: int, rng: np.random.Generator) -> Tuple[tuple, List[Tuple[tuple, bool]]]:
    """The organ's deepest voxel and ``refinements`` clicks within 30 mm of it: organ voxels
    (positive) and, every third click, background voxels 1-2 voxels outside it (negative)."""
    from scipy import ndimage

    organ = labels == label_id
    depth = ndimage.distance_transform_edt(organ, sampling=spacing_kji)
    first = np.unravel_index(int(np.argmax(depth)), organ.shape)
    ring = ndimage.binary_dilation(organ, iterations=2) & ~organ
    grid = np.indices(organ.shape).reshape(3, -1).T
    near = np.linalg.norm((grid - np.array(first)) * np.asarray(spacing_kji), axis=1) <= 30.0
    inside = grid[near & organ.ravel()]
    outside = grid[near & ring.ravel()]
    clicks = []
    for n in range(refinements):
        negative = n % 3 == 2 and len(outside)
        pool = outside if negative else inside
        clicks.append((tuple(int(v) for v in pool[rng.integers(len(pool))]), not negative))
    return tuple(int(v) for v in first), clicks


def far_point(labels: np.ndarray, first: tuple, spacing_kji: Sequence[float], label_id: int) -> tuple:
    """A voxel of organ ``label_id`` as far as possible from ``first`` (mm)."""
    grid = np.argwhere(labels == label_id)
    distance = np.linalg.norm((grid - np.array(first)) * np.asarray(spacing_kji), axis=1)
    return tuple(int(v) for v in grid[int(np.argmax(distance))])


def stats(values: Sequence[float]) -> Tuple[float, float, float]:
    a = np.asarray(values, float)
    return float(np.median(a)), float(a.min()), float(a.max())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organs", default="1,5", help="label ids of organs to click (first click + refinements each)")
    parser.add_argument("--refinements", type=int, default=6, help="refinement clicks per organ")
    parser.add_argument("--far-organ", type=int, default=5,
                        help="label id of the far click on the first organ's segment")
    parser.add_argument("--empty-masks", action="store_true",
                        help="zero the decoder's output layer: empty masks, so no extension crops")
    parser.add_argument("--model-only", action="store_true",
                        help="time one encoder pass and decoder passes in this process, no server")
    args = parser.parse_args(argv)
    if args.model_only:
        return model_only()

    import torch

    from slicerfm_backend.evaluation.evaluate import load_case
    from slicerfm_client.client import SlicerFMClient
    from slicerfm_client.geometry import spacing_kji as matrix_spacing
    from slicerfm_client.launcher import LocalBackend, default_command
    from slicerfm_backend.imaging import read_image

    require_data()
    array, ijk_to_ras, _, spacing = load_case(str(DATA / IMAGE), str(DATA / LABELS), 1)
    labels = read_image(str(DATA / LABELS))[0]
    spacing = tuple(float(v) for v in matrix_spacing(ijk_to_ras))
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, os.cpu_count() {os.cpu_count()}, "
          f"usable CPUs {len(os.sched_getaffinity(0))}, torch.get_num_threads() {torch.get_num_threads()} "
          f"(this process; the server starts with the same environment)")
    print(f"image {IMAGE}: {array.shape} {array.dtype}, spacing (k,j,i) {tuple(round(s, 2) for s in spacing)} mm")
    print("WEIGHTS ARE RANDOM (torch.manual_seed(0)): masks and Dice are meaningless, only timings count"
          + ("; --empty-masks: decoder output layer zeroed, every mask empty" if args.empty_masks else ""))

    rng = np.random.default_rng(0)
    organ_ids = [int(v) for v in args.organs.split(",") if v]
    plans = {n: organ_points(labels, n, spacing, args.refinements, rng) for n in organ_ids}

    with tempfile.TemporaryDirectory(prefix="sam-bench-") as folder:
        t0 = time.perf_counter()
        checkpoint = make_checkpoint(Path(folder), args.empty_masks)
        print(f"random checkpoint {checkpoint.stat().st_size / 1e6:.1f} MB written in {time.perf_counter() - t0:.1f} s")
        env = dict(os.environ, SLICERFM_CHECKPOINTS=f"{ENGINE}={checkpoint}")
        log_path = os.path.join(tempfile.gettempdir(), f"slicerfm-sam-bench-{os.getpid()}.log")
        backend = LocalBackend(default_command(), engines=[ENGINE], device="cpu", env=env,
                               log_path=log_path, startup_timeout_s=120.0)
        backend.start()
        pid = backend.process.pid
        memory = {"after start-up": proc_status(pid)}
        rows: List[Tuple[str, str, object]] = []  # (kind, label, MaskUpdate)
        try:
            client = SlicerFMClient(backend.url, timeout_s=1800)  # 8 encoder passes on a busy CPU can pass 300 s
            client.connect("sam_med3d_latency")  # heartbeats: a first click can outlast the liveness timeout
            client.set_image(array, ijk_to_ras, "CT")
            memory["after upload"] = proc_status(pid)

            def click(kind, segment, point, positive=True):
                update = client.add_point(segment, point, positive=positive, engine=ENGINE)
                rows.append((kind, f"{segment} {'+' if positive else '-'}{point}", update))
                t = update.timings_ms
                print(f"  {kind:<12} {segment:<8} {'+' if positive else '-'}{str(point):<15} round trip "
                      f"{update.roundtrip_ms:9.1f}  engine {t.get('engine', 0):9.1f}  encoder "
                      f"{t.get('engine.encoder', 0):9.1f}  decoder {t.get('engine.decoder', 0):7.1f}", flush=True)
                return update

            print("\nclicks (ms):")
            first_id = organ_ids[0]
            for n, label_id in enumerate(organ_ids):
                first, refinements = plans[label_id]
                segment = f"organ{label_id}"
                click("load+first" if n == 0 else "first", segment, first)
                if n == 0:
                    memory["after first click"] = proc_status(pid)
                for point, positive in refinements:
                    click("refine", segment, point, positive)
            far = far_point(labels, plans[first_id][0], spacing, args.far_organ)
            click("far", f"organ{first_id}", far)
            memory["at the end"] = proc_status(pid)
            client.close()
        except Exception:
            print(Path(log_path).read_text(errors="replace")[-3000:])
            raise
        finally:
            backend.stop()

    print_tables(rows, memory)
    return 0


def model_only(decodes: int = 10) -> int:
    """One crop of the sample CT around the spleen's deepest voxel: encoder once, decoder
    ``decodes`` times (1 then 2, 3, ... points, previous logits as mask prompt)."""
    import torch

    from slicerfm_backend.engines.sam_med3d import pipeline
    from slicerfm_backend.engines.base import ImageData
    from slicerfm_backend.engines.sam_med3d.model import SamMed3DNetwork, build_network
    from slicerfm_backend.imaging import read_image
    from slicerfm_client.geometry import spacing_kji as matrix_spacing

    array, ijk_to_ras, _ = read_image(str(DATA / IMAGE))
    labels = read_image(str(DATA / LABELS))[0]
    print(f"torch {torch.__version__}, torch.get_num_threads() {torch.get_num_threads()}, "
          f"os.cpu_count() {os.cpu_count()}; RANDOM weights, in-process, no server")
    torch.manual_seed(0)
    network = SamMed3DNetwork(build_network(), "cpu", "fp32")
    spacing = tuple(float(v) for v in matrix_spacing(ijk_to_ras))
    first, _ = organ_points(labels, 1, spacing, 0, np.random.default_rng(0))
    image = ImageData(image_id="sample", array=array, spacing_kji=spacing, ijk_to_ras=ijk_to_ras, modality="CT")
    crop = pipeline.Crop.around(pipeline.kji_to_ras(image, np.asarray(first))[0])
    t = time.perf_counter()
    values = pipeline.znormalise(pipeline.extract(pipeline.to_sitk(image), crop))
    prep = 1000 * (time.perf_counter() - t)
    network.encode(values)  # warm-up pass (first-call allocations)
    t = time.perf_counter()
    embedding = network.encode(values)
    encoder = 1000 * (time.perf_counter() - t)
    rng = np.random.default_rng(0)
    points = [(64.0, 64.0, 64.0)] + [tuple(float(v) for v in 64 + rng.integers(-20, 21, 3)) for _ in range(decodes)]
    logits, times = None, []
    for n in range(1, decodes + 1):
        t = time.perf_counter()
        logits = network.decode(embedding, np.array(points[:n], np.float32), np.ones(n, np.int64), logits)
        times.append(1000 * (time.perf_counter() - t))
    print(f"crop resample + z-normalise: {prep:.1f} ms")
    print(f"image encoder, one 128³ crop (after one warm-up pass): {encoder:.1f} ms")
    print(f"decoder (prompt encoder + mask decoder), {decodes} passes with 1..{decodes} points: "
          f"median {np.median(times):.1f} ms [{min(times):.1f} - {max(times):.1f}]; first pass {times[0]:.1f} ms")
    return 0


def print_tables(rows, memory) -> None:
    def col(updates, name):
        if name == "roundtrip":
            return [u.roundtrip_ms for u in updates]
        if name == "pipeline":  # engine work outside the network passes
            return [u.timings_ms["engine.total"] - u.timings_ms["engine.encoder"] - u.timings_ms["engine.decoder"]
                    for u in updates]
        if name == "server-engine":
            return [u.timings_ms["server"] - u.timings_ms["engine"] for u in updates]
        if name == "http":
            return [u.roundtrip_ms - u.timings_ms["server"] for u in updates]
        return [u.timings_ms.get(name, 0.0) for u in updates]

    groups = {
        "first click, fresh server (load + encoder + decoder)": [u for k, _, u in rows if k == "load+first"],
        "first click in a new crop (encoder + decoder)": [u for k, _, u in rows if k == "first"],
        "refinement, crop cached (no encoder pass)": [u for k, _, u in rows
                                                      if k == "refine" and u.timings_ms.get("engine.encoder", 0) == 0],
        "refinement that ran an encoder (extension crop)": [
            u for k, _, u in rows if k == "refine" and u.timings_ms.get("engine.encoder", 0) > 0],
        "far click, opens a second crop": [u for k, _, u in rows if k == "far"],
    }
    names = ["roundtrip", "server", "engine", "engine.total", "engine.encoder", "engine.decoder",
             "pipeline", "server-engine", "http"]
    print("\nstages in ms, median [min-max] over the clicks of each group:")
    print("  pipeline = engine.total - encoder - decoder (crop resampling, z-norm, upsample, paste);")
    print("  server-engine = decode, queue, commit, encode; http = round trip - server")
    for title, updates in groups.items():
        if not updates:
            print(f"\n  {title}: none")
            continue
        print(f"\n  {title}: {len(updates)} click(s)")
        for name in names:
            med, lo, hi = stats(col(updates, name))
            print(f"    {name:<16} {med:10.1f}   [{lo:.1f} - {hi:.1f}]")
    refine = groups["refinement, crop cached (no encoder pass)"]
    if refine:
        ratios = [u.roundtrip_ms / u.timings_ms["engine.decoder"] for u in refine]
        med, lo, hi = stats(ratios)
        print(f"\nrefinement round trip / engine.decoder: median {med:.2f} [{lo:.2f} - {hi:.2f}] "
              f"over {len(refine)} clicks (goal: <= 2)")
    print("\nserver memory (VmHWM = peak RSS, VmRSS, threads):")
    for when, status in memory.items():
        print(f"  {when:<18} VmHWM {status['VmHWM'] / 1e6:8.1f} MB   VmRSS {status['VmRSS'] / 1e6:8.1f} MB   "
              f"threads {status.get('Threads')}")


if __name__ == "__main__":
    raise SystemExit(main())
