"""Our VISTA3D inference equals MONAI's own (``sliding_window_inference`` +
``VistaPostTransformd`` for class prompts, ``point_based_window_inferer`` for points and for
class + points) on the same random weights, at small sizes (32^3 windows, narrow network)."""

import numpy as np
import pytest
import torch
from monai.apps.vista3d.inferer import point_based_window_inferer
from monai.apps.vista3d.transforms import VistaPostTransformd
from monai.inferers import sliding_window_inference

from slicerfm_backend.engines.vista3d import auto
from slicerfm_backend.engines.vista3d import labels as labels_mod
from slicerfm_backend.engines.vista3d import points as points_mod

from vista3d_helpers import ROI, small_network

pytestmark = pytest.mark.torch

NET = small_network()


def volume(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def monai_auto(vol, ids):
    with torch.no_grad():
        out = sliding_window_inference(torch.from_numpy(vol)[None, None], (ROI,) * 3, 1, NET.model,
                                       overlap=0.25, mode="constant", transpose=True,
                                       class_vector=torch.tensor([[i] for i in ids]))
    post = VistaPostTransformd(keys="pred")({"pred": out[0], "label_prompt": torch.tensor(ids)})
    return post["pred"][0].numpy().astype(np.uint8)


def test_class_prompts_equal_monai_sliding_window_and_post_transform():
    vol = volume((40, 20, 32))  # 2 windows along x, y padded to 32 (as MONAI pads)
    ids = [1, 3, 62]
    reference = monai_auto(vol, ids)
    one_group = auto.run(vol, ids, NET.classes, roi=(ROI,) * 3)
    assert np.array_equal(one_group, reference)
    assert len(np.unique(reference)) > 1
    # a budget of three single-class bands (counts + 2 classes) splits the classes in two groups
    per_class = 4 * ROI * 32 * 32  # float32 band of one class: 32 planes x padded 32 x 32
    the_plan = auto.plan(vol.shape, ids, (ROI,) * 3, 0.25, accumulator_bytes=3 * per_class)
    assert the_plan.band_axis == 0 and [len(g) for g in the_plan.groups] == [2, 1]
    assert np.array_equal(auto.run(vol, ids, NET.classes, roi=(ROI,) * 3, the_plan=the_plan), reference)


def test_window_starts_match_monai():
    from monai.data.utils import dense_patch_slices

    for size in (32, 33, 57, 100, 128):
        ours = auto.scan_starts(size, 32, 0.25)
        theirs = sorted({s[0].start for s in dense_patch_slices((size,), (32,), (24,))})
        assert ours == theirs, size


def _monai_points(vol, points, marks, prompt_class, prev, class_vector=None):
    out = point_based_window_inferer(
        inputs=torch.from_numpy(vol)[None, None], roi_size=[ROI] * 3, predictor=NET,
        point_coords=torch.tensor(points, dtype=torch.float32)[None], point_labels=torch.tensor(marks)[None],
        class_vector=class_vector, prompt_class=torch.tensor([[prompt_class]]),
        prev_mask=None if prev is None else torch.from_numpy(np.where(prev, 1.0, -1.0).astype(np.float32))[None, None],
        point_start=len(points) - 1, transpose=True)
    return out.as_tensor()[0, 0]


def test_point_prompts_equal_monai_point_inferer():
    """Zero-shot correction of a previous mask, on a volume larger than one window: our crop
    around the newest click gives the same mask as MONAI's inferer on the whole volume."""
    vol = volume((48, 40, 36), seed=2)
    previous = np.zeros(vol.shape, bool)
    previous[10:30, 10:25, 8:20] = True
    points = np.array([[15.0, 12.0, 10.0], [30.0, 20.0, 18.0]])
    positive = [True, False]
    reference = _monai_points(vol, points, [1, 0], labels_mod.ZERO_SHOT_CLASS, previous) > 0
    box = points_mod.crop_for_point(points[-1], vol.shape, (ROI,) * 3)
    crop = tuple(slice(a, b) for a, b in zip(*box))
    ours = points_mod.infer(NET, vol[crop], points - np.asarray(box[0]), positive, None, previous[crop], (ROI,) * 3)
    assert np.array_equal(ours, reference.numpy()[crop])
    outside = np.ones(vol.shape, bool)
    outside[crop] = False
    assert np.array_equal(reference.numpy()[outside], previous[outside])  # only the window changes


def test_class_and_points_equal_monai_and_special_labels():
    vol = volume((32, 32, 32), seed=3)
    points = np.array([[16.0, 16.0, 16.0]])
    cls = labels_mod.class_id("hepatic vessel")  # a special class: labels 2/3
    assert labels_mod.point_label_values(cls, [True, False]) == [3, 2]
    reference = _monai_points(vol, points, [3], cls, None, class_vector=torch.tensor([[cls]]))
    ours = points_mod.infer(NET, vol, points, [True], "hepatic vessel", np.zeros(vol.shape, bool), (ROI,) * 3)
    assert np.array_equal(ours, (reference > 0).numpy())
