"""Shared pieces of the VISTA3D tests: a narrow vista3d132 with fixed random weights and an
engine subclass that serves it without a checkpoint.

``vista3d132(encoder_embed_dim=8)`` is the same factory and the same code path as the released
network (48), only narrower, so a 32^3 window takes about a second on two CPU cores; the
checkpoint tests use the full width.
"""

import numpy as np
import torch

from slicerfm_backend.engines.vista3d.engine import Vista3DEngine
from slicerfm_backend.engines.vista3d.model import Vista3DNetwork, build_network

ROI = 32


def small_network(seed: int = 0) -> Vista3DNetwork:
    torch.manual_seed(seed)
    return Vista3DNetwork(build_network(encoder_embed_dim=8), "cpu")


class SmallVista3DEngine(Vista3DEngine):
    """The vista3d engine with the narrow random network and 32^3 windows."""

    def __init__(self, device="cpu", options=None):
        options = dict(options or {})
        options.setdefault("roi", ROI)
        super().__init__(device, options)

    def weights_status(self):
        return True, "random weights (test)"

    def load(self):
        self.network = small_network()


class GatedSmallVista3DEngine(SmallVista3DEngine):
    """The narrow engine whose every class forward waits until the file named by
    ``SLICERFM_TEST_GATE`` exists: a test sees the job running for as long as it needs
    (e.g. to cancel it) and then opens the gate by creating the file."""

    def load(self):
        import os
        import time

        super().load()
        forward = self.network.classes
        gate = os.environ["SLICERFM_TEST_GATE"]

        def gated(*args, **kwargs):
            deadline = time.monotonic() + 120.0
            while not os.path.exists(gate):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"test gate {gate} was never opened")
                time.sleep(0.02)
            return forward(*args, **kwargs)

        self.network.classes = gated


def ct_phantom(shape_kji=(30, 40, 36), seed=1) -> np.ndarray:
    """A CT-like volume in HU: air around a soft-tissue body with a bright and a dark blob."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape_kji], indexing="ij")
    centre = [n / 2 for n in shape_kji]
    r = np.sqrt(sum(((g - c) / (n / 2.4)) ** 2 for g, c, n in zip((k, j, i), centre, shape_kji)))
    image = np.where(r < 1, 40.0, -1000.0)
    image[(r < 0.45)] = 300.0
    image += rng.normal(0, 10, shape_kji)
    return image.astype(np.int16)
