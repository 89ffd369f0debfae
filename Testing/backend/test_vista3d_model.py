"""VISTA3D checkpoints: the released layout (a plain state_dict of vista3d132) loads through
the engine's real path; wrong files are refused with messages that say why."""

import pytest
import torch

from slicerfm_backend.engines.vista3d.engine import Vista3DEngine
from slicerfm_backend.engines.vista3d.model import build_network
from slicerfm_backend.errors import CheckpointError, WeightsMissingError

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    torch.manual_seed(5)
    model = build_network()
    path = tmp_path_factory.mktemp("vista3d") / "model.pt"
    torch.save(model.state_dict(), path)
    return path, model


def test_released_layout_loads_strictly(released, monkeypatch):
    path, model = released
    monkeypatch.delenv("SLICERFM_CHECKPOINTS", raising=False)
    engine = Vista3DEngine("cpu", {"checkpoint": str(path)})
    assert engine.weights_status() == (True, str(path))
    engine.load()
    state = model.state_dict()
    key = "class_head.mlp.0.weight" if "class_head.mlp.0.weight" in state else next(iter(state))
    assert torch.equal(engine.network.model.state_dict()[key], model.state_dict()[key])
    assert engine.network.precision == "fp32 (CPU)" and not engine.network.amp


def test_wrong_checkpoints_are_refused(released, tmp_path):
    path, model = released
    state = model.state_dict()
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"model": state}, wrapped)
    with pytest.raises(CheckpointError, match="training checkpoint"):
        Vista3DEngine("cpu", {"checkpoint": str(wrapped)}).load()
    partial = tmp_path / "partial.pt"
    torch.save({k: v for k, v in state.items() if k.startswith("class_head")}, partial)
    with pytest.raises(CheckpointError, match="missing key"):
        Vista3DEngine("cpu", {"checkpoint": str(partial)}).load()
    truncated = tmp_path / "truncated.pt"
    with open(path, "rb") as source:
        truncated.write_bytes(source.read(4096))
    with pytest.raises(CheckpointError, match="unreadable"):
        Vista3DEngine("cpu", {"checkpoint": str(truncated)}).load()
    with pytest.raises(WeightsMissingError, match="does not exist"):
        Vista3DEngine("cpu", {"checkpoint": str(tmp_path / "nope.pt")}).load()


def test_missing_store_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.delenv("SLICERFM_CHECKPOINTS", raising=False)
    engine = Vista3DEngine("cpu", {"weights_dir": str(tmp_path)})
    present, detail = engine.weights_status()
    assert not present and "weights fetch vista3d" in detail
    with pytest.raises(WeightsMissingError, match="weights fetch vista3d"):
        engine.load()
