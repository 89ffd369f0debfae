"""Running the GradICON network on one pair: a forward pass, optionally after instance
optimisation (IO), without ever changing the cached network.

- No IO: ``regis_net(moving, fixed)`` once under ``torch.no_grad`` (only the direction the
  result needs; the package's ``register_pair`` also computes the reverse map).
- IO: a deep copy of the network (the cached one is never touched, also when the job is
  cancelled or runs out of memory) is fine-tuned with Adam (lr 2e-5, all parameters) on the
  package's full loss (similarity both ways + gradient inverse consistency, lambda 1.5), one
  step per iteration as the package's ``finetune_execute`` does; then the tuned copy's
  ``regis_net(moving, fixed)`` gives the map and the copy is dropped.

Out-of-memory on the device (CUDA, or the CPU allocator) becomes an EngineError after the
memory held by this run is freed.
"""

from __future__ import annotations

import contextlib
import copy
import gc
from typing import Callable, Optional

from ...errors import EngineError
from .network_field import network_displacement
from .model import make_similarity

IO_LEARNING_RATE = 2e-5


def _is_out_of_memory(error: BaseException) -> bool:
    import torch

    if isinstance(error, EngineError):  # already explained to the user
        return False
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


# Host memory on the CPU, bytes per network voxel beyond the loaded process (measured with
# benchmarks/registration_gradicon_cpu.py, docs/BENCHMARKS.md): a forward pass, one IO step.
CPU_FORWARD_BYTES_PER_VOXEL = 400
CPU_IO_BYTES_PER_VOXEL = 2100


def available_host_memory() -> Optional[int]:
    """``MemAvailable`` from /proc/meminfo in bytes, or None where there is no such file."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_host_memory(device, network_voxels: int, io_steps: int) -> None:
    """On the CPU, refuse (EngineError) a run whose estimated memory exceeds what the host has
    available: the operating system would kill the whole server instead of raising an error
    (on CUDA an out-of-memory is an exception, handled in :func:`displacement`)."""
    if getattr(device, "type", "cpu") != "cpu":
        return
    available = available_host_memory()
    if available is None:
        return
    per_voxel = CPU_IO_BYTES_PER_VOXEL if io_steps > 0 else CPU_FORWARD_BYTES_PER_VOXEL
    needed = per_voxel * int(network_voxels)
    if needed > available:
        what = f"instance optimisation ({io_steps} steps)" if io_steps else "the forward pass"
        raise EngineError(
            f"{what} on the CPU needs about {needed / 2**30:.1f} GiB of memory and this machine has "
            f"{available / 2**30:.1f} GiB available; "
            + ("run it without instance optimisation (io_steps=0) or on a GPU" if io_steps
               else "run it on a GPU or a machine with more free memory"))


def out_of_memory_error(error: BaseException, device, stage: str) -> EngineError:
    """The EngineError telling the user that ``stage`` did not fit in ``device``'s memory."""
    where = "GPU" if getattr(device, "type", "cpu") == "cuda" else "CPU"
    first_line = (str(error).splitlines() or [type(error).__name__])[0]
    return EngineError(
        f"registration ran out of {where} memory on {device} ({stage}): {first_line}. Try fewer "
        f"or no instance-optimisation steps, or a device with more free memory (about 3.4 GB "
        f"without IO and 11.4 GB with LNCC IO at 175^3 on a GPU).")


def free_device_memory(device) -> None:
    """Collect garbage and return cached CUDA blocks to the driver."""
    import torch

    gc.collect()
    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.empty_cache()


def displacement(network, moving, fixed, io_steps: int = 0, similarity: str = "lncc",
                 progress: Optional[Callable[[str, int, int], None]] = None,
                 step_guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext):
    """``u`` (``[3, D0, D1, D2]`` network voxels, see :mod:`.network_field`) mapping the
    fixed-network grid into the moving one. ``moving``/``fixed``: ``[1, 1, D0, D1, D2]``
    tensors on the network's device. ``progress(stage, done, total)`` is called before each IO
    step (it raises JobCancelled on cancel); ``step_guard()`` wraps each device step (e.g. a
    job's device scheduler slot)."""
    import torch

    device = fixed.device
    tuned = None
    out_of_memory = None
    try:
        if io_steps > 0:
            tuned = copy.deepcopy(network)
            tuned.similarity = make_similarity(similarity)
            params = list(tuned.parameters())
            for parameter in params:
                parameter.requires_grad_(True)
            optimiser = torch.optim.Adam(params, lr=IO_LEARNING_RATE)
            for step in range(io_steps):
                if progress is not None:
                    progress("instance optimisation", step, io_steps)
                with step_guard():
                    optimiser.zero_grad()
                    loss = tuned(moving, fixed)
                    loss[0].backward()
                    optimiser.step()
                    del loss
            tuned.clean()
            del optimiser, params
            if progress is not None:
                progress("instance optimisation", io_steps, io_steps)
        model = tuned if tuned is not None else network
        model.identity_map.isIdentity = True  # the package's tag: phi(identity) reads the field directly
        with step_guard(), torch.no_grad():
            phi = model.regis_net(moving, fixed)(model.identity_map)
            return network_displacement(phi, model.identity_map)
    except Exception as error:
        if not _is_out_of_memory(error):
            raise
        stage = f"instance optimisation, {io_steps} steps" if io_steps else "forward pass"
        out_of_memory = out_of_memory_error(error, device, stage)
    finally:
        tuned = None
        if io_steps > 0:
            free_device_memory(device)
    # Here the failed step's frames (and their tensors) are released.
    free_device_memory(device)
    raise out_of_memory
