"""MedSAM (``medsam``) on this machine: per-slice encoder and decoder time, a 40-slice
propagation through a real server and the client, cache bytes per slice, response bytes.

The network is segment-anything's ViT-B at the released 1024-pixel input, built with RANDOM
weights (``torch.manual_seed(0)``) and saved as MedSAM ships ``medsam_vit_b.pth`` (a plain
state dict); random weights do the same compute as the real ones. A random network's masks
are arbitrary, and propagation stops as soon as a mask vanishes or jumps, so the saved
checkpoint makes every mask the whole slice (``--full-masks``, on by default: the last
layer of the mask decoder's upscaling and of its output hypernetworks set to weight 0,
bias 1, so every logit is positive); propagation then runs exactly ``--slices`` slices.

Default run (a REAL backend process, ``LocalBackend(..., engines=["medsam"], device="cpu")``):
the sample CT ``abdomen_ct/example_ct.nii.gz`` (``$SLICERFM_DATA``, else ``../shared/data``)
is uploaded; a slice box on the liver's largest axial slice is sent (round trip, the
engine's stages from ``Server-Timing``, response bytes), then a click on the same slice
(the cached embedding: decoder only), then the propagation job is followed to its end with
``--slices`` / 2 slices per direction (wall time, per slice, the job's own encoder and
decoder totals, response bytes, the server's peak memory). Because the masks are whole
slices, their response bytes are also given for the reference liver label over the same
slices (what a working model would answer), encoded the same way.

``--model-only`` times the network in this process (no server): MedSAM's and SAM's
preprocessing of a 512 x 512 slice, one encoder pass per slice (``--repeat`` times), the
prompt encoder + mask decoder + mask output per slice, and the embedding cache's bytes per
slice.

Run::

    .venv/bin/python benchmarks/medsam_latency.py --model-only   # ~1 min on 2 idle CPU cores
    .venv/bin/python benchmarks/medsam_latency.py                # ~6 min on 2 idle CPU cores
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_common import DATA, proc_status, require_data

IMAGE = "abdomen_ct/example_ct.nii.gz"
LABELS = "abdomen_ct/example_seg_fast_force_split.nii.gz"
LIVER = 5
ENGINE = "medsam"


def make_checkpoint(folder: Path, full_masks: bool) -> Path:
    """Random-weights ViT-B saved as ``medsam_vit_b.pth``; ``full_masks``: every logit > 0."""
    import torch

    from slicerfm_backend.engines.slicewise.sam_network import build

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
    path = folder / "medsam_vit_b.pth"
    torch.save(model.state_dict(), path)
    return path


def machine() -> str:
    import torch

    return (f"python {sys.version.split()[0]}, torch {torch.__version__}, usable CPUs "
            f"{len(os.sched_getaffinity(0))}, torch threads {torch.get_num_threads()}, "
            f"load average {os.getloadavg()[0]:.2f}")


def model_only(repeat: int) -> int:
    import torch

    from slicerfm_backend.engines.medsam.model import MedSamNetwork
    from slicerfm_backend.engines.sam.model import SamSliceNetwork
    from slicerfm_backend.engines.slicewise.sam_network import build
    from slicerfm_backend.engines.slicewise.frame import Frame

    print(machine())
    torch.manual_seed(0)
    model = build("vit_b")
    medsam, sam = MedSamNetwork(model), SamSliceNetwork(model)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (512, 512)).astype(np.uint8)
    for name, net in (("MedSAM", medsam), ("SAM", sam)):
        t = time.perf_counter()
        for _ in range(5):
            net.prepare(pixels, (0.8, 0.8))
        print(f"{name} preprocessing of a 512 x 512 slice: {(time.perf_counter() - t) / 5 * 1000:.1f} ms")
    prepared, frame = medsam.prepare(pixels, (0.8, 0.8))
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        (embedding,) = medsam.encode([prepared])
        times.append(time.perf_counter() - t)
    print(f"image encoder (ViT-B, 1024 x 1024): {', '.join(f'{v:.2f}' for v in times)} s per slice")
    box = frame.box((150, 180, 330, 360))
    decode = []
    for _ in range(10):
        t = time.perf_counter()
        medsam.to_mask(medsam.decode_logits(embedding, box, None, None), frame)
        decode.append(time.perf_counter() - t)
    print(f"prompt encoder + mask decoder + mask output (512 x 512): median {np.median(decode) * 1000:.1f} ms "
          f"(min {min(decode) * 1000:.1f}, max {max(decode) * 1000:.1f})")
    entry = (embedding, Frame((512, 512), (1024, 1024), 1024))
    from slicerfm_backend.engines.sam_med3d.cache import nbytes

    print(f"embedding cache per slice: {nbytes(entry) / (1 << 20):.2f} MiB "
          f"({tuple(embedding.shape)} {embedding.dtype}; bf16 on CUDA halves it)")
    return 0


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-only", action="store_true", help="time the network in this process")
    parser.add_argument("--repeat", type=int, default=3, help="encoder passes with --model-only")
    parser.add_argument("--slices", type=int, default=40, help="slices to propagate (half per direction)")
    parser.add_argument("--no-full-masks", dest="full_masks", action="store_false",
                        help="keep the random decoder (propagation then stops wherever its masks do)")
    args = parser.parse_args(argv)
    if args.model_only:
        return model_only(args.repeat)

    from slicerfm_backend.evaluation.evaluate import load_case
    from slicerfm_backend.imaging import read_image
    from slicerfm_client.client import SlicerFMClient
    from slicerfm_client.launcher import LocalBackend, default_command

    require_data()
    array, ijk_to_ras, _, _ = load_case(str(DATA / IMAGE), str(DATA / LABELS), 1)
    labels = read_image(str(DATA / LABELS))[0]
    areas = (labels == LIVER).sum(axis=(1, 2))
    largest = int(np.argmax(areas))
    half = args.slices // 2
    start = int(np.clip(largest, half, array.shape[0] - 1 - half))  # room for half each way
    jj, ii = np.nonzero(labels[start if areas[start] else largest] == LIVER)
    print(machine())
    print(f"image {IMAGE}: {array.shape} {array.dtype}; slice box on axial slice k={start} around the liver "
          f"(its largest slice is k={largest})")
    print("WEIGHTS ARE RANDOM" + (" and every mask is the whole slice (--full-masks)" if args.full_masks else ""))
    with tempfile.TemporaryDirectory(prefix="medsam-bench-") as folder:
        checkpoint = make_checkpoint(Path(folder), args.full_masks)
        env = dict(os.environ, SLICERFM_CHECKPOINTS=f"{ENGINE}={checkpoint}")
        log_path = os.path.join(tempfile.gettempdir(), f"slicerfm-medsam-bench-{os.getpid()}.log")
        backend = LocalBackend(default_command(), engines=[ENGINE], device="cpu", env=env,
                               log_path=log_path, startup_timeout_s=120.0)
        backend.start()
        try:
            client = SlicerFMClient(backend.url, timeout_s=1800)
            client.connect("medsam_latency")
            client.set_image(array, ijk_to_ras, "CT")
            first = client.add_slice_box("liver", 0, start, (int(jj.min()), int(ii.min())),
                                         (int(jj.max()), int(ii.max())), engine=ENGINE, max_slices=half)
            report("slice box (engine load + encoder + decoder)", first)
            t0 = time.perf_counter()
            shown = {"done": 0}

            def show(status):
                if status["done"] != shown["done"]:
                    shown["done"] = status["done"]
                    print(f"  propagating: {status['done']}/{status['total']} slices, "
                          f"{time.perf_counter() - t0:.1f} s, load {os.getloadavg()[0]:.1f}", flush=True)

            done = client.wait_propagation(first, on_progress=show, poll_s=0.1)
            wall = time.perf_counter() - t0
            result = done.propagation["result"]
            refine = client.add_slice_point("liver", 0, start, float(np.median(jj)), float(np.median(ii)),
                                            engine=ENGINE, propagate=False)
            report("click on the same slice (cached embedding)", refine)
            computed = result["slices_computed"]
            timings = result["timings_ms"]
            print(f"propagation: {computed} slices computed, stopped {result['stopped']}, wall {wall:.1f} s "
                  f"({wall / max(computed, 1):.2f} s per slice); job encoder {timings.get('encoder', 0) / 1000:.1f} s, "
                  f"decoder {timings.get('decoder', 0) / 1000:.1f} s, "
                  f"preprocess {timings.get('preprocess', 0) / 1000:.1f} s")
            print(f"propagation response: {done.wire_bytes} bytes for bbox {done.bbox} (whole-slice masks); the "
                  f"reference liver over the same slices would be "
                  f"{liver_slab_bytes(labels, done.bbox[0][0], done.bbox[1][0] - 1, start)} bytes")
            peak = proc_status(backend.process.pid)["VmHWM"]
            print(f"server peak memory (VmHWM): {peak / (1 << 20):.0f} MiB")
            client.close()
        finally:
            backend.stop()
    return 0


def report(what: str, update) -> None:
    t = update.timings_ms
    print(f"{what}: round trip {update.roundtrip_ms:.0f} ms, engine.preprocess {t.get('engine.preprocess', 0):.0f}, "
          f"engine.encoder {t.get('engine.encoder', 0):.0f}, engine.decoder {t.get('engine.decoder', 0):.0f}, "
          f"server {t.get('server', 0):.0f} ms; response {update.wire_bytes} bytes, changed box {update.bbox}")


if __name__ == "__main__":
    raise SystemExit(main())
