"""Registration figures on ``brain_pair``: subject A (moving) onto subject B (fixed), T1 brain
MRI, skull-stripped, affinely pre-aligned, 160 x 192 x 224 at 1 mm.

* :func:`brain_pair` -- ``slicerfm-backend evaluate-registration`` in this process (the
  command's own code): mean Dice over the 30 ``voxelmorph_eval_labels`` before and after,
  Dice per label, folding (negative-Jacobian fraction), runtime, CPU time, stages, peak RSS.
  ``shrink`` > 1 runs on images downsampled by that factor (the quick benchmark).
* :func:`gradicon_run` -- the uniGradICON engine with RANDOM weights (the package's network,
  every U-Net's last layer N(0, 1e-3), seed 0, saved in the released layout and loaded through
  the engine's checkpoint path): network time against total time, peak memory (RSS; GPU on
  CUDA). Only times and memory are figures: the field is meaningless.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

FIXED = ("subjB_l2r_T1norm.nii.gz", "subjB_l2r_aseg.nii.gz")
MOVING = ("subjA_vxm_T1norm.nii.gz", "subjA_vxm_aseg.nii.gz")


def _shrunk(files: Dict[str, Path], factor: int, folder: Path) -> Dict[str, Path]:
    """The pair's files downsampled by ``factor`` (linear for images, nearest for labels)."""
    import SimpleITK as sitk

    out = {}
    for role, path in files.items():
        image = sitk.ReadImage(str(path))
        size = [max(1, n // factor) for n in image.GetSize()]
        spacing = [s * n / m for s, n, m in zip(image.GetSpacing(), image.GetSize(), size)]
        labels = role.endswith("labels")
        small = sitk.Resample(image, size, sitk.Transform(), sitk.sitkNearestNeighbor if labels else sitk.sitkLinear,
                              image.GetOrigin(), spacing, image.GetDirection(), 0, image.GetPixelID())
        out[role] = folder / path.name
        sitk.WriteImage(small, str(out[role]))
    return out


def brain_pair(engine: str = "classic", io_steps: Optional[int] = None, affine: bool = False,
               checkpoints: Sequence[str] = (), shrink: int = 1, server: Optional[str] = None) -> dict:
    """The ``evaluate-registration`` report of the pair plus wall/CPU time and peak RSS."""
    from ..registration import cli as registration_cli
    from .common import data_file, load_average

    folder = data_file("brain_pair")
    labels = json.loads((folder / "labels.json").read_text())
    files = {"fixed": folder / FIXED[0], "fixed_labels": folder / FIXED[1],
             "moving": folder / MOVING[0], "moving_labels": folder / MOVING[1]}
    with tempfile.TemporaryDirectory(prefix="slicerfm-reg-") as temp:
        if shrink > 1:
            files = _shrunk(files, shrink, Path(temp))
        out = Path(temp) / "report.json"
        argv = ["evaluate-registration", "--engine", engine, "--fixed", str(files["fixed"]),
                "--moving", str(files["moving"]), "--fixed-labels", str(files["fixed_labels"]),
                "--moving-labels", str(files["moving_labels"]), "--fixed-modality", "MR", "--moving-modality", "MR",
                "--labels", ",".join(str(v) for v in labels["voxelmorph_eval_labels"]), "--json", str(out)]
        argv += ["--io-steps", str(io_steps)] if io_steps is not None else []
        argv += ["--affine"] if affine else []
        for spec in checkpoints:
            argv += ["--checkpoint", spec]
        argv += ["--server", server] if server else []
        parser = argparse.ArgumentParser(prog="slicerfm-backend")
        registration_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
        command = parser.parse_args(argv)
        load = load_average()
        printed = io.StringIO()
        cpu, wall = time.process_time(), time.perf_counter()
        with contextlib.redirect_stdout(printed):  # its table is in the report; errors go to stderr
            code = command.func(command)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if code:
            raise RuntimeError(f"evaluate-registration failed (exit status {code}); see the messages above")
        report = json.loads(out.read_text())
    names = labels["freesurfer_lut"]
    report.update({"shrink": shrink, "io_steps": io_steps, "command_wall_s": wall, "command_cpu_s": cpu,
                   "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                   "load_before": load, "label_names": {str(k): names.get(str(k), str(k)) for k in report["labels"]}})
    return report


def random_gradicon_checkpoint(shape: Sequence[int], path: Path) -> Path:
    """The package's network for ``shape`` with random weights, saved in the released layout."""
    import torch

    from ..registration.gradicon.model import build_network

    torch.manual_seed(0)
    network = build_network(shape)
    with torch.no_grad():
        for name, parameter in network.regis_net.named_parameters():
            if "lastConv" in name:
                parameter.normal_(0.0, 1e-3)
    torch.save(network.regis_net.state_dict(), str(path))
    return path


def gradicon_upstream(checkpoint: Path, shape: Sequence[int]) -> float:
    """Seconds of the package's own pipeline on the pair (``unigradicon.preprocess`` +
    ``icon_registration.itk_wrapper.register_pair``, no IO, both directions); ITK's lazy
    loading excluded. Needs ITK."""
    import itk
    import numpy as np
    import torch
    import unigradicon
    from icon_registration import itk_wrapper

    from ..imaging import read_image, sitk_geometry_from_ijk_to_ras
    from .common import data_file

    def to_itk(name):
        array, ijk_to_ras, _ = read_image(str(data_file(f"brain_pair/{name}")))
        image = itk.image_from_array(np.ascontiguousarray(array, dtype=np.float32))
        spacing, origin, direction = sitk_geometry_from_ijk_to_ras(ijk_to_ras)
        image.SetSpacing(spacing)
        image.SetOrigin(origin)
        image.SetDirection(itk.matrix_from_array(np.array(direction).reshape(3, 3)))
        return image

    network = unigradicon.make_network([1, 1, *shape], include_last_step=True)
    network.regis_net.load_state_dict(torch.load(str(checkpoint), weights_only=True))
    network.eval()
    fixed, moving = to_itk(FIXED[0]), to_itk(MOVING[0])
    unigradicon.preprocess(fixed, "mri")  # ITK's lazy loading, not counted
    start = time.perf_counter()
    fixed_in, moving_in = unigradicon.preprocess(fixed, "mri"), unigradicon.preprocess(moving, "mri")
    with contextlib.redirect_stdout(io.StringIO()):
        itk_wrapper.register_pair(network, moving_in, fixed_in, finetune_steps=None)
    return time.perf_counter() - start


def gradicon_run(shape: int = 175, io_steps: Sequence[int] = (0,), repeats: int = 1, device: str = "cpu",
                 threads: Optional[int] = None, upstream: bool = False, similarity: str = "lncc",
                 output_grid: str = "fixed", log=print) -> dict:
    """uniGradICON on brain_pair with random weights: per IO-step count, per repeat, the
    engine's stage times, overhead (total - model) and memory."""
    import numpy as np
    import torch

    from ..imaging import read_image
    from ..registration.base import RegistrationImage, RegistrationRequest
    from ..registration.gradicon.engine import UniGradICONEngine
    from .common import data_file, proc_status

    if threads:
        torch.set_num_threads(threads)
    fixed, fixed_ijk, _ = read_image(str(data_file(f"brain_pair/{FIXED[0]}")))
    moving, moving_ijk, _ = read_image(str(data_file(f"brain_pair/{MOVING[0]}")))
    sides = (shape,) * 3
    figures: dict = {"shape": list(sides), "device": device, "threads": torch.get_num_threads(), "runs": {}}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = random_gradicon_checkpoint(sides, Path(folder) / "Step_2_final.trch")
        engine = UniGradICONEngine(device, {"checkpoint": str(checkpoint), "network_shape": sides})
        start = time.perf_counter()
        engine.load()
        figures["load_s"] = time.perf_counter() - start
        if upstream:
            figures["upstream_s"] = gradicon_upstream(checkpoint, sides)
    for steps in io_steps:
        request = RegistrationRequest(RegistrationImage(fixed, fixed_ijk, "MR"),
                                      RegistrationImage(moving, moving_ijk, "MR"),
                                      io_steps=steps, similarity=similarity, output_grid=output_grid)
        runs: List[dict] = []
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            result = engine.register(request, lambda stage, done=0, total=0: None)
            t = {k: float(v) for k, v in result.timings_s.items()}
            runs.append({"timings_s": t, "overhead_s": t["total"] - t["model"],
                         "overhead_share": (t["total"] - t["model"]) / t["total"],
                         "neg_jacobian_fraction": float(result.neg_jacobian_fraction),
                         "max_displacement_mm": float(np.abs(result.field.vectors_ras).max()),
                         "gpu_peak_bytes": result.details.get("gpu_peak_memory_bytes")})
            log(f"  unigradicon {shape}³, {steps} IO steps: model {t['model']:.1f} s of total {t['total']:.1f} s")
        figures["runs"][str(steps)] = runs
    figures["peak_rss_bytes"] = proc_status(os.getpid())["VmHWM"]
    return figures


def measure(classic: bool = True, shrink: int = 1, gradicon: bool = False, gradicon_shape: int = 175,
            gradicon_repeats: int = 1, log=print) -> dict:
    """Classic on brain_pair and/or uniGradICON's pipeline cost; summary figures."""
    figures: dict = {}
    if classic:
        figures["classic"] = brain_pair("classic", shrink=shrink)
        c = figures["classic"]
        log(f"  classic registration: mean Dice {c['mean_dice_before']:.3f} -> {c['mean_dice_after']:.3f}, "
            f"folding {100 * c['neg_jacobian_fraction']:.4f} %, {c['runtime_s']:.1f} s")
    if gradicon:
        figures["unigradicon"] = gradicon_run(gradicon_shape, (0,), gradicon_repeats, log=log)
    figures["summary"] = headline(figures)
    return figures


def headline(figures: dict) -> Dict[str, float]:
    out: Dict[str, float] = {}
    c = figures.get("classic")
    if c:
        out.update({"classic_mean_dice_before": c["mean_dice_before"], "classic_mean_dice_after": c["mean_dice_after"],
                    "classic_folding": c["neg_jacobian_fraction"], "classic_runtime_s": c["runtime_s"],
                    "classic_cpu_s": c.get("cpu_s")})
    g = figures.get("unigradicon")
    if g:
        for steps, runs in g["runs"].items():
            out[f"unigradicon_io{steps}_total_s"] = min(r["timings_s"]["total"] for r in runs)
            out[f"unigradicon_io{steps}_overhead_share"] = min(r["overhead_share"] for r in runs)
        out["unigradicon_peak_rss_bytes"] = g["peak_rss_bytes"]
    return out


def print_figures(figures: dict) -> None:
    """The text of ``benchmarks/registration_brain_pair.py`` / ``registration_gradicon_cpu.py``."""
    c = figures.get("classic")
    if c:
        print(f"{c.get('engine') or 'classic'}: mean Dice {c['mean_dice_before']:.3f} -> "
              f"{c['mean_dice_after']:.3f} over {len(c['labels'])} labels; folding "
              f"{100 * c['neg_jacobian_fraction']:.4f} %; registration {c['runtime_s']:.1f} s wall, "
              f"{c.get('cpu_s') or 0:.1f} s CPU; stages "
              + ", ".join(f"{k} {v:.2f} s" for k, v in c["timings_s"].items()))
        print(f"whole command: wall {c['command_wall_s']:.1f} s, CPU {c['command_cpu_s']:.1f} s, peak RSS "
              f"{c['peak_rss_bytes'] / 2**20:.0f} MiB; load average before {c['load_before']}")
    g = figures.get("unigradicon")
    if g:
        print(f"unigradicon {g['shape']} on {g['device']} ({g['threads']} threads), load {g['load_s']:.1f} s")
        if "upstream_s" in g:
            print(f"  upstream preprocess + register_pair (no IO): {g['upstream_s']:.1f} s")
        for steps, runs in g["runs"].items():
            for n, r in enumerate(runs, 1):
                t = r["timings_s"]
                print(f"  IO {steps}, run {n}: " + ", ".join(f"{k} {v:.2f} s" for k, v in t.items())
                      + f"; overhead {r['overhead_s']:.2f} s = {100 * r['overhead_share']:.1f} %"
                      + (f"; GPU peak {r['gpu_peak_bytes'] / 2**30:.2f} GiB" if r.get("gpu_peak_bytes") else ""))
        print(f"  process peak RSS {g['peak_rss_bytes'] / 2**30:.2f} GiB")
