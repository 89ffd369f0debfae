"""The classic engine's check of a refining positive click against the segment so far
(``engines/classic/edit.py``), on small synthetic volumes."""

import numpy as np

from slicerfm_backend.engines.classic.edit import add_class, checked_addition

SPACING = np.array([1.0, 1.0, 1.0])


def a_two_tissue_volume():
    """(20, 20, 40) float32: tissue A (100) for i < 20, tissue B (160) beyond, noise sigma 2;
    the segment so far is A's slab i < 8."""
    rng = np.random.default_rng(0)
    img = rng.normal(100.0, 2.0, (20, 20, 40)).astype(np.float32)
    img[:, :, 20:] += 60.0
    segment = np.zeros(img.shape, bool)
    segment[:, :, :8] = True
    return img, segment


def test_a_click_like_the_segment_adds_only_what_looks_like_the_segment():
    img, segment = a_two_tissue_volume()
    click = (10, 10, 14)
    wide = (100.0, 50.0, 200.0)  # a click class that takes in both tissues
    grown = np.zeros(img.shape, bool)
    grown[:, :, 8:] = True  # what growing with that class reached: A and B
    added = checked_addition(img, img, segment, grown, click, wide, SPACING, 2.0, [], 7.0)
    assert added[click]
    assert added[:, :, 8:20].mean() > 0.95  # the rest of tissue A
    assert not added[:, :, 21:].any()  # none of tissue B


def test_a_click_unlike_the_segment_keeps_its_own_class():
    img, segment = a_two_tissue_volume()
    click = (10, 10, 30)  # in tissue B, far from the segment's intensities
    own = (160.0, 150.0, 170.0)
    assert add_class(img, segment, click, own, SPACING, 2.0) is own
    grown = np.zeros(img.shape, bool)
    grown[:, :, 20:] = True
    added = checked_addition(img, img, segment, grown, click, own, SPACING, 2.0, [], 23.0)
    assert np.array_equal(added, grown)


def test_the_check_never_adds_what_the_click_did_not_grow():
    img, segment = a_two_tissue_volume()
    click = (10, 10, 12)
    grown = np.zeros(img.shape, bool)
    grown[5:15, 5:15, 9:16] = True
    added = checked_addition(img, img, segment, grown, click, (100.0, 50.0, 200.0), SPACING, 2.0, [], 5.0)
    assert not (added & ~grown & ~segment).any()
