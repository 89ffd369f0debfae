"""Run a simulated user against any way of interacting (real client, or an engine in-process).

``interact(point_kji, positive)`` sends one click and returns the changed region as
``(bbox, mask)`` -- exactly what the server answers -- and the loop applies it to its own
copy of the prediction, as the Slicer module does with a segment.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from slicerfm_client.geometry import BBox, bbox_slices

from .clicker import clicks_to_reach, dice, next_click

InteractFn = Callable[[Tuple[int, int, int], bool], Tuple[Optional[BBox], Optional[np.ndarray]]]
THRESHOLDS = ("0.80", "0.85", "0.90")


def simulate_clicks(
    reference: np.ndarray,
    spacing_kji: Sequence[float],
    interact: InteractFn,
    n_clicks: int = 10,
    on_click: Optional[Callable[[int, dict], None]] = None,
) -> Dict:
    """Click up to ``n_clicks`` times; returns per-click Dice, latency and clicks-to-threshold.

    Result: ``{"dice": [...], "latency_s": [...], "clicks": [{"point_kji", "positive"}...],
    "clicks_to": {"0.80": n|None, "0.85": ..., "0.90": ...}}``. Stops early when the
    prediction equals the reference.
    """
    reference = reference.astype(bool, copy=False)
    prediction = np.zeros(reference.shape, dtype=bool)
    dices: List[float] = []
    latencies: List[float] = []
    clicks: List[dict] = []
    for index in range(n_clicks):
        click = next_click(reference, prediction, spacing_kji)
        if click is None:
            break
        point, positive = click
        start = time.perf_counter()
        bbox, mask = interact(point, positive)
        latencies.append(time.perf_counter() - start)
        if bbox is not None and mask is not None and mask.size:
            prediction[bbox_slices(bbox)] = mask
        dices.append(dice(reference, prediction))
        clicks.append({"point_kji": list(point), "positive": bool(positive)})
        if on_click is not None:
            on_click(index + 1, {"dice": dices[-1], "latency_s": latencies[-1], **clicks[-1]})
    return {
        "dice": dices,
        "latency_s": latencies,
        "clicks": clicks,
        "clicks_to": {t: clicks_to_reach(dices, float(t)) for t in THRESHOLDS},
    }
