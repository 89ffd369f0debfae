"""Registration engines for cluster tests; the field is zero.

``slow``: ``io_steps`` steps of 0.1 s each (default 30), reporting progress and holding its
device one step at a time. ``gated``: step ``i`` writes ``step-<i>.started`` in the folder
``SLICERFM_TEST_GATE_DIR`` and holds its device until the test writes ``step-<i>.go`` there.

Served as plugins (``SLICERFM_ENGINE_PLUGINS=slow=slow_registration:SlowRegistration,...``)
from this folder, which the test cluster's processes import from.
"""

import os
import time
from pathlib import Path

import numpy as np

from slicerfm_backend.registration.base import (DisplacementField, RegistrationCapabilities,
                                                RegistrationEngine, RegistrationResult)

STEP_S = 0.1


class SlowRegistration(RegistrationEngine):
    name = "slow"
    capabilities = RegistrationCapabilities(description="test: sleeps step by step", needs_weights=False,
                                            devices=("cpu",), similarities=("lncc",), default_io_steps=30)

    def register(self, request, progress, step):
        steps = request.io_steps if request.io_steps is not None else self.default_io_steps
        for done in range(steps):
            progress("steps", done, steps)
            with step():
                time.sleep(STEP_S)
        progress("steps", steps, steps)
        field = np.zeros(request.fixed.shape + (3,), np.float32)
        return RegistrationResult(DisplacementField(field, request.fixed.ijk_to_ras), 0.0,
                                  details={"pid": os.getpid()})


GATE_TIMEOUT_S = 300.0


class GatedRegistration(SlowRegistration):
    name = "gated"
    capabilities = RegistrationCapabilities(description="test: each step waits for the test's go",
                                            needs_weights=False, devices=("cpu",), similarities=("lncc",),
                                            default_io_steps=3)

    def register(self, request, progress, step):
        gates = Path(os.environ["SLICERFM_TEST_GATE_DIR"])
        steps = request.io_steps if request.io_steps is not None else self.default_io_steps
        for done in range(steps):
            progress("steps", done, steps)
            with step():
                (gates / f"step-{done}.started").touch()
                deadline = time.monotonic() + GATE_TIMEOUT_S
                while not (gates / f"step-{done}.go").exists():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"step {done} was never let go")
                    time.sleep(0.05)
        progress("steps", steps, steps)
        field = np.zeros(request.fixed.shape + (3,), np.float32)
        return RegistrationResult(DisplacementField(field, request.fixed.ijk_to_ras), 0.0, details={"pid": os.getpid()})
