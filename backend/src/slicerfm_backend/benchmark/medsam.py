"""MedSAM (``medsam``): per-slice encoder and decoder time, a propagation through a real
server and the client, cache bytes per slice, response bytes.

The network is segment-anything's ViT-B at the released 1024-pixel input, built with RANDOM
weights (``torch.manual_seed(0)``) and saved as MedSAM ships ``medsam_vit_b.pth`` (a plain
state dict); random weights do the same compute as the real ones. A random network's masks
are arbitrary, and propagation stops as soon as a mask vanishes or jumps, so with
``full_masks`` the saved checkpoint makes every mask the whole slice (the last layer of the
mask decoder's upscaling and of its output hypernetworks set to weight 0, bias 1, so every
logit is positive); propagation then runs exactly the slices asked for.

* :func:`model_only` -- in this process: MedSAM's and SAM's preprocessing of a 512 x 512
  slice, encoder passes per slice, prompt encoder + mask decoder + mask output per slice, the
  embedding cache's bytes per slice.
* :func:`server_run` -- a REAL server: the sample CT uploaded, a slice box on the liver's
  largest axial slice (round trip, engine stages, response bytes), the propagation job
  followed to its end (``slices`` / 2 per direction: wall time per slice, the job's encoder
  and decoder totals, response bytes against the reference liver's), a click on the same
  slice (the cached embedding: decoder only), the server's peak memory.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Dict

import numpy as np

from .common import proc_status, summary

IMAGE = "abdomen_ct/example_ct.nii.gz"
LABELS = "abdomen_ct/example_seg_fast_force_split.nii.gz"
LIVER = 5
ENGINE = "medsam"


def make_checkpoint(folder: Path, full_masks: bool) -> Path:
    """Random-weights ViT-B saved as ``medsam_vit_b.pth``; ``full_masks``: every logit > 0."""
    import torch

    from ..engines.slicewise.sam_network import build

    torch.manual_seed(0)
    model = build("vit_b")
    if full_masks:
        with torch.no_grad():
            last = model.mask_decoder.output_upscaling[3]
            last.weight.zero_()
            last.bias.fill_(1.0)
            for mlp in model.mask_decoder.output_hypernetworks_mlps:
                mlp.layers[-1].weight.zero_()
                mlp.layers[-1].bias.fill_(1.0)
    path = Path(folder) / "medsam_vit_b.pth"
    torch.save(model.state_dict(), path)
    return path


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def model_only(repeat: int = 3, device: str = "cpu", decodes: int = 10) -> dict:
    """Per-slice preprocessing, encoder and decoder times (ms) in this process."""
    import torch

    from ..engines.medsam.model import MedSamNetwork
    from ..engines.sam.model import SamSliceNetwork
    from ..engine_core.lru import nbytes
    from ..engines.slicewise.frame import Frame
    from ..engines.slicewise.sam_network import build

    torch.manual_seed(0)
    model = build("vit_b")
    precision = "bf16" if torch.device(device).type == "cuda" else "fp32"
    medsam, sam = MedSamNetwork(model, device, precision), SamSliceNetwork(model, device, precision)
    pixels = np.random.default_rng(0).integers(0, 256, (512, 512)).astype(np.uint8)
    out: dict = {"device": device, "precision": precision, "threads": torch.get_num_threads(), "prepare_ms": {}}
    for name, net in (("medsam", medsam), ("sam", sam)):
        start = time.perf_counter()
        for _ in range(5):
            net.prepare(pixels, (0.8, 0.8))
        out["prepare_ms"][name] = 1000 * (time.perf_counter() - start) / 5
    prepared, frame = medsam.prepare(pixels, (0.8, 0.8))
    if torch.device(device).type == "cuda":
        medsam.encode([prepared])  # warm-up
        torch.cuda.reset_peak_memory_stats()
    encoder = []
    for _ in range(repeat):
        start = time.perf_counter()
        (embedding,) = medsam.encode([prepared])
        _sync(device)
        encoder.append(1000 * (time.perf_counter() - start))
    box = frame.box((150, 180, 330, 360))
    decoder = []
    for _ in range(decodes):
        start = time.perf_counter()
        medsam.to_mask(medsam.decode_logits(embedding, box, None, None), frame)
        decoder.append(1000 * (time.perf_counter() - start))
    out.update({"encoder_ms": summary(encoder), "decoder_ms": summary(decoder),
                "embedding_bytes": nbytes((embedding, Frame((512, 512), (1024, 1024), 1024))),
                "embedding_shape": list(embedding.shape), "embedding_dtype": str(embedding.dtype)})
    if torch.device(device).type == "cuda":
        out["gpu_peak_bytes"] = int(torch.cuda.max_memory_allocated())
    return out


def liver_slab_bytes(labels: np.ndarray, first: int, last: int, start: int) -> int:
    """Wire bytes of a mask update holding the reference liver on slices first..last
    (without the start slice), inside its box: what a working model's propagation sends."""
    from slicerfm_client import wire

    liver = labels == LIVER
    liver[start] = False
    slab = liver[first:last + 1]
    jj, ii = np.nonzero(slab.any(axis=0))
    part = slab[:, jj.min():jj.max() + 1, ii.min():ii.max() + 1]
    return len(wire.encode(part.astype(np.uint8), {"segment": "liver", "bbox_kji": [[0, 0, 0], list(part.shape)]}))


def _update_row(update) -> dict:
    t = update.timings_ms
    return {"roundtrip_ms": update.roundtrip_ms, "server_ms": t.get("server"), "response_bytes": update.wire_bytes,
            **{k: v for k, v in t.items() if k.startswith("engine")}}


def server_run(slices: int = 40, full_masks: bool = True, device: str = "cpu", log=print) -> dict:
    """The slice box, its propagation and a click on the same slice through a real server."""
    from slicerfm_client.client import SlicerFMClient

    from ..evaluation.evaluate import load_case
    from ..imaging import read_image
    from .common import data_file
    from .servers import start_backend

    array, ijk_to_ras, _, _ = load_case(str(data_file(IMAGE)), str(data_file(LABELS)), 1)
    labels = read_image(str(data_file(LABELS)))[0]
    areas = (labels == LIVER).sum(axis=(1, 2))
    largest = int(np.argmax(areas))
    half = slices // 2
    start = int(np.clip(largest, half, array.shape[0] - 1 - half))  # room for half each way
    jj, ii = np.nonzero(labels[start if areas[start] else largest] == LIVER)
    out: dict = {"slices": slices, "full_masks": full_masks, "start_slice": start}
    with tempfile.TemporaryDirectory(prefix="medsam-bench-") as folder:
        checkpoint = make_checkpoint(Path(folder), full_masks)
        backend = start_backend([ENGINE], "medsam", device=device,
                                env={"SLICERFM_CHECKPOINTS": f"{ENGINE}={checkpoint}"})
        try:
            with SlicerFMClient(backend.url, timeout_s=1800) as client:
                client.connect("benchmark medsam")
                client.set_image(array, ijk_to_ras, "CT")
                first = client.add_slice_box("liver", 0, start, (int(jj.min()), int(ii.min())),
                                             (int(jj.max()), int(ii.max())), engine=ENGINE, max_slices=half)
                out["box"] = _update_row(first)
                t0 = time.perf_counter()
                done = client.wait_propagation(first, poll_s=0.1)
                wall = time.perf_counter() - t0
                result = done.propagation["result"]
                computed = result["slices_computed"]
                out["propagation"] = {
                    "slices_computed": computed, "stopped": result["stopped"], "wall_s": wall,
                    "per_slice_s": wall / max(computed, 1), "timings_ms": result["timings_ms"],
                    "response_bytes": done.wire_bytes,
                    "reference_liver_bytes": liver_slab_bytes(labels, done.bbox[0][0], done.bbox[1][0] - 1, start)}
                refine = client.add_slice_point("liver", 0, start, float(np.median(jj)), float(np.median(ii)),
                                                engine=ENGINE, propagate=False)
                out["click"] = _update_row(refine)
                out["server_peak_bytes"] = proc_status(backend.process.pid)["VmHWM"]
        finally:
            backend.stop()
    log(f"  medsam: {out['propagation']['slices_computed']} slices in {out['propagation']['wall_s']:.1f} s")
    return out


def measure(model: bool = True, server: bool = True, slices: int = 40, repeat: int = 3, device: str = "cpu",
            log=print) -> dict:
    figures: dict = {}
    if model:
        figures["model"] = model_only(repeat, device)
    if server:
        figures["server"] = server_run(slices, True, device, log)
    figures["summary"] = headline(figures)
    return figures


def headline(figures: dict) -> Dict[str, float]:
    out: Dict[str, float] = {}
    model = figures.get("model")
    if model:
        out["encoder_ms"] = model["encoder_ms"]["median"]
        out["decoder_ms"] = model["decoder_ms"]["median"]
    server = figures.get("server")
    if server:
        out["propagation_per_slice_s"] = server["propagation"]["per_slice_s"]
        out["click_roundtrip_ms"] = server["click"]["roundtrip_ms"]
    return out


def print_figures(figures: dict) -> None:
    """The text of ``benchmarks/medsam_latency.py``."""
    model = figures.get("model")
    if model:
        print(f"device {model['device']} ({model['precision']}), torch threads {model['threads']}; RANDOM weights")
        for name, ms in model["prepare_ms"].items():
            print(f"{name} preprocessing of a 512 x 512 slice: {ms:.1f} ms")
        e, d = model["encoder_ms"], model["decoder_ms"]
        print(f"image encoder (ViT-B, 1024 x 1024): median {e['median']:.0f} ms per slice over {e['n']}")
        print(f"prompt encoder + mask decoder + mask output (512 x 512): median {d['median']:.1f} ms "
              f"(min {d['min']:.1f}, max {d['max']:.1f})")
        print(f"embedding cache per slice: {model['embedding_bytes'] / (1 << 20):.2f} MiB "
              f"({tuple(model['embedding_shape'])} {model['embedding_dtype']})")
    server = figures.get("server")
    if server:
        for what, key in (("slice box (engine load + encoder + decoder)", "box"),
                          ("click on the same slice (cached embedding)", "click")):
            row = server[key]
            print(f"{what}: round trip {row['roundtrip_ms']:.0f} ms, "
                  f"engine.encoder {row.get('engine.encoder', 0):.0f}, "
                  f"engine.decoder {row.get('engine.decoder', 0):.0f} ms; response {row['response_bytes']} bytes")
        p = server["propagation"]
        print(f"propagation: {p['slices_computed']} slices computed, stopped {p['stopped']}, wall {p['wall_s']:.1f} s "
              f"({p['per_slice_s']:.2f} s per slice); response {p['response_bytes']} bytes (whole-slice masks), "
              f"the reference liver over the same slices {p['reference_liver_bytes']} bytes")
        print(f"server peak memory (VmHWM): {server['server_peak_bytes'] / (1 << 20):.0f} MiB")
