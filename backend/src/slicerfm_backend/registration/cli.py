"""``slicerfm-backend register`` and ``evaluate-registration``, and the engine listing.

Both run the engine in this process, or on a running server with ``--server URL`` (through
the torch-free client: upload, job, download). Images are read with SimpleITK (NIfTI,
NRRD, ...). ``--transform-out`` writes an ITK displacement-field transform (LPS, fixed ->
moving points, as ITK and Slicer expect for resampling the moving image);
``--warped-out`` writes the moving image resampled onto the fixed grid.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional

import numpy as np

from ..engine_core.cli import print_estimate
from ..progress import StageBar
from ..settings import add_engine_flags, modality_argument



def _read(path: str, what: str):
    from ..imaging import read_image

    if not os.path.isfile(path):
        raise ValueError(f"{what} file not found: {path}")
    array, ijk_to_ras, _ = read_image(path)
    return array, ijk_to_ras


def _mask(path: Optional[str], role: str, array: np.ndarray, ijk_to_ras) -> Optional[np.ndarray]:
    from ..errors import DomainError
    from .service import mask_from_labels

    if not path:
        return None
    labels, labels_ijk = _read(path, f"{role} mask")
    try:
        return mask_from_labels(role, array.shape, ijk_to_ras, labels, labels_ijk)
    except DomainError as error:
        raise ValueError(error.message) from None


def _options(args) -> dict:
    return {"io_steps": args.io_steps, "similarity": args.similarity,
            "affine_prealign": bool(args.affine), "output_grid": "fixed"}


def run_pair(args, want_warped: bool = False):
    """Register ``args.moving`` onto ``args.fixed`` in process or on ``args.server``.

    Returns ``(fixed array, fixed ijk_to_ras, moving array, moving ijk_to_ras, field,
    meta, warped or None)``; ``meta`` holds ``neg_jacobian_fraction``, ``runtime_s``,
    ``timings_s`` and ``details`` (in process also ``cpu_s``: this process's CPU time,
    all threads, during the registration)."""
    from .base import DisplacementField

    fixed, fixed_ijk = _read(args.fixed, "fixed image")
    moving, moving_ijk = _read(args.moving, "moving image")
    fixed_mask = _mask(getattr(args, "fixed_mask", None), "fixed", fixed, fixed_ijk)
    moving_mask = _mask(getattr(args, "moving_mask", None), "moving", moving, moving_ijk)
    if args.server:
        from slicerfm_client.client import SlicerFMClient
        from slicerfm_client.registration import register

        status = {"estimate": False}
        stages = StageBar()

        def on_progress(job: dict) -> None:
            if not status["estimate"]:
                print_estimate(job.get("estimate_s"), "the server")
                status["estimate"] = True
            stages(job.get("stage") or job.get("state", ""), job.get("done") or 0, job.get("total") or 0)

        with stages, SlicerFMClient(args.server, token=os.environ.get("SLICERFM_TOKEN")) as client:
            out = register(client, fixed, fixed_ijk, moving, moving_ijk, engine=args.engine,
                           fixed_modality=args.fixed_modality, moving_modality=args.moving_modality,
                           fixed_mask=fixed_mask, moving_mask=moving_mask, want_warped=want_warped,
                           on_progress=on_progress, **_options(args))
        field = DisplacementField(out.vectors_ras, np.asarray(out.ijk_to_ras, dtype=np.float64))
        return fixed, fixed_ijk, moving, moving_ijk, field, dict(out.meta), out.warped

    from ..engine_core.served import engine_managers
    from ..errors import DomainError
    from ..settings import settings_from_args
    from .base import RegistrationImage, RegistrationRequest
    from .field import warp

    _, manager = engine_managers(settings_from_args(args), segmentation=[], registration=[args.engine])
    try:
        engine = manager.get(args.engine)
    except DomainError as error:
        raise ValueError(error.message) from None
    request = RegistrationRequest(RegistrationImage(fixed, fixed_ijk, args.fixed_modality, fixed_mask),
                                  RegistrationImage(moving, moving_ijk, args.moving_modality, moving_mask),
                                  **_options(args))
    print_estimate(engine.estimate_s(request), engine.device)
    start, cpu = time.perf_counter(), time.process_time()
    with StageBar() as progress:  # a bar per stage on a terminal, sparse lines elsewhere
        result = engine.register(request, progress)
    runtime, cpu = time.perf_counter() - start, time.process_time() - cpu
    meta = {"engine": args.engine, "neg_jacobian_fraction": float(result.neg_jacobian_fraction),
            "runtime_s": round(runtime, 3), "cpu_s": round(cpu, 2),
            "timings_s": {k: round(float(v), 4) for k, v in result.timings_s.items()}, "details": result.details}
    warped = warp(moving, moving_ijk, result.field) if want_warped else None
    return fixed, fixed_ijk, moving, moving_ijk, result.field, meta, warped


def _summary(meta: dict) -> str:
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in meta.get("timings_s", {}).items())
    return (f"negative Jacobian: {100 * meta['neg_jacobian_fraction']:.4f} % of voxels; "
            f"runtime {meta['runtime_s']:.2f} s ({timings})")


def cmd_register(args: argparse.Namespace) -> int:
    from .field import to_sitk_image, to_sitk_transform

    try:
        if not args.transform_out and not args.warped_out:
            raise ValueError("nothing to write: give --transform-out and/or --warped-out")
        fixed, fixed_ijk, moving, _, field, meta, warped = run_pair(args, want_warped=bool(args.warped_out))
        import SimpleITK as sitk

        if args.transform_out:
            sitk.WriteTransform(to_sitk_transform(field), args.transform_out)
            print(f"transform (fixed -> moving points, ITK/LPS displacement field): {args.transform_out}")
        if args.warped_out:
            sitk.WriteImage(to_sitk_image(warped, field.ijk_to_ras), args.warped_out)
            print(f"moving image on the fixed grid: {args.warped_out}")
    except Exception as error:  # noqa: BLE001 - every failure becomes one clear line
        return _fail(error)
    print(_summary(meta))
    return 0


def cmd_evaluate_registration(args: argparse.Namespace) -> int:
    from .evaluate import overlap_report, parse_labels

    try:
        if args.plot:
            from ..evaluation.plots import INSTALL_HINT

            try:
                import matplotlib  # noqa: F401 - checked before the registration, not after it
            except ImportError:
                raise ValueError(INSTALL_HINT) from None
        labels = parse_labels(args.labels)
        fixed_labels, fixed_labels_ijk = _read(args.fixed_labels, "fixed label map")
        moving_labels, moving_labels_ijk = _read(args.moving_labels, "moving label map")
        fixed, fixed_ijk, moving, moving_ijk, field, meta, _ = run_pair(args)
        _check_grid("fixed", fixed, fixed_ijk, fixed_labels, fixed_labels_ijk)
        _check_grid("moving", moving, moving_ijk, moving_labels, moving_labels_ijk)
        report = overlap_report(fixed_labels, fixed_ijk, moving_labels, moving_ijk, field, labels)
    except Exception as error:  # noqa: BLE001
        return _fail(error)
    print(f"{'label':>6} {'dice before':>12} {'dice after':>11}")
    for label in report["labels"]:
        print(f"{label:>6} {report['dice_before'][label]:>12.4f} {report['dice_after'][label]:>11.4f}")
    print(f"{'mean':>6} {report['mean_dice_before']:>12.4f} {report['mean_dice_after']:>11.4f}"
          f"   ({len(report['labels'])} labels)")
    print(_summary(meta))
    if args.json:
        out = {key: report[key] for key in ("mean_dice_before", "mean_dice_after", "labels")}
        out["dice_before"] = {str(k): v for k, v in report["dice_before"].items()}
        out["dice_after"] = {str(k): v for k, v in report["dice_after"].items()}
        out.update({"neg_jacobian_fraction": meta["neg_jacobian_fraction"], "runtime_s": meta["runtime_s"],
                    "cpu_s": meta.get("cpu_s"),
                    "timings_s": meta.get("timings_s", {}), "details": meta.get("details", {}),
                    "engine": args.engine, "server": args.server})
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=1)
    if args.plot:
        from ..evaluation.plots import plot_registration

        folded = {**report, "neg_jacobian_fraction": meta["neg_jacobian_fraction"]}
        print(f"plot: {plot_registration(folded, args.plot, args.engine)}")
    return 0


def _check_grid(role: str, image: np.ndarray, ijk_to_ras, labels: np.ndarray, labels_ijk) -> None:
    if image.shape != labels.shape or np.abs(np.asarray(ijk_to_ras) - np.asarray(labels_ijk)).max() > 1e-3:
        raise ValueError(f"the {role} label map is not on the {role} image's grid "
                         f"(shape {labels.shape} vs {image.shape}); resample it first")


def _fail(error: Exception) -> int:
    from slicerfm_client import errors as client_errors

    from ..errors import EngineError

    if isinstance(error, (ValueError, OSError, EngineError, client_errors.SlicerFMError)):
        print(f"error: {error}", file=sys.stderr)
        return 1
    raise error


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", default="classic", help="registration engine (default classic)")
    parser.add_argument("--fixed", required=True, help="fixed image file (the grid of the result)")
    parser.add_argument("--moving", required=True, help="moving image file")
    parser.add_argument("--fixed-mask", dest="fixed_mask", help="label map on the fixed grid; non-zero = use")
    parser.add_argument("--moving-mask", dest="moving_mask", help="label map on the moving grid; non-zero = use")
    parser.add_argument("--fixed-modality", dest="fixed_modality", default="other", type=modality_argument,
                        help="CT, MR or other (any case; MRI, unknown, ... accepted)")
    parser.add_argument("--moving-modality", dest="moving_modality", default="other", type=modality_argument,
                        help="CT, MR or other (any case; MRI, unknown, ... accepted)")
    parser.add_argument("--io-steps", dest="io_steps", type=int,
                        help="instance-optimisation steps (classic: demons iterations at full resolution)")
    parser.add_argument("--similarity", help="similarity of the optimisation (engine-specific)")
    parser.add_argument("--affine", action="store_true", help="affine pre-alignment first")
    add_engine_flags(parser)
    parser.add_argument("--server", help="URL of a running server (token from SLICERFM_TOKEN); "
                                         "default: run in this process")


def add_parsers(subparsers) -> None:
    """Add ``register`` and ``evaluate-registration`` to the ``slicerfm-backend`` parser."""
    register = subparsers.add_parser("register", help="register a moving image onto a fixed one")
    _common(register)
    register.add_argument("--transform-out", dest="transform_out",
                          help="ITK displacement-field transform file (.h5, .nii.gz, .nrrd)")
    register.add_argument("--warped-out", dest="warped_out", help="moving image resampled onto the fixed grid")
    register.set_defaults(func=cmd_register)

    evaluate = subparsers.add_parser("evaluate-registration",
                              help="Dice of label maps before/after registration, folding, runtime")
    _common(evaluate)
    evaluate.add_argument("--fixed-labels", dest="fixed_labels", required=True, help="label map on the fixed grid")
    evaluate.add_argument("--moving-labels", dest="moving_labels", required=True, help="label map on the moving grid")
    evaluate.add_argument("--labels", help="comma-separated labels to score (default: all in both maps)")
    evaluate.add_argument("--json", help="write the results as JSON to this file")
    evaluate.add_argument("--plot", metavar="OUT.png", help="draw Dice per label before/after into this PNG")
    evaluate.set_defaults(func=cmd_evaluate_registration)
