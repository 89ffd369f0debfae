"""Devices: which one ``auto`` means here, which one an engine runs on, and who shares it.

``auto`` is CUDA when torch sees a GPU, else Apple's MPS where torch has it, else the CPU;
without torch installed (the base server) it is the CPU. An engine runs on the server's
device when it declares that device kind in ``capabilities.devices``, else on the CPU when
it can, else on its first declared device. Inference on one device is shared out by that
device's :class:`~slicerfm_backend.scheduler.DeviceScheduler` (clicks before job steps,
round-robin between users), used by clicks and background jobs of every engine family.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Sequence

AUTO = "auto"


@dataclass(frozen=True)
class DeviceChoice:
    """The device the server uses (``cpu``, ``cuda``, ``cuda:N`` or ``mps``) and why."""

    device: str
    reason: str


def resolve_device(requested: str) -> DeviceChoice:
    """``auto`` becomes ``cuda``, then ``mps``, then ``cpu`` by what torch sees; any other
    value is taken as given (an engine that cannot use it falls back, see :func:`engine_device`)."""
    if requested != AUTO:
        return DeviceChoice(requested, "as requested")
    if importlib.util.find_spec("torch") is None:
        return DeviceChoice("cpu", "auto: torch is not installed")
    import torch  # only when installed; the base server does not need it

    if torch.cuda.is_available():
        return DeviceChoice("cuda", f"auto: CUDA device {torch.cuda.get_device_name(0)!r}")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return DeviceChoice("mps", "auto: Apple MPS (no CUDA)")
    return DeviceChoice("cpu", f"auto: torch {torch.__version__} sees no CUDA or MPS device")


def engine_device(devices: Sequence[str], server_device: str) -> str:
    """The device an engine declaring ``devices`` (kinds, e.g. ``("cuda", "cpu")``) runs on
    when the server's device is ``server_device``."""
    kind = server_device.split(":")[0]
    if kind in devices:
        return server_device
    return "cpu" if "cpu" in devices else devices[0]
