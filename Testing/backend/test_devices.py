"""Device ``auto``: CUDA, then Apple MPS where torch has it, then the CPU, and the
``engines`` command says which (needs torch: its device queries are faked here)."""

import pytest

from slicerfm_backend.engine_core import devices

pytestmark = pytest.mark.torch


@pytest.fixture
def a_torch_that_sees(monkeypatch):
    """Make torch report the given devices: ``see(cuda=..., mps=...)``."""
    import torch

    def see(cuda: bool, mps: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Test GPU")
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return see


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_picks_cuda_then_mps_then_the_cpu_and_says_why(a_torch_that_sees, cuda, mps, expected):
    a_torch_that_sees(cuda, mps)
    choice = devices.resolve_device("auto")
    assert choice.device == expected and choice.reason.startswith("auto")
    assert devices.resolve_device("cuda:1") == devices.DeviceChoice("cuda:1", "as requested")


def test_the_engines_command_says_which_device_auto_chose(a_torch_that_sees, capsys):
    from slicerfm_backend import cli

    a_torch_that_sees(False, True)
    assert cli.main(["engines", "--device", "auto"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "device: mps (auto: Apple MPS (no CUDA))"
    assert "classic" in out and "registration" in out
