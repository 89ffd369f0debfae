"""``bench_ball``: an engine whose compute is negligible, to measure the protocol alone.

A positive click adds a ball of :data:`RADIUS` voxels around the point, a negative click
removes it; it computes only inside the ball's bounding box (~17³ voxels). It reaches a
server process through the plugin hook ``SLICERFM_ENGINE_PLUGINS`` (:data:`PLUGIN_SPEC`,
see ``slicerfm_backend.engine_core.registry``).
"""

from __future__ import annotations

import numpy as np

from ..engines.base import Engine, EngineCapabilities, EngineResult

NAME = "bench_ball"
RADIUS = 8
PLUGIN_SPEC = f"{NAME}=slicerfm_backend.benchmark.ball:BallEngine"


class BallEngine(Engine):
    """Adds (positive) or removes (negative) a ball of RADIUS voxels around the last click."""

    name = NAME
    capabilities = EngineCapabilities(("point",), ("CT", "MR", "unknown"), False, ("cpu",),
                                      "benchmark: ball around the last click")

    def segment(self, request):
        prompt = request.prompts[-1]
        shape = request.image.array.shape
        centre = np.round(prompt.point_kji).astype(int)
        start = tuple(int(max(0, c - RADIUS)) for c in centre)
        stop = tuple(int(min(n, c + RADIUS + 1)) for c, n in zip(centre, shape))
        bbox = (start, stop)
        k, j, i = np.ogrid[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]]
        ball = (k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 <= RADIUS**2
        mask = request.previous.region(bbox)
        if prompt.positive:
            mask |= ball
        else:
            mask &= ~ball
        return EngineResult(bbox, mask)
