"""A registration engine for cluster tests: ``io_steps`` steps of 0.1 s each (default 30),
reporting progress and holding its device one step at a time; the field is zero.

Served as a plugin (``SLICERFM_ENGINE_PLUGINS=slow=slow_registration:SlowRegistration``)
from this folder, which the test cluster's processes import from.
"""

import time

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
                                  details={"pid": __import__("os").getpid()})
