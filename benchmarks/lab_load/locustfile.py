"""Locust annotators for the lab-server load test (run by ``benchmarks/lab_load/run.py``).

Each simulated annotator claims its own session, attaches the sample CT (uploaded once, by
the first annotator; the others find it on the server), and clicks positive points inside
one organ of the reference label map, with a think time between clicks; every
``CLICKS_PER_SEGMENT`` clicks it starts a new segment on the next organ (so one annotator
alone clicks the same mix of organs as eight together: the alone phase is the baseline). A click is one
``POST /api/session/interact`` through the real client; its round trip is reported to
locust as request "click", and every click's round trip, device wait (the ``queue`` entry of
``Server-Timing``) and queue position go to ``$SLICERFM_LOAD_RECORDS`` (one JSON line each).

Environment: ``SLICERFM_LOAD_TOKENS`` (comma-separated access tokens; annotator *n* uses
token *n* mod count; empty: no token), ``SLICERFM_LOAD_THINK_S`` ("min,max" seconds,
default "1,3"), ``SLICERFM_DATA`` (the sample data).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
from locust import User, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_common import require_data  # noqa: E402
from slicerfm_client.client import SlicerFMClient  # noqa: E402

ORGANS = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 5, "stomach": 6}
CLICKS_PER_SEGMENT = 6
THINK = tuple(float(v) for v in os.environ.get("SLICERFM_LOAD_THINK_S", "1,3").split(","))
TOKENS = [t for t in os.environ.get("SLICERFM_LOAD_TOKENS", "").split(",") if t] or [None]
RECORDS = os.environ.get("SLICERFM_LOAD_RECORDS")

_case = {}
_case_lock = threading.Lock()
_numbers = itertools.count()
_upload_lock = threading.Lock()


def sample_case():
    """``(image K,J,I int32, ijk_to_ras, {organ: voxel coordinates (n, 3)})`` of the sample CT."""
    with _case_lock:
        if not _case:
            from slicerfm_backend.imaging import read_image

            ct = require_data() / "abdomen_ct"
            image, ijk_to_ras, _ = read_image(str(ct / "example_ct.nii.gz"))
            labels, _, _ = read_image(str(ct / "example_seg_fast_force_split.nii.gz"))
            _case.update(image=image, ijk_to_ras=ijk_to_ras,
                         voxels={name: np.argwhere(labels == label) for name, label in ORGANS.items()})
        return _case["image"], _case["ijk_to_ras"], _case["voxels"]


def _record(row: dict) -> None:
    if RECORDS:
        with open(RECORDS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


class Annotator(User):
    wait_time = between(*THINK)

    def on_start(self) -> None:
        number = next(_numbers)
        self.client = SlicerFMClient(self.host, token=TOKENS[number % len(TOKENS)])
        self.client.connect(f"locust-{number}", heartbeat=True)
        image, ijk_to_ras, voxels = sample_case()
        with _upload_lock:  # the first annotator uploads, the others find the image
            self.client.set_image(image, ijk_to_ras, "CT")
        self.random = random.Random(number)
        self.number = number
        self.clicks = 0
        self._start_segment(0)

    def _start_segment(self, index: int) -> None:
        organ = list(ORGANS)[(self.number + index) % len(ORGANS)]
        self.voxels = sample_case()[2][organ]
        self.segment = f"{organ}-{self.number}-{index}"

    def on_stop(self) -> None:
        self.client.close()

    @task
    def click(self) -> None:
        if self.clicks and self.clicks % CLICKS_PER_SEGMENT == 0:
            self._start_segment(self.clicks // CLICKS_PER_SEGMENT)
        self.clicks += 1
        point = self.voxels[self.random.randrange(len(self.voxels))]
        start = time.perf_counter()
        error = None
        try:
            update = self.client.add_point(self.segment, tuple(int(v) for v in point), True)
        except Exception as caught:  # reported to locust as a failure
            error = caught
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        events.request.fire(request_type="POST", name="click", response_time=elapsed_ms,
                            response_length=0 if error else update.wire_bytes, exception=error,
                            context={})
        if error is None:
            _record({"t": time.time(), "user": f"annotator{self.number}",
                     "roundtrip_ms": elapsed_ms, "queue_ms": update.timings_ms.get("queue"),
                     "engine_ms": update.timings_ms.get("engine"),
                     "server_ms": update.timings_ms.get("server"),
                     "ahead": update.queue_ahead if hasattr(update, "queue_ahead") else None})
        else:
            _record({"t": time.time(), "error": f"{type(error).__name__}: {error}"})
