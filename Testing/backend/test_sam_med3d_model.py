"""The real SAM-Med3D network (medim, random weights) through the engine's loading path.

One checkpoint with random weights is saved in the released layout
(``{"model_state_dict": ...}``); broken variants of it must fail with a message that says
what is wrong and how to fix it. The end-to-end run checks shapes and caching, not quality.
"""

import numpy as np
import pytest
import torch

from slicerfm_backend.engine_core.manager import EngineManager
from slicerfm_backend.engines.base import Prompt
from slicerfm_backend.engines.sam_med3d.engine import SamMed3DEngine
from slicerfm_backend.engines.sam_med3d.model import build_network, load_network
from slicerfm_backend.errors import CheckpointError, WeightsMissingError
from slicerfm_backend.evaluation.inprocess import InProcessSession

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def a_state_dict():
    torch.manual_seed(0)
    return build_network().state_dict()


@pytest.fixture(scope="module")
def a_checkpoint(a_state_dict, tmp_path_factory):
    path = tmp_path_factory.mktemp("sam") / "sam_med3d_turbo.pth"
    torch.save({"model_state_dict": a_state_dict}, path)
    return path


def test_a_checkpoint_in_the_released_layout_loads_strictly(a_checkpoint, a_state_dict):
    network = load_network(a_checkpoint)
    key = "mask_decoder.iou_prediction_head.layers.0.weight"
    assert torch.equal(network.model.state_dict()[key], a_state_dict[key])
    assert sum(p.numel() for p in network.model.parameters()) > 100_000_000


def test_a_renamed_key_is_reported_as_missing_and_unexpected(a_state_dict, tmp_path):
    state = dict(a_state_dict)
    state["image_encoder.extra.weight"] = state.pop("image_encoder.pos_embed")
    path = tmp_path / "renamed.pth"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(CheckpointError, match=r"1 missing key.*image_encoder\.pos_embed.*"
                                              r"1 unexpected key.*image_encoder\.extra\.weight"):
        load_network(path)


def test_a_tensor_of_the_wrong_shape_is_named(a_state_dict, tmp_path):
    state = dict(a_state_dict)
    key = "prompt_encoder.not_a_point_embed.weight"
    state[key] = torch.zeros(1, 256)
    path = tmp_path / "shape.pth"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(CheckpointError,
                       match=r"shape mismatch.*not_a_point_embed\.weight: file \(1, 256\), network \(1, 384\)"):
        load_network(path)


def test_a_truncated_file_is_reported_as_unreadable(a_checkpoint, tmp_path):
    path = tmp_path / "truncated.pth"
    data = a_checkpoint.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="unreadable.*weights fetch sam-med3d"):
        load_network(path)


def test_a_file_without_model_state_dict_is_refused(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"state_dict": {"a": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="expected a dict with 'model_state_dict'"):
        load_network(path)


def test_missing_weights_name_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.delenv("SLICERFM_CHECKPOINTS", raising=False)
    engine = SamMed3DEngine("cpu", {"weights_dir": str(tmp_path)})
    present, detail = engine.weights_status()
    assert not present and "weights fetch sam-med3d" in detail
    with pytest.raises(WeightsMissingError, match="weights fetch sam-med3d"):
        engine.load()


def test_the_real_network_segments_a_small_volume_and_reuses_its_embedding(a_checkpoint, monkeypatch):
    engine = SamMed3DEngine("cpu", {"checkpoint": str(a_checkpoint)})
    engine.load()
    rng = np.random.default_rng(0)
    volume = rng.normal(0, 20, (40, 48, 48)).astype(np.int16)
    volume[15:25, 18:30, 18:30] += 200
    session = InProcessSession(engine, volume, (2.0, 1.0, 1.0), "CT")
    first = session.prompt(Prompt(kind="point", point_kji=(20.0, 24.0, 24.0)))
    assert first.mask.dtype == bool
    assert first.mask.shape == tuple(b - a for a, b in zip(*first.bbox))
    assert first.bbox[0] == (0, 0, 0) and first.bbox[1] == volume.shape  # the crop covers it all
    assert first.timings_ms["encoder"] > 0
    second = session.prompt(Prompt(kind="point", positive=False, point_kji=(5.0, 5.0, 5.0)))
    store = session.cache["sam_med3d"]
    assert (store.embeddings.misses, store.embeddings.hits) == (1, 1)
    assert second.timings_ms["encoder"] == 0 and second.timings_ms["decoder"] > 0


def test_the_registry_lists_sam_med3d_without_loading_it_and_refuses_it_without_weights(tmp_path, monkeypatch):
    from slicerfm_backend.engines import registry
    from slicerfm_backend.errors import DomainError

    monkeypatch.delenv("SLICERFM_CHECKPOINTS", raising=False)
    manager = EngineManager(registry.SEGMENTATION, ["sam-med3d"], "cpu", weights_dir=str(tmp_path))
    (entry,) = manager.describe()
    assert entry["needs_weights"] and not entry["weights_present"] and not entry["loaded"]
    assert set(entry["prompt_kinds"]) == {"point", "box"} and set(entry["modalities"]) == {"CT", "MR"}
    assert "weights fetch sam-med3d" in entry["weights_detail"]
    with pytest.raises(DomainError, match="weights fetch sam-med3d") as refused:
        manager.get("sam-med3d")
    assert refused.value.code == "engine_unavailable"


def test_the_registry_loads_sam_med3d_from_a_checkpoint_override(a_checkpoint, tmp_path):
    from slicerfm_backend.engines import registry

    manager = EngineManager(registry.SEGMENTATION, ["sam-med3d"], "cpu", weights_dir=str(tmp_path),
                            checkpoints={"sam-med3d": str(a_checkpoint)})
    engine = manager.get("sam-med3d")
    assert engine.network is not None and manager.describe()[0]["loaded"]


def test_listing_the_engine_imports_neither_torch_nor_medim():
    import subprocess
    import sys

    code = ("import sys; from slicerfm_backend.engines.registry import SEGMENTATION; "
            "SEGMENTATION.engine_class('sam-med3d').capabilities; "
            "print('torch' in sys.modules, 'medim' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
