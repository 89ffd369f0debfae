"""``slicerfm-backend evaluate``: a simulated user against a real server, through the client.

Measures what a user gets: each click goes through HTTP, the server, the engine and back,
and its latency is the client's round trip. Without ``--server`` a server process is
started on loopback for the run (same Python environment) and stopped afterwards.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Dict, Optional

import numpy as np

from slicerfm_client.client import SlicerFMClient
from slicerfm_client.launcher import LocalBackend, default_command

from ..imaging import read_image
from ..progress import bar, write
from .simulate import THRESHOLDS, simulate_clicks

SEGMENT = "evaluation"


def load_case(image_path: str, label_path: str, label_id: int):
    """``(image K,J,I, ijk_to_ras, reference bool K,J,I, spacing_kji)``; checks the grids agree."""
    from slicerfm_client.geometry import spacing_kji

    image, ijk_to_ras, _ = read_image(image_path)
    labels, label_matrix, _ = read_image(label_path)
    if labels.shape != image.shape:
        raise ValueError(f"label map shape {labels.shape} differs from image shape {image.shape}")
    if not np.allclose(label_matrix, ijk_to_ras, atol=1e-3):
        raise ValueError("the label map is not on the image's grid (origin, spacing or direction differ)")
    reference = labels == label_id
    if not reference.any():
        raise ValueError(f"label {label_id} does not occur in {label_path}")
    return image, ijk_to_ras, reference, spacing_kji(ijk_to_ras)


def evaluate_with_client(client: SlicerFMClient, image, ijk_to_ras, reference, spacing,
                         engine: str, clicks: int, modality: str = "other", verbose: bool = True,
                         progress=None) -> dict:
    """Upload, then click ``clicks`` times; returns the simulate_clicks result plus stages
    (``Server-Timing`` per click, round trip and response bytes). ``progress``: a tqdm-like
    bar advanced once per click."""
    client.set_image(image, ijk_to_ras, modality)
    stages = []

    def interact(point, positive):
        update = client.add_point(SEGMENT, point, positive, engine=engine)
        stages.append({**update.timings_ms, "roundtrip": update.roundtrip_ms,
                       "response_bytes": update.wire_bytes})
        return update.bbox, update.mask

    def report(index, row):
        if progress is not None:
            progress.update(1)
        if verbose:
            sign = "+" if row["positive"] else "-"
            write(f"click {index:2d} {sign} at (k,j,i)={tuple(row['point_kji'])}: Dice {row['dice']:.4f}  "
                  f"latency {row['latency_s'] * 1000:.1f} ms")

    result = simulate_clicks(reference, spacing, interact, clicks, on_click=report)
    client.reset(SEGMENT)
    result["stages_ms"] = stages
    return result


def backend_environment(args) -> Dict[str, str]:
    """The environment of the server started for a run: ours, plus the run's
    ``--checkpoint`` and ``--engine-option`` values (added to any SLICERFM_* already set)."""
    env = dict(os.environ)
    checkpoints = [c for c in [env.get("SLICERFM_CHECKPOINTS")] + list(getattr(args, "checkpoint", None) or []) if c]
    options = [o for o in [env.get("SLICERFM_ENGINE_OPTIONS")] + list(getattr(args, "engine_option", None) or []) if o]
    if checkpoints:
        env["SLICERFM_CHECKPOINTS"] = ",".join(checkpoints)
    if options:
        env["SLICERFM_ENGINE_OPTIONS"] = ",".join(options)
    return env


def run_evaluation(args) -> int:
    try:
        image, ijk_to_ras, reference, spacing = load_case(args.image, args.label, args.label_id)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    backend: Optional[LocalBackend] = None
    url = args.server
    if not url:
        backend = LocalBackend(default_command(), engines=[args.engine], device=args.device,
                               env=backend_environment(args))
        url = backend.start()
    try:
        client = SlicerFMClient(url, token=os.environ.get("SLICERFM_TOKEN"))
        with client, bar(total=args.clicks, desc="clicks", unit="click") as clicks:
            client.connect("slicerfm-backend evaluate")
            result = evaluate_with_client(client, image, ijk_to_ras, reference, spacing,
                                          args.engine, args.clicks, args.modality, progress=clicks)
    finally:
        if backend is not None:
            backend.stop()
    result.update({"engine": args.engine, "image": args.image, "label": args.label,
                   "label_id": args.label_id})
    print("clicks to Dice " + ", ".join(f"{t}: {result['clicks_to'][t]}" for t in THRESHOLDS))
    if result["latency_s"]:
        print(f"latency per click: median {np.median(result['latency_s']) * 1000:.1f} ms, "
              f"max {max(result['latency_s']) * 1000:.1f} ms")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    if getattr(args, "plot", None):
        from .plots import plot_clicks

        title = f"{args.engine}: {os.path.basename(args.label)} label {args.label_id}"
        print(f"plot: {plot_clicks(result, args.plot, title)}")
    return 0
