"""The medsam and sam engines on segment-anything's real network with random weights.

Equivalence: our pipeline against direct calls of segment-anything's image encoder, prompt
encoder and mask decoder on the same weights and slice -- for MedSAM written out from its
``MedSAM_Inference.py`` recipe, for SAM through the package's own ``SamPredictor``. The
network is ViT-B (depth, width, heads, windows, neck as released) built once for a 128-pixel
input instead of 1024 (the package's modules take the size), so each encoder pass costs 1/64
of a full one. Checkpoint loading uses the full-size ViT-B, saved as MedSAM and SAM release it.
"""

import importlib
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import transform

from slicerfm_backend.engines.base import Prompt
from slicerfm_backend.engines.medsam.engine import MedSamEngine
from slicerfm_backend.engines.medsam.model import MedSamNetwork
from slicerfm_backend.engines.sam.engine import SamEngine
from slicerfm_backend.engines.sam.model import SamSliceNetwork
from slicerfm_backend.engines.slicewise import sam_network
from slicerfm_backend.errors import CheckpointError, WeightsMissingError
from slicerfm_backend.evaluation.inprocess import InProcessSession
from slicewise_helpers import small_sam

pytestmark = pytest.mark.torch

SIZE = 128


@pytest.fixture(scope="module")
def a_small_vit_b():
    return small_sam(SIZE)


@pytest.fixture
def a_slice():
    """A 50 x 70 uint8 slice: noise with a bright rectangle."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 90, (50, 70)).astype(np.uint8)
    pixels[15:35, 20:50] = 220
    return pixels


def medsam_reference(model, pixels, box_xyxy, points=None):
    """MedSAM_Inference.py's steps with direct calls: three-channel cubic resize to S, uint8,
    min-max to [0, 1], image encoder; box / [W, H, W, H] * S; prompt encoder; mask decoder
    (multimask_output=False); sigmoid; bilinear resize to H x W; > 0.5."""
    h, w = pixels.shape
    img = transform.resize(np.repeat(pixels[:, :, None], 3, axis=-1), (SIZE, SIZE), order=3,
                           preserve_range=True, anti_aliasing=True).astype(np.uint8)
    img = (img - img.min()) / np.clip(img.max() - img.min(), a_min=1e-8, a_max=None)
    tensor = torch.tensor(img).float().permute(2, 0, 1).unsqueeze(0)
    box = np.asarray(box_xyxy, float) / np.array([w, h, w, h]) * SIZE
    with torch.inference_mode():
        embedding = model.image_encoder(tensor)
        sparse, dense = model.prompt_encoder(points=points, boxes=torch.as_tensor(box[None], dtype=torch.float),
                                             masks=None)
        low, _ = model.mask_decoder(image_embeddings=embedding, image_pe=model.prompt_encoder.get_dense_pe(),
                                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                    multimask_output=False)
        probability = F.interpolate(torch.sigmoid(low), size=(h, w), mode="bilinear", align_corners=False)
    return tensor[0], embedding, low, (probability[0, 0] > 0.5).numpy()


def test_medsam_pipeline_equals_direct_calls_for_a_box_and_for_a_box_with_points(a_small_vit_b, a_slice):
    net = MedSamNetwork(a_small_vit_b)
    prepared, frame = net.prepare(a_slice, (1.0, 1.0))
    (embedding,) = net.encode([prepared])
    box_rc = (15, 20, 34, 49)  # rows 15..34, columns 20..49
    ref_input, ref_embedding, ref_low, ref_mask = medsam_reference(a_small_vit_b, a_slice, (20, 15, 49, 34))
    assert torch.equal(prepared, ref_input)  # here the one-channel resize is exact
    assert torch.equal(embedding, ref_embedding)
    low = net.decode_logits(embedding, frame.box(box_rc), None, None)
    assert torch.allclose(low, ref_low, atol=1e-5)
    assert np.array_equal(net.to_mask(low, frame), ref_mask)

    points = [(25.0, 30.0, 1), (40.0, 10.0, 0)]  # (row, col, label)
    coords, labels = frame.points(points)
    expected_coords = torch.tensor([[[30 * SIZE / 70, 25 * SIZE / 50], [10 * SIZE / 70, 40 * SIZE / 50]]])
    _, _, ref_low, ref_mask = medsam_reference(a_small_vit_b, a_slice, (20, 15, 49, 34),
                                               points=(expected_coords, torch.tensor([[1, 0]])))
    low = net.decode_logits(embedding, frame.box(box_rc), coords, labels)
    assert torch.allclose(low, ref_low, atol=1e-5)
    assert np.array_equal(net.to_mask(low, frame), ref_mask)


def test_medsam_one_channel_resize_differs_from_three_channels_by_at_most_one_level():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (256, 256)).astype(np.uint8)
    ours = transform.resize(pixels, (512, 512), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
    theirs = transform.resize(np.repeat(pixels[:, :, None], 3, -1), (512, 512), order=3, preserve_range=True,
                              anti_aliasing=True).astype(np.uint8)
    difference = np.abs(ours.astype(int) - theirs[..., 0].astype(int))
    assert difference.max() <= 1 and np.count_nonzero(difference) < 0.001 * difference.size


@pytest.fixture
def a_sam_predictor_class(monkeypatch):
    """segment-anything's own ``SamPredictor``, importable without torchvision: its two
    torchvision calls (``to_pil_image`` of a uint8 HWC array, ``resize`` of a PIL image to
    [h, w], bilinear by default) are stood in by the PIL calls torchvision makes for them.
    Everything else is the package's code; sys.modules is restored afterwards."""
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.to_pil_image = lambda array: Image.fromarray(array)
    functional.resize = lambda image, size: image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional
    vision = types.ModuleType("torchvision")
    vision.transforms = transforms
    build, modeling = sam_network.modules()
    package = sys.modules[sam_network.PRIVATE_PACKAGE]
    for name, module in (("torchvision", vision), ("torchvision.transforms", transforms),
                         ("torchvision.transforms.functional", functional),
                         ("segment_anything", package), ("segment_anything.modeling", modeling)):
        monkeypatch.setitem(sys.modules, name, module)
    for name in [n for n in sys.modules if n.startswith(sam_network.PRIVATE_PACKAGE + ".utils")
                 or n == sam_network.PRIVATE_PACKAGE + ".predictor"]:
        monkeypatch.delitem(sys.modules, name)
    predictor = importlib.import_module(sam_network.PRIVATE_PACKAGE + ".predictor")
    yield predictor.SamPredictor
    for name in [n for n in sys.modules if n.startswith(sam_network.PRIVATE_PACKAGE + ".utils")
                 or n == sam_network.PRIVATE_PACKAGE + ".predictor"]:
        del sys.modules[name]


def test_sam_pipeline_equals_sam_predictor_for_a_box_a_point_and_points(a_small_vit_b, a_slice, a_sam_predictor_class):
    net = SamSliceNetwork(a_small_vit_b)
    prepared, frame = net.prepare(a_slice, (0.7, 0.7))
    (embedding,) = net.encode([prepared])
    predictor = a_sam_predictor_class(a_small_vit_b)
    predictor.set_image(np.repeat(a_slice[:, :, None], 3, axis=-1))
    assert frame.resized == predictor.input_size and frame.shape == predictor.original_size
    assert torch.equal(embedding, predictor.features)

    cases = [  # (box rc, points (row, col, label), multimask)
        ((15, 20, 34, 49), [], False),
        (None, [(25.0, 30.0, 1)], True),
        (None, [(25.0, 30.0, 1), (5.0, 5.0, 0)], False),
        ((15, 20, 34, 49), [(25.0, 30.0, 1), (40.0, 10.0, 0)], False),
    ]
    for box_rc, points, multimask in cases:
        coords, labels = frame.points(points)
        low = net.decode_logits(embedding, None if box_rc is None else frame.box(box_rc), coords, labels, multimask)
        masks, scores, ref_low = predictor.predict(
            point_coords=None if not points else np.array([[c, r] for r, c, _ in points], float),
            point_labels=None if not points else np.array([label for _, _, label in points]),
            box=None if box_rc is None else np.array([box_rc[1], box_rc[0], box_rc[3], box_rc[2]], float),
            multimask_output=multimask)
        best = int(np.argmax(scores)) if multimask else 0
        assert np.allclose(low[0, 0].numpy(), ref_low[best], atol=1e-5)
        assert np.array_equal(net.to_mask(low, frame), masks[best])


def test_an_engine_interaction_encodes_a_slice_once_and_propagates_on_the_real_network(a_small_vit_b):
    engine = MedSamEngine("cpu", {})
    engine.network = MedSamNetwork(a_small_vit_b)
    rng = np.random.default_rng(1)
    volume = rng.normal(0, 30, (6, 40, 48)).astype(np.int16)
    volume[1:5, 10:30, 12:36] += 250
    s = InProcessSession(engine, volume, (3.0, 0.8, 0.8), "CT")
    first = s.prompt(Prompt("box", box_kji=((3, 10, 12), (3, 29, 35))))
    assert first.bbox == ((3, 0, 0), (4, 40, 48)) and first.mask.shape == (1, 40, 48)
    assert first.timings_ms["encoder"] > 0
    second = s.prompt(Prompt("point", positive=False, point_kji=(3.0, 2.0, 2.0)))
    store = s.cache["slicewise"].embeddings
    assert (store.misses, store.hits) == (1, 1) and "encoder" not in second.timings_ms
    assert store.bytes == 256 * (SIZE // 16) ** 2 * 4 + 64  # one float32 embedding and its frame
    s.mask.set_region(((3, 10, 12), (4, 30, 36)), np.ones((1, 20, 24), bool))  # a start to propagate from
    done = s.propagate({"max_slices": 1})
    assert done.summary["slices_computed"] + 1 == store.misses
    assert set(done.summary["stopped"].values()) <= {"limit", "vanished", "jumped", "unchanged"}


@pytest.fixture(scope="module")
def a_vit_b_checkpoint(tmp_path_factory):
    """A full-size ViT-B state dict with random weights, saved as MedSAM and SAM ship theirs."""
    torch.manual_seed(0)
    state = sam_network.build("vit_b").state_dict()
    path = tmp_path_factory.mktemp("medsam") / "medsam_vit_b.pth"
    torch.save(state, path)
    return path, state


def test_a_released_layout_checkpoint_loads_strictly_for_medsam_and_sam_vit_b(a_vit_b_checkpoint, monkeypatch,
                                                                              caplog):
    path, state = a_vit_b_checkpoint
    from slicerfm_backend.engine_core.manager import EngineManager
    from slicerfm_backend.engines import registry

    manager = EngineManager(registry.SEGMENTATION, ["medsam", "sam"], "cpu",
                            checkpoints={"medsam": str(path), "sam": str(path)},
                            engine_options={"sam": {"model": "vit_b"}})
    medsam = manager.get("medsam")
    key = "mask_decoder.iou_prediction_head.layers.0.weight"
    assert torch.equal(medsam.network.model.state_dict()[key], state[key])
    assert medsam.network.input_size == 1024 and medsam.network.precision == "fp32"
    assert torch.equal(manager.get("sam").network.model.state_dict()[key], state[key])
    assert "medsam runs on the CPU" in caplog.text and "sam runs on the CPU" in caplog.text  # says it is slow


@pytest.mark.parametrize("damage,message", [
    ("rename", r"1 missing key.*image_encoder\.pos_embed.*1 unexpected key.*image_encoder\.extra"),
    ("shape", r"shape mismatch.*prompt_encoder\.not_a_point_embed\.weight: file \(1, 8\), network \(1, 256\)"),
    ("training", r"training checkpoint"),
    ("truncate", r"unreadable"),
])
def test_a_damaged_checkpoint_is_refused_with_what_is_wrong(a_vit_b_checkpoint, tmp_path, damage, message):
    from slicerfm_backend.engines.medsam.model import load_network

    path, state = a_vit_b_checkpoint
    broken = tmp_path / "broken.pth"
    if damage == "truncate":
        data = path.read_bytes()
        broken.write_bytes(data[: len(data) // 3])
    else:
        state = dict(state)
        if damage == "rename":
            state["image_encoder.extra"] = state.pop("image_encoder.pos_embed")
        elif damage == "shape":
            state["prompt_encoder.not_a_point_embed.weight"] = torch.zeros(1, 8)
        else:
            state = {"model": state, "optimizer": {}, "epoch": 3}
        torch.save(state, broken)
    with pytest.raises(CheckpointError, match=message):
        load_network(broken)


def test_sam_variants_name_their_catalogue_files_and_missing_weights_name_the_fix(tmp_path):
    assert SamEngine("cpu", {}).weights_name() == "sam-vit-h"
    engine = SamEngine("cpu", {"model": "vit_b", "weights_dir": str(tmp_path)})
    present, detail = engine.weights_status()
    assert not present and "weights fetch sam-vit-b" in detail
    with pytest.raises(WeightsMissingError, match="weights import medsam"):
        MedSamEngine("cpu", {"weights_dir": str(tmp_path)}).load()


def test_fp16_is_refused_on_the_cpu(a_small_vit_b):
    with pytest.raises(Exception, match="fp16 needs CUDA"):
        MedSamNetwork(a_small_vit_b, "cpu", "fp16")
    assert MedSamNetwork(a_small_vit_b, "cpu", "bf16").precision == "fp32"


def test_listing_the_engines_imports_neither_torch_nor_segment_anything():
    import subprocess

    code = ("import sys; from slicerfm_backend.engines.registry import SEGMENTATION; "
            "[SEGMENTATION.engine_class(n).capabilities for n in ('medsam', 'sam')]; "
            "print('torch' in sys.modules, any('segment_anything' in m for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
