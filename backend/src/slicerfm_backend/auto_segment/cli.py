"""``slicerfm-backend segment``: automatic segmentation of one image file without Slicer.

    slicerfm-backend segment --engine vista3d --image ct.nii.gz (--classes liver,spleen | --everything)
                             --out labels.nii.gz [--checkpoint vista3d=PATH] [--server URL]

Writes the label map on the input image's grid (same size, spacing, origin and direction,
uint8 class ids) and the label dictionary beside it (``labels.json``: ``{"labels": {id:
{name, color, group}}, "not_computed": ..., ...}``). Without ``--server`` the engine runs in
this process; with it the image is uploaded to that server (token from ``SLICERFM_TOKEN``)
and the job is followed there. Progress (windows done/total) goes to stderr: a bar on a
terminal, a line per stage otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional

from ..engine_core.cli import print_estimate
from ..progress import StageBar
from ..settings import add_engine_flags


def dictionary_path(out: str) -> Path:
    """``labels.nii.gz`` -> ``labels.json`` (next to the label map)."""
    path = Path(out)
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".seg.nrrd"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_name(name + ".json")


def add_parsers(subparsers) -> None:
    """Add the ``segment`` command to the CLI's subparsers."""
    p = subparsers.add_parser("segment", help="automatic segmentation of an image file (vista3d)")
    p.add_argument("--engine", default="vista3d")
    p.add_argument("--image", required=True, help="CT image file (NIfTI, NRRD, ...), Hounsfield units")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--classes", help="comma-separated class names or ids (docs/VISTA3D.md)")
    which.add_argument("--everything", action="store_true", help="the 117 'everything' classes")
    p.add_argument("--out", required=True, help="label map file to write (e.g. labels.nii.gz)")
    add_engine_flags(p)  # in-process runs
    p.add_argument("--server", help="URL of a running server (default: run in this process)")
    p.set_defaults(func=cmd_segment)


def _classes(args) -> Optional[list]:
    if args.everything:
        return None
    return [c.strip() for c in args.classes.split(",") if c.strip()]


def run_in_process(args, array, ijk_to_ras, classes, bar):
    from slicerfm_client import geometry

    from ..engine_core.served import engine_managers
    from ..engines.base import AutoSegmentation, ImageData
    from ..errors import DomainError
    from ..settings import settings_from_args

    manager, _ = engine_managers(settings_from_args(args), segmentation=[args.engine], registration=[])
    cls = manager.engine_class(args.engine)
    if not issubclass(cls, AutoSegmentation):
        raise ValueError(f"engine {args.engine!r} has no automatic segmentation; use vista3d")
    ids = cls.class_ids(classes, everything=classes is None)
    bar("loading", 0, 0)
    try:
        engine = manager.get(args.engine)
    except DomainError as error:
        raise ValueError(error.message) from None
    image = ImageData("cli", array, geometry.spacing_kji(ijk_to_ras), ijk_to_ras, "CT")
    print_estimate(engine.estimate_auto_s(image, ids), engine.device, bar.stream)
    return engine.segment_auto(image, ids, bar)


def run_on_server(args, array, ijk_to_ras, classes, bar):
    from slicerfm_client.auto_segment import segment_auto
    from slicerfm_client.client import SlicerFMClient

    shown = []

    def on_progress(status):
        if not shown:
            print_estimate(status.get("estimate_s"), "the server", bar.stream)
            shown.append(True)
        bar(status.get("stage") or status.get("state", ""), status.get("done") or 0, status.get("total") or 0)

    with SlicerFMClient(args.server, token=os.environ.get("SLICERFM_TOKEN")) as client:
        client.connect()
        result = segment_auto(client, array, ijk_to_ras, classes=classes, everything=classes is None,
                              engine=args.engine, on_progress=on_progress)
    meta = dict(result.meta)
    meta["labels"] = {str(k): v for k, v in result.dictionary.items()}
    meta["not_computed"] = result.not_computed
    return result.labels, meta


def cmd_segment(args: argparse.Namespace) -> int:
    import numpy as np
    import SimpleITK as sitk

    from ..imaging import read_image

    try:
        array, ijk_to_ras, source = read_image(args.image)
        classes = _classes(args)
        if classes is not None and not classes:
            raise ValueError("--classes is empty")
        bar = StageBar()  # a bar on a terminal, a line per stage elsewhere
        runner = run_on_server if args.server else run_in_process
        try:
            labels, meta = runner(args, array, ijk_to_ras, classes, bar)
        finally:
            bar.close()
    except (ValueError, OSError, RuntimeError) as error:
        print(f"segment: {error}", file=sys.stderr)
        return 2
    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(source)
    sitk.WriteImage(out, args.out, useCompression=True)
    meta_file = dictionary_path(args.out)
    meta_file.write_text(json.dumps(meta, indent=1))
    missing = meta.get("not_computed", {}).get("voxels", 0)
    print(f"wrote {args.out} ({len(meta.get('labels', {}))} classes requested, "
          f"{int((np.bincount(labels.ravel(), minlength=256)[1:] > 0).sum())} present) "
          f"and {meta_file}; {missing:,} voxels not computed (outside the foreground crop)")
    return 0
