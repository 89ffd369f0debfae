"""SAM-Med3D (``sam-med3d``) latency through a real server and the client, with random weights.

The network (medim SAM-Med3D, ~100.5 M parameters) is built with RANDOM weights
(``torch.manual_seed(0)``) and saved in the released layout ``{"model_state_dict": ...}``;
a REAL server is started with ``SLICERFM_CHECKPOINTS="sam-med3d=<that file>"``. The masks are
meaningless: only timings and memory are figures here, not Dice.

Runs (each on a fresh server, the sample CT ``abdomen_ct/example_ct.nii.gz`` uploaded):

* ``default``: clicks on organs of the label map -- per organ a first click at its deepest
  voxel (new crop: encoder + decoder), refinement clicks within 30 mm (every third negative,
  just outside the organ), then a far click on the first organ's segment. Random masks
  spread over the crop, so the first click of a segment opens extension crops up to
  ``max_crops`` (8).
* ``empty``: the same with the decoder's output layer zeroed: every mask is empty, each
  first click runs exactly one encoder pass, the far click opens a second crop.
* ``simulated``: the simulated user of ``slicerfm-backend evaluate`` on the spleen with
  ``max_crops=1`` (a segment in one crop): the round trip of refinement clicks against the
  decoder's own time.
* ``model``: the network alone, in-process: crop resample + z-normalise, one encoder pass
  (after a warm-up pass), decoder passes with 1..N points.
* ``pipeline``: the engine's own work alone (in-process, a stand-in network of negligible
  cost): upsampling and pasting per refinement click, with one crop and with eight.

Per click: the client's round trip and the ``Server-Timing`` stages -- ``engine.encoder``
(encoder passes of this click), ``engine.decoder`` (prompt encoder + mask decoder),
``engine.total`` (the engine's whole ``segment``), ``engine``, ``server``. *Pipeline* =
``engine.total - encoder - decoder``: crop resampling, z-normalisation, upsampling the
logits and pasting them onto the image grid.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .common import proc_status, summary

IMAGE = "abdomen_ct/example_ct.nii.gz"
LABELS = "abdomen_ct/example_seg_fast_force_split.nii.gz"
ENGINE = "sam-med3d"


def make_checkpoint(folder: Path, empty_masks: bool = False) -> Path:
    """Random-weights SAM-Med3D saved as ``{"model_state_dict": ...}`` (the released layout).
    ``empty_masks``: the last layer of the mask decoder's output hypernetworks set to zero, so
    every logit is exactly 0 and every mask empty (the same amount of compute per pass)."""
    import torch

    from ..engines.sam_med3d.model import build_network

    torch.manual_seed(0)
    model = build_network()
    if empty_masks:
        with torch.no_grad():
            for mlp in model.mask_decoder.output_hypernetworks_mlps:
                mlp.layers[-1].weight.zero_()
                mlp.layers[-1].bias.zero_()
    path = Path(folder) / ("sam_med3d_empty.pth" if empty_masks else "sam_med3d_turbo.pth")
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


def load_sample():
    """``(image, ijk_to_ras, labels, spacing_kji)`` of the sample CT."""
    from slicerfm_client.geometry import spacing_kji

    from ..imaging import read_image
    from .common import data_file

    array, ijk_to_ras, _ = read_image(str(data_file(IMAGE)))
    labels = read_image(str(data_file(LABELS)))[0]
    return array, ijk_to_ras, labels, tuple(float(v) for v in spacing_kji(ijk_to_ras))


def _server(checkpoint: Path, device: str, options: Sequence[str] = ()):
    from .servers import start_backend

    env = {"SLICERFM_CHECKPOINTS": f"{ENGINE}={checkpoint}"}
    if options:
        env["SLICERFM_ENGINE_OPTIONS"] = ",".join(options)
    return start_backend([ENGINE], "sam-med3d", device=device, env=env, startup_timeout_s=300.0)


def click_row(kind: str, segment: str, point, positive: bool, update) -> dict:
    return {"kind": kind, "segment": segment, "point_kji": list(point), "positive": bool(positive),
            "roundtrip_ms": update.roundtrip_ms, "timings_ms": dict(update.timings_ms),
            "response_bytes": update.wire_bytes}


def server_run(checkpoint: Path, organs: Sequence[int] = (1, 5), refinements: int = 6,
               far_organ: Optional[int] = 5, device: str = "cpu", log=print) -> dict:
    """The organ clicks of the ``default`` / ``empty`` runs; per-click rows and server memory."""
    from slicerfm_client.client import SlicerFMClient

    array, ijk_to_ras, labels, spacing = load_sample()
    rng = np.random.default_rng(0)
    plans = {n: organ_points(labels, n, spacing, refinements, rng) for n in organs}
    backend = _server(checkpoint, device)
    pid = backend.process.pid
    memory = {"after start-up": proc_status(pid)}
    rows: List[dict] = []
    try:
        with SlicerFMClient(backend.url, timeout_s=1800) as client:  # 8 encoder passes on a busy CPU
            client.connect("benchmark sam-med3d")  # heartbeats: a first click can outlast the liveness timeout
            client.set_image(array, ijk_to_ras, "CT")
            memory["after upload"] = proc_status(pid)

            def click(kind, segment, point, positive=True):
                update = client.add_point(segment, point, positive=positive, engine=ENGINE)
                rows.append(click_row(kind, segment, point, positive, update))
                t = update.timings_ms
                log(f"  {kind:<12} {segment:<8} {'+' if positive else '-'}{str(point):<15} round trip "
                    f"{update.roundtrip_ms:9.1f} ms, encoder {t.get('engine.encoder', 0):9.1f}, decoder "
                    f"{t.get('engine.decoder', 0):7.1f}")

            for n, label_id in enumerate(organs):
                first, clicks = plans[label_id]
                click("load+first" if n == 0 else "first", f"organ{label_id}", first)
                if n == 0:
                    memory["after first click"] = proc_status(pid)
                for point, positive in clicks:
                    click("refine", f"organ{label_id}", point, positive)
            if far_organ is not None:
                click("far", f"organ{organs[0]}", far_point(labels, plans[organs[0]][0], spacing, far_organ))
            memory["at the end"] = proc_status(pid)
    finally:
        backend.stop()
    return {"clicks": rows, "memory": memory}


def simulated_user_run(checkpoint: Path, clicks: int = 8, max_crops: int = 1, device: str = "cpu") -> dict:
    """The simulated user on the spleen with ``max_crops`` crops; per-click rows."""
    from slicerfm_client.client import SlicerFMClient

    from ..evaluation.evaluate import evaluate_with_client

    array, ijk_to_ras, labels, spacing = load_sample()
    backend = _server(checkpoint, device, [f"{ENGINE}.max_crops={max_crops}"])
    try:
        with SlicerFMClient(backend.url, timeout_s=1800) as client:
            client.connect("benchmark sam-med3d simulated user")
            result = evaluate_with_client(client, array, ijk_to_ras, labels == 1, spacing, ENGINE, clicks,
                                          "CT", verbose=False)
    finally:
        backend.stop()
    rows = []
    for n, (stages, click) in enumerate(zip(result["stages_ms"], result["clicks"])):
        timings = {k: v for k, v in stages.items() if k not in ("roundtrip", "response_bytes")}
        rows.append({"kind": "load+first" if n == 0 else "refine", "segment": "spleen",
                     "point_kji": click["point_kji"], "positive": click["positive"],
                     "roundtrip_ms": stages["roundtrip"], "timings_ms": timings,
                     "response_bytes": stages["response_bytes"]})
    return {"clicks": rows, "max_crops": max_crops}


def _synchronise(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(decodes: int = 10, device: str = "cpu", precision: str = "fp32", network=None) -> dict:
    """One crop of the sample CT around the spleen's deepest voxel: crop preparation, encoder
    once (after a warm-up pass), decoder ``decodes`` times (1, 2, ... points, previous logits
    as mask prompt). Times in ms; on CUDA synchronised, with peak GPU memory."""
    import torch

    from ..engines.base import ImageData
    from ..engines.sam_med3d import pipeline
    from ..engines.sam_med3d.model import SamMed3DNetwork, build_network

    array, ijk_to_ras, labels, spacing = load_sample()
    if network is None:
        torch.manual_seed(0)
        network = SamMed3DNetwork(build_network(), device, precision)
    first, _ = organ_points(labels, 1, spacing, 0, np.random.default_rng(0))
    image = ImageData(image_id="sample", array=array, spacing_kji=spacing, ijk_to_ras=ijk_to_ras, modality="CT")
    crop = pipeline.Crop.around(pipeline.kji_to_ras(image, np.asarray(first))[0])
    start = time.perf_counter()
    values = pipeline.znormalise(pipeline.extract(pipeline.to_sitk(image), crop))
    prepare = 1000 * (time.perf_counter() - start)
    network.encode(values)  # warm-up pass (first-call allocations, kernel selection)
    if network.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(network.device)
    _synchronise(network.device)
    start = time.perf_counter()
    embedding = network.encode(values)
    _synchronise(network.device)
    encoder = 1000 * (time.perf_counter() - start)
    rng = np.random.default_rng(0)
    points = [(64.0, 64.0, 64.0)] + [tuple(float(v) for v in 64 + rng.integers(-20, 21, 3)) for _ in range(decodes)]
    logits, times = None, []
    for n in range(1, decodes + 1):
        start = time.perf_counter()
        logits = network.decode(embedding, np.array(points[:n], np.float32), np.ones(n, np.int64), logits)
        _synchronise(network.device)
        times.append(1000 * (time.perf_counter() - start))
    out = {"device": str(network.device), "precision": network.precision, "prepare_ms": prepare,
           "encoder_ms": encoder, "decoder_ms": summary(times), "threads": torch.get_num_threads()}
    if network.device.type == "cuda":
        out["gpu_peak_bytes"] = int(torch.cuda.max_memory_allocated(network.device))
    return out


class StandInNetwork:
    """A network of negligible cost for :func:`pipeline_only`: the logits are a ball of
    ``radius`` low-resolution voxels around the first point (``radius`` None: positive
    everywhere, so every face is touched and extension crops open up to ``max_crops``)."""

    def __init__(self, radius: Optional[float] = 6.0):
        self.radius = radius

    def encode(self, image):
        return np.zeros((1, 1, 1, 1, 1), np.float32)

    def decode(self, embedding, points, labels, logits):
        if self.radius is None:
            return np.full((32, 32, 32), 1.0, np.float32)
        grid = np.indices((32, 32, 32)).transpose(1, 2, 3, 0).astype(np.float32)
        centre = np.asarray(points[0], np.float32) / 4.0
        return (self.radius - np.linalg.norm(grid - centre, axis=-1)).astype(np.float32)


def pipeline_only(clicks: int = 12, spread: bool = False) -> dict:
    """The engine's work outside the network, in-process on the sample CT, with
    :class:`StandInNetwork`: per refinement click ``engine.total - encoder - decoder`` (ms) --
    crop preparation is cached, so this is the upsampling and the paste. ``spread``: logits
    positive everywhere (8 crops, as random weights give); else one crop."""
    from ..engines.base import Prompt
    from ..engines.sam_med3d.engine import SamMed3DEngine
    from ..evaluation.inprocess import InProcessSession

    array, ijk_to_ras, labels, spacing = load_sample()
    engine = SamMed3DEngine("cpu")
    engine.network = StandInNetwork(None if spread else 6.0)
    session = InProcessSession(engine, array, spacing, "CT")
    session.image.ijk_to_ras = ijk_to_ras
    first, refinements = organ_points(labels, 1, spacing, clicks, np.random.default_rng(0))
    session.prompt(Prompt(kind="point", point_kji=tuple(float(v) for v in first)))
    times = []
    for point, positive in refinements:
        result = session.prompt(Prompt(kind="point", positive=positive, point_kji=tuple(float(v) for v in point)))
        t = result.timings_ms
        times.append(t["total"] - t["encoder"] - t["decoder"])
    crops = len(session.cache["sam_med3d"].embeddings)
    return {"crops": crops, "pipeline_ms": summary(times)}


def pipeline_ms(row: dict) -> float:
    t = row["timings_ms"]
    return t["engine.total"] - t.get("engine.encoder", 0.0) - t.get("engine.decoder", 0.0)


COLUMNS = ("roundtrip", "server", "engine", "engine.total", "engine.encoder", "engine.decoder",
           "pipeline", "server-engine", "http", "roundtrip-engine")


def column(rows: Sequence[dict], name: str) -> List[float]:
    """One figure of each click row (see :data:`COLUMNS`)."""
    if name == "roundtrip":
        return [r["roundtrip_ms"] for r in rows]
    if name == "pipeline":
        return [pipeline_ms(r) for r in rows]
    if name == "server-engine":
        return [r["timings_ms"]["server"] - r["timings_ms"]["engine"] for r in rows]
    if name == "http":
        return [r["roundtrip_ms"] - r["timings_ms"]["server"] for r in rows]
    if name == "roundtrip-engine":  # the protocol's overhead beside the engine's time
        return [r["roundtrip_ms"] - r["timings_ms"]["engine"] for r in rows]
    return [r["timings_ms"].get(name, 0.0) for r in rows]


def groups(rows: Sequence[dict]) -> Dict[str, List[dict]]:
    """The click rows by kind; refinements split by whether they ran an encoder pass."""
    def encoded(r):
        return r["timings_ms"].get("engine.encoder", 0.0) > 0

    return {
        "load+first": [r for r in rows if r["kind"] == "load+first"],
        "first": [r for r in rows if r["kind"] == "first"],
        "refine": [r for r in rows if r["kind"] == "refine" and not encoded(r)],
        "refine+encoder": [r for r in rows if r["kind"] == "refine" and encoded(r)],
        "far": [r for r in rows if r["kind"] == "far"],
    }


def group_table(rows: Sequence[dict]) -> Dict[str, Dict[str, dict]]:
    """group -> column -> summary, for the groups that have clicks."""
    return {name: {c: summary(column(members, c)) for c in COLUMNS}
            for name, members in groups(rows).items() if members}


def refinement_ratio(rows: Sequence[dict]) -> dict:
    """Round trip / decoder time of the refinement clicks that ran no encoder (goal <= 2)."""
    refine = [r for r in groups(rows)["refine"] if r["timings_ms"].get("engine.decoder", 0.0) > 0]
    return summary([r["roundtrip_ms"] / r["timings_ms"]["engine.decoder"] for r in refine])


def measure(runs: Sequence[str] = ("default", "empty", "simulated", "model", "pipeline"), refinements: int = 6,
            organs: Sequence[int] = (1, 5), simulated_clicks: int = 8, device: str = "cpu", log=print) -> dict:
    """The ``runs`` of the module docstring; per run its click groups and refinement ratio."""
    import torch

    figures: dict = {"device": device, "torch": torch.__version__, "threads": torch.get_num_threads(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="sam-bench-") as folder:
        for run in runs:
            log(f"  sam-med3d run {run!r}")
            if run == "model":
                figures["runs"][run] = model_only(device=device)
                continue
            if run == "pipeline":
                figures["runs"][run] = {"one_crop": pipeline_only(), "eight_crops": pipeline_only(spread=True)}
                continue
            checkpoint = make_checkpoint(Path(folder), empty_masks=(run == "empty"))
            if run == "simulated":
                out = simulated_user_run(checkpoint, simulated_clicks, device=device)
            else:
                out = server_run(checkpoint, organs, refinements, organs[-1] if len(organs) > 1 else None,
                                 device, log)
            out["groups"] = group_table(out["clicks"])
            out["refinement_ratio"] = refinement_ratio(out["clicks"])
            figures["runs"][run] = out
            os.unlink(checkpoint)
    figures["summary"] = headline(figures)
    return figures


def headline(figures: dict) -> Dict[str, Optional[float]]:
    """Refinement round trip and its ratio to the decoder per run; encoder and decoder alone."""
    out: Dict[str, Optional[float]] = {}
    for run, data in figures["runs"].items():
        if run == "model":
            out["model_encoder_ms"] = data["encoder_ms"]
            out["model_decoder_ms"] = data["decoder_ms"]["median"]
            continue
        if run == "pipeline":
            out.update({f"pipeline_{k}_ms": v["pipeline_ms"]["median"] for k, v in data.items()})
            continue
        refine = data["groups"].get("refine")
        if refine:
            out[f"{run}_refine_roundtrip_ms"] = refine["roundtrip"]["median"]
            out[f"{run}_refine_pipeline_ms"] = refine["pipeline"]["median"]
        out[f"{run}_refine_ratio"] = data["refinement_ratio"]["median"]
    return out


def print_figures(figures: dict) -> None:
    """The tables of ``benchmarks/sam_med3d_latency.py``."""
    print(f"torch {figures['torch']}, {figures['threads']} threads, device {figures['device']}; RANDOM weights: "
          "only timings count")
    for run, data in figures["runs"].items():
        if run == "pipeline":
            for row in data.values():
                p = row["pipeline_ms"]
                print(f"\n[pipeline] stand-in network, {row['crops']} crop(s): upsample + paste per refinement click "
                      f"median {p['median']:.1f} ms [{p['min']:.1f} - {p['max']:.1f}] over {p['n']} clicks")
            continue
        if run == "model":
            d = data["decoder_ms"]
            print(f"\n[{run}] crop resample + z-normalise {data['prepare_ms']:.1f} ms; image encoder (one 128³ crop) "
                  f"{data['encoder_ms']:.1f} ms; decoder median {d['median']:.1f} ms [{d['min']:.1f} - {d['max']:.1f}] "
                  f"over {d['n']} passes ({data['precision']})")
            continue
        print(f"\n[{run}] stages in ms, median [min-max] over the clicks of each group "
              "(pipeline = engine.total - encoder - decoder; http = round trip - server):")
        for group, table in data["groups"].items():
            print(f"  {group}: {table['roundtrip']['n']} click(s)")
            for name, s in table.items():
                print(f"    {name:<16} {s['median']:10.1f}   [{s['min']:.1f} - {s['max']:.1f}]")
        ratio = data["refinement_ratio"]
        if ratio["n"]:
            print(f"  refinement round trip / engine.decoder: median {ratio['median']:.2f} "
                  f"[{ratio['min']:.2f} - {ratio['max']:.2f}] over {ratio['n']} clicks (goal: <= 2)")
        for when, status in data.get("memory", {}).items():
            print(f"  server {when:<18} VmHWM {status['VmHWM'] / 1e6:8.1f} MB  VmRSS {status['VmRSS'] / 1e6:8.1f} MB  "
                  f"threads {status.get('Threads')}")
