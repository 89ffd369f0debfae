"""Slice engines' inputs: MedSAM's CT/MR grey levels against its formulas, and prompts in
the network's 1024-pixel frame for non-square and anisotropic slices (no network needed)."""

import numpy as np
import pytest

from slicerfm_backend.engines.sam.model import longest_side_shape, resized_shape
from slicerfm_backend.engines.slicewise.frame import Frame
from slicerfm_backend.engines.slicewise.intensity import Intensity, ct_to_uint8, mr_bounds, mr_to_uint8

pytestmark = pytest.mark.torch


def medsam_ct_formula(volume):
    """MedSAM's pre_CT_MR.py for CT, written out: window L40/W400, min-max of the clipped
    volume to 0..255, uint8."""
    clipped = np.clip(volume, 40 - 200, 40 + 200)
    return np.uint8((clipped - clipped.min()) / (clipped.max() - clipped.min()) * 255.0)


def medsam_mr_formula(volume):
    """The same for MR: 0.5/99.5 percentiles of voxels > 0, min-max, zeros kept at 0."""
    low, high = np.percentile(volume[volume > 0], 0.5), np.percentile(volume[volume > 0], 99.5)
    clipped = np.clip(volume, low, high)
    out = (clipped - clipped.min()) / (clipped.max() - clipped.min()) * 255.0
    out[volume == 0] = 0
    return np.uint8(out)


@pytest.fixture
def a_ct_volume():
    rng = np.random.default_rng(3)
    volume = rng.integers(-1024, 1500, (6, 40, 50)).astype(np.int16)
    volume[0].flat[:401] = np.arange(-160, 241)  # every HU of the window, each step exact
    return volume


def test_ct_grey_levels_follow_medsams_window_formula(a_ct_volume):
    assert np.array_equal(ct_to_uint8(a_ct_volume), medsam_ct_formula(a_ct_volume))
    intensity = Intensity.for_image(a_ct_volume, "CT")
    assert np.array_equal(intensity.to_uint8(a_ct_volume[2]), medsam_ct_formula(a_ct_volume)[2])


def test_ct_window_ends_and_levels_are_exact():
    assert ct_to_uint8(np.array([-1000, -160, -80, 40, 240, 3000])).tolist() == [0, 0, 51, 127, 255, 255]


def test_mr_grey_levels_follow_medsams_percentile_formula():
    rng = np.random.default_rng(4)
    volume = rng.gamma(2.0, 150.0, (5, 30, 40)).astype(np.float32)
    volume[:, :5] = 0  # background
    expected = medsam_mr_formula(volume)
    intensity = Intensity.for_image(volume, "MR")
    assert (intensity.low, intensity.high) == mr_bounds(volume)
    assert np.array_equal(intensity.to_uint8(volume), expected)
    assert np.array_equal(intensity.to_uint8(volume[3]), expected[3])  # slice by slice alike


def test_mr_without_positive_voxels_is_black_and_a_constant_one_white():
    assert mr_bounds(np.zeros((2, 3, 4))) == (0.0, 0.0)
    constant = np.full((2, 3, 4), 7.0)
    assert mr_to_uint8(constant, *mr_bounds(constant)).tolist() == np.full((2, 3, 4), 255).tolist()


def test_unknown_modality_is_ct_when_it_holds_air_in_hounsfield_units(a_ct_volume):
    assert Intensity.for_image(a_ct_volume, "unknown").kind == "CT"
    assert Intensity.for_image(np.abs(a_ct_volume), "unknown").kind == "MR"


def test_a_custom_ct_window_is_used():
    intensity = Intensity.for_image(np.zeros((1, 2, 2)), "CT", window=(400.0, 1800.0))
    assert intensity.to_uint8(np.array([-500.0, 400.0, 1300.0])).tolist() == [0, 127, 255]


def test_medsam_puts_a_box_on_a_non_square_slice_in_1024_space():
    frame = Frame(shape=(300, 700), resized=(1024, 1024), input_size=1024)
    # MedSAM: box / [W, H, W, H] * 1024, as (x0, y0, x1, y1)
    expected = np.array([70, 30, 350, 150]) / np.array([700, 300, 700, 300]) * 1024
    assert np.allclose(frame.box((30, 70, 150, 350)), expected)
    coords, labels = frame.points([(150.0, 350.0, 1), (0.0, 699.0, 0)])
    assert np.allclose(coords, [[350 * 1024 / 700, 150 * 1024 / 300], [699 * 1024 / 700, 0]])
    assert labels.tolist() == [1, 0]


def test_sam_keeps_the_physical_aspect_of_an_anisotropic_slice():
    # a coronal slice of 40 slices at 5 mm by 512 columns at 0.7 mm: 200 mm by 358.4 mm
    h, w = resized_shape((40, 512), (5.0, 0.7), 1024)
    assert (h, w) == (571, 1024)
    frame = Frame(shape=(40, 512), resized=(h, w), input_size=1024)
    x0, y0, x1, y1 = frame.box((10, 100, 30, 400))
    assert np.allclose([x0, x1], [100 * 2, 400 * 2]) and np.allclose([y0, y1], [10 * 571 / 40, 30 * 571 / 40])


def test_sam_square_pixels_give_segment_anythings_own_longest_side_shape():
    # ResizeLongestSide.get_preprocess_shape: scale = 1024 / max(h, w), int(side * scale + 0.5)
    for shape in ((512, 512), (300, 700), (700, 300), (333, 1000), (1, 5)):
        scale = 1024 / max(shape)
        assert resized_shape(shape, (0.8, 0.8), 1024) == (int(shape[0] * scale + 0.5), int(shape[1] * scale + 0.5))
    assert longest_side_shape(300.0, 700.0, 1024) == (439, 1024)


def test_a_padded_box_stays_on_the_resized_slice():
    frame = Frame(shape=(100, 200), resized=(512, 1024), input_size=1024)
    assert frame.box((0, 0, 99, 199), padding=10).tolist() == [0, 0, 1024, 512]
    assert np.allclose(frame.box((10, 20, 20, 40), padding=5),
                       [20 * 5.12 - 5, 10 * 5.12 - 5, 40 * 5.12 + 5, 20 * 5.12 + 5])
