"""torch's own out-of-memory exception is recognised, in a click and in a job (the rest of
the out-of-memory handling is tested torch-free in test_observability.py)."""

import pytest
import torch

from slicerfm_backend.device_memory import is_out_of_memory
from slicerfm_backend.errors import EngineError
from slicerfm_client import errors

pytestmark = pytest.mark.torch


def test_torchs_out_of_memory_error_is_recognised_but_a_host_memory_error_is_not():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(MemoryError())
    assert not is_out_of_memory(EngineError("out of memory: try fewer steps"))  # the engine said it already


def test_a_job_raising_torchs_out_of_memory_error_fails_with_out_of_memory(a_server):
    def work(ctx):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    job = a_server.state.jobs.submit("demo", work, "cpu")
    with pytest.raises(errors.JobFailedError, match="ran out of memory") as failed:
        a_server.client().wait_job(job.id, poll_s=0.01)
    assert failed.value.code == "out_of_memory"
