"""Small deterministic engines for server tests (registered by the fixtures only).

``sphere``: the segment is the union of 3-voxel balls around positive points minus balls
around negative points, inside a box around all points -- exact, so tests can predict every
voxel. ``flood``: claims the whole image on every click (a rogue engine, to prove locks
hold). ``broken``: raises. ``unloadable``: its ``load`` fails as a checkpoint that does not
fit would; ``crashing``: its ``load`` has a bug.
"""

import numpy as np

from slicerfm_backend.engines.base import Engine, EngineCapabilities, EngineResult
from slicerfm_backend.errors import EngineError

RADIUS = 3


def ball(shape, centre, radius=RADIUS):
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    c = np.round(centre).astype(int)
    return (k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= radius**2


class SphereEngine(Engine):
    name = "sphere"
    capabilities = EngineCapabilities(("point", "box"), ("CT", "MR"), False, ("cpu",), "test balls")

    def segment(self, request):
        shape = request.image.array.shape
        mask = np.zeros(shape, bool)
        for prompt in request.prompts:
            if prompt.kind == "box":
                (k0, j0, i0), (k1, j1, i1) = np.round(prompt.box_kji).astype(int)
                mask[k0 : k1 + 1, j0 : j1 + 1, i0 : i1 + 1] = True
            elif prompt.positive:
                mask |= ball(shape, prompt.point_kji)
            else:
                mask &= ~ball(shape, prompt.point_kji)
        previous = request.previous.bbox()
        full = ((0, 0, 0), tuple(shape))
        return EngineResult(full, mask, {"toy": 0.0}) if previous or mask.any() else EngineResult(full, mask)


class FloodEngine(Engine):
    name = "flood"
    capabilities = EngineCapabilities(("point",), ("CT",), False, ("cpu",), "claims everything")

    def segment(self, request):
        shape = request.image.array.shape
        return EngineResult(((0, 0, 0), tuple(shape)), np.ones(shape, bool))


class BrokenEngine(Engine):
    name = "broken"
    capabilities = EngineCapabilities(("point",), ("CT",), False, ("cpu",), "always fails")

    def segment(self, request):
        raise ZeroDivisionError("the toy engine broke")


class UnloadableEngine(Engine):
    name = "unloadable"
    capabilities = EngineCapabilities(("point",), ("CT",), False, ("cpu",), "cannot load")

    def load(self):
        raise EngineError("the checkpoint does not fit the network (key 'x.weight' has shape (2,), expected (3,))")

    def segment(self, request):
        raise AssertionError("never loaded")


class CrashingEngine(UnloadableEngine):
    name = "crashing"

    def load(self):
        raise KeyError("a bug in load")


class WeightedEngine(Engine):
    """Needs the weights catalogued as ``toy-weights``; ``load`` finds its checkpoint the way
    real engines do and keeps its bytes; segments are empty."""

    name = "toy-weights"
    capabilities = EngineCapabilities(("point",), ("CT",), True, ("cpu",), "test weights")

    def load(self):
        self.checkpoint_bytes = self.checkpoint().read_bytes()

    def segment(self, request):
        shape = request.image.array.shape
        return EngineResult(((0, 0, 0), tuple(shape)), np.zeros(shape, bool))


class OutOfMemoryEngine(Engine):
    """Runs out of GPU memory as a backend reports it in a RuntimeError (torch's own
    ``torch.cuda.OutOfMemoryError`` is tested in test_device_memory_torch.py)."""

    name = "oom"
    capabilities = EngineCapabilities(("point",), ("CT",), False, ("cpu",), "always out of GPU memory")

    def segment(self, request):
        request.cache["big"] = bytearray(1 << 20)  # a cache the server must drop
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


class SlowEngine(SphereEngine):
    """``sphere``, after sleeping ``$SLICERFM_TEST_SLOW_S`` seconds (default 0.5): a click
    that is in flight long enough to kill the server under it."""

    name = "slow"

    def segment(self, request):
        import os
        import time

        time.sleep(float(os.environ.get("SLICERFM_TEST_SLOW_S", "0.5")))
        return super().segment(request)
