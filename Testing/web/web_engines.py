"""A slow test engine for the browser tests, loaded into the backend process through
``SLICERFM_ENGINE_PLUGINS`` (``slow-sphere=web_engines:SlowSphereEngine``).

``slow-sphere`` answers each click after ``SLOW_SPHERE_S`` seconds with the union of balls
(radius 4 voxels) around the positive points minus balls around the negative ones -- slow
enough that a second click arrives while the first is still running, exact enough that a
test can tell which clicks were applied.
"""

import time

import numpy as np

from slicerfm_backend.engines.base import Engine, EngineCapabilities, EngineResult

SLOW_SPHERE_S = 1.5
RADIUS = 4


def ball(shape, centre, radius=RADIUS):
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    c = np.round(centre).astype(int)
    return (k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= radius ** 2


class SlowSphereEngine(Engine):
    name = "slow-sphere"
    capabilities = EngineCapabilities(("point",), ("CT", "MR", "unknown"), False, ("cpu",),
                                      "test engine: balls around the clicks, 1.5 s per click")

    def segment(self, request):
        time.sleep(SLOW_SPHERE_S)
        shape = request.image.array.shape
        mask = np.zeros(shape, bool)
        for prompt in request.prompts:
            if prompt.positive:
                mask |= ball(shape, prompt.point_kji)
            else:
                mask &= ~ball(shape, prompt.point_kji)
        return EngineResult(((0, 0, 0), tuple(shape)), mask, {"sleep": SLOW_SPHERE_S * 1000.0})
