"""An interactive engine for cluster tests: the classic engine, except that a click waits
until the test lets it go, so that the test can kill the worker while the click runs.

``segment`` writes ``click.started`` in the folder ``SLICERFM_TEST_GATE_DIR`` and waits
for ``click.go`` there (at most ``HOLD_TIMEOUT_S``). Served as a plugin
(``SLICERFM_ENGINE_PLUGINS=held=held_click:HeldClick``) from this folder.
"""

import os
import time
from pathlib import Path

from slicerfm_backend.engines.classic.engine import ClassicEngine

HOLD_TIMEOUT_S = 300.0


class HeldClick(ClassicEngine):
    name = "held"

    def segment(self, request):
        gates = Path(os.environ["SLICERFM_TEST_GATE_DIR"])
        (gates / "click.started").touch()
        deadline = time.monotonic() + HOLD_TIMEOUT_S
        while not (gates / "click.go").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the held click was never let go")
            time.sleep(0.05)
        return super().segment(request)
