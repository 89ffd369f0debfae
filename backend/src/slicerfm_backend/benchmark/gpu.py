"""The GPU suite's measurements (``benchmarks/gpu_suite.sh`` runs this module).

    python -m slicerfm_backend.benchmark.gpu [--device cuda] [--tiny] [--out gpu.json] [--parts a,b]

Random weights throughout (the released ones cannot be downloaded here): times and memory
are real, masks are not. Parts, each timed and failing on its own (a failed part is
recorded with its error; the others still run):

* ``sam_med3d_precisions`` -- SAM-Med3D in-process, one crop of the sample CT: image encoder
  and decoder at fp32, bf16 and fp16, with peak GPU memory;
* ``sam_med3d_server`` -- SAM-Med3D through a real server on the device: first click
  (engine load + encoder + decoder), refinement clicks (decoder, pipeline, protocol overhead
  = round trip - engine), with 8 crops (random weights as they are) and with one crop (the
  simulated user, ``max_crops=1``): refinement round trip against the decoder;
* ``protocol`` -- the negligible ``bench_ball`` engine through a real server: the protocol's
  own cost per click on this machine;
* ``vista3d`` -- one 128³ window (1 and 117 classes) and the sample CT "everything", with
  peak GPU memory;
* ``unigradicon`` -- brain_pair at 175³ without and with 10 instance-optimisation steps,
  peak GPU memory (published: 3.4 GB and 11.4 GB);
* ``medsam`` -- MedSAM per slice (encoder, decoder) and a 40-slice propagation.

``--tiny`` sizes everything down for a dry run on the CPU (``--device cpu``): every part's
code runs, quickly (VISTA3D with a stand-in network, uniGradICON at 66³ with 1 IO step).
The result is one benchmark section (``{"measured", "figures"}``) that
``slicerfm-backend benchmark --gpu-results gpu.json`` puts in the report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Dict

PARTS = ("sam_med3d_precisions", "sam_med3d_server", "protocol", "vista3d", "unigradicon", "medsam")


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def sam_precisions(device: str, tiny: bool, log) -> dict:
    import torch

    from ..engines.sam_med3d.model import SamMed3DNetwork, build_network
    from .sam_med3d import model_only

    torch.manual_seed(0)
    model = build_network()
    precisions = ("fp32",) if device == "cpu" else ("fp32", "bf16", "fp16")
    out = {}
    for precision in precisions:
        _peak_reset(device)
        network = SamMed3DNetwork(model, device, precision)
        row = model_only(decodes=3 if tiny else 10, network=network)
        out[precision] = {"encoder_ms": row["encoder_ms"], "decoder_median_ms": row["decoder_ms"]["median"],
                          "prepare_ms": row["prepare_ms"], "gpu_peak_bytes": row.get("gpu_peak_bytes")}
        log(f"  sam-med3d {precision}: encoder {row['encoder_ms']:.1f} ms, "
            f"decoder {row['decoder_ms']['median']:.1f} ms")
    return {"precisions": out}


def sam_server(device: str, tiny: bool, log) -> dict:
    import tempfile

    from . import sam_med3d

    out = {}
    with tempfile.TemporaryDirectory(prefix="sam-gpu-") as folder:
        checkpoint = sam_med3d.make_checkpoint(Path(folder), empty_masks=tiny)
        runs = {"eight_crops": lambda: sam_med3d.server_run(checkpoint, (1,), 2 if tiny else 6, None, device, log)}
        if not tiny:
            runs["one_crop"] = lambda: sam_med3d.simulated_user_run(checkpoint, 8, 1, device)
        for name, run in runs.items():
            data = run()
            out[name] = {"groups": sam_med3d.group_table(data["clicks"]),
                         "refinement_ratio": sam_med3d.refinement_ratio(data["clicks"]), "clicks": data["clicks"]}
    # The report's headline row: the 8-crop run (bf16 is the engine's default on CUDA).
    return {**out["eight_crops"], "runs": out}


def protocol_part(device: str, tiny: bool, log) -> dict:
    from . import protocol

    shape = (60, 256, 256) if tiny else (300, 512, 512)
    return protocol.measure(10 if tiny else 30, 0, shape=shape, log=log)


def vista3d_part(device: str, tiny: bool, log) -> dict:
    from . import vista3d

    if tiny:  # the plumbing only: a stand-in network on one small synthetic CT
        row = vista3d.memory_one((96, 96, 64), (1.5, 1.5, 1.5), 1024)
        return {"stand_in": row, "window_s": {}, "precision": "stand-in"}
    return vista3d.network_run("abdomen_ct/example_ct.nii.gz", device=device, log=log)


def unigradicon_part(device: str, tiny: bool, log) -> dict:
    from .registration import gradicon_run

    if tiny:
        return gradicon_run(66, (0, 1), 1, device, log=log)
    return gradicon_run(175, (0, 10), 1, device, log=log)


def medsam_part(device: str, tiny: bool, log) -> dict:
    """MedSAM per slice (ViT-B at 1024², bf16 on CUDA) in-process, and a propagation through
    a real server (40 slices; 4 when tiny)."""
    from . import medsam

    return medsam.measure(slices=4 if tiny else 40, repeat=2 if tiny else 10, device=device, log=log)


RUNNERS: Dict[str, Callable] = {"sam_med3d_precisions": sam_precisions, "sam_med3d_server": sam_server,
                                "protocol": protocol_part, "vista3d": vista3d_part,
                                "unigradicon": unigradicon_part, "medsam": medsam_part}


def peak_memory(figures: dict) -> Dict[str, int]:
    """A short table of peak GPU memory per model and run, for the report."""
    out = {}
    for precision, row in figures.get("sam_med3d", {}).get("precisions", {}).items():
        out[f"SAM-Med3D encoder+decoder ({precision})"] = row.get("gpu_peak_bytes")
    vista = figures.get("vista3d", {})
    for classes, value in (vista.get("window_gpu_peak_bytes") or {}).items():
        out[f"VISTA3D one window, {classes} class(es)"] = value
    if vista.get("whole", {}).get("gpu_peak_bytes"):
        out["VISTA3D sample CT everything"] = vista["whole"]["gpu_peak_bytes"]
    for steps, runs in figures.get("unigradicon", {}).get("runs", {}).items():
        out[f"uniGradICON {figures['unigradicon']['shape'][0]}³, IO {steps}"] = runs[0].get("gpu_peak_bytes")
    if figures.get("medsam", {}).get("model", {}).get("gpu_peak_bytes"):
        out["MedSAM one slice"] = figures["medsam"]["model"]["gpu_peak_bytes"]
    return {k: v for k, v in out.items() if v}


def run(device: str, tiny: bool, parts, log=print, save: Callable[[dict], None] = lambda section: None) -> dict:
    """Every part in ``parts``: the section document (``measured`` + ``figures``), also
    given to ``save`` after each part (a time limit then keeps what was measured)."""
    import torch

    from .common import load_average, now_iso
    from .machine import describe

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: CUDA is not available to torch here; use --device cpu --tiny for a dry run")
    started, load, t0, machine = now_iso(), load_average(), time.perf_counter(), describe()
    figures: dict = {"device": device, "tiny": tiny, "torch": torch.__version__, "cuda": torch.version.cuda,
                     "device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU (dry run)",
                     "seconds": {}, "failed": {}, "skipped": {}}
    keys = {"sam_med3d_precisions": "sam_med3d", "sam_med3d_server": "sam_med3d"}
    for part in parts:
        log(f"[{part}]")
        start = time.perf_counter()
        try:
            value = RUNNERS[part](device, tiny, log)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - one failed part must not lose the others
            figures["failed"][part] = f"{type(error).__name__}: {error}"
            log(f"[{part}] FAILED: {figures['failed'][part]}\n{traceback.format_exc(limit=5)}")
        else:
            _store(figures, part, value, keys)
            log(f"[{part}] done in {time.perf_counter() - start:.0f} s")
        figures["seconds"][part] = round(time.perf_counter() - start, 1)
        save(_section(figures, started, load, t0, tiny, machine))
    return _section(figures, started, load, t0, tiny, machine)


def _store(figures: dict, part: str, value: dict, keys: Dict[str, str]) -> None:
    """A part's result into the figures (the two SAM-Med3D parts share one entry)."""
    if isinstance(value, dict) and "skipped" in value:
        figures["skipped"][part] = value["skipped"]
    elif part == "sam_med3d_server":
        figures.setdefault(keys[part], {})["server"] = value
    elif part == "sam_med3d_precisions":
        figures.setdefault(keys[part], {}).update(value)
    else:
        figures[part] = value


def _section(figures: dict, started: str, load: float, t0: float, tiny: bool, machine: dict) -> dict:
    from .common import load_average, rounded

    figures["peak_gpu_bytes"] = peak_memory(figures)
    figures["summary"] = {f"seconds_{k}": v for k, v in figures["seconds"].items()}
    figures["summary"].update({f"peak_gpu_bytes {k}": v for k, v in figures["peak_gpu_bytes"].items()})
    return rounded({"measured": {"date": started, "seconds": round(time.perf_counter() - t0, 1), "load_before": load,
                                 "load_after": load_average(), "quick": tiny, "machine": machine},
                    "figures": figures})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="sized down: a dry run of every part on the CPU")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated among " + ", ".join(PARTS))
    parser.add_argument("--out", default="gpu.json")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in RUNNERS]
    if unknown:
        print(f"error: unknown part(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(section: dict) -> None:
        out.write_text(json.dumps(section, indent=1) + "\n")

    section = run(args.device, args.tiny, parts, log=lambda line: print(line, flush=True), save=save)
    save(section)
    failed = section["figures"]["failed"]
    print(f"wrote {args.out} in {section['measured']['seconds']:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
