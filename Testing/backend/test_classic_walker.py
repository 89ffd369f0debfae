"""The classic engine's random-walk check of a refining click's proposal
(``engines/classic/walker.py``), on small synthetic volumes."""

import numpy as np

from slicerfm_backend.engines.classic.walker import trim_change

SPACING = np.array([1.0, 1.0, 1.0])


def a_lobe_behind_a_neck():
    """(24, 24, 48) float32, tissue 100 (noise sigma 2) in a box of background 160: a segment
    so far (i < 10), the part the click marks next to it (10 <= i < 22) closed by edges, and,
    through a 2x2 voxel neck at i = 22..25, a slab of the same tissue beyond (i >= 26).
    Returns ``(image, segment, tissue)``."""
    rng = np.random.default_rng(0)
    img = rng.normal(160.0, 2.0, (24, 24, 48)).astype(np.float32)
    tissue = np.zeros(img.shape, bool)
    tissue[4:20, 4:20, 2:22] = True
    tissue[11:13, 11:13, 22:26] = True  # the neck
    tissue[2:22, 2:22, 26:48] = True  # the slab
    img[tissue] = rng.normal(100.0, 2.0, int(tissue.sum()))
    segment = tissue.copy()
    segment[:, :, 10:] = False
    return img, segment, tissue


def test_a_leak_through_a_narrow_neck_whose_edge_the_image_does_not_support_is_not_added():
    img, segment, tissue = a_lobe_behind_a_neck()
    proposal = tissue & ~segment
    proposal[:, :, 40:] = False  # growing stopped inside the slab (its reach), not at an edge
    click = (12, 12, 16)
    kept = trim_change(img, segment, proposal, click, True, [((12, 12, 5), True)], SPACING, 2.0)
    assert kept[click]
    assert kept[4:20, 4:20, 10:22].mean() > 0.9  # the part the click marks, closed by edges
    assert kept[:, :, 28:].sum() < 0.05 * proposal[:, :, 28:].sum()  # not the slab behind the neck
    assert not (kept & ~proposal).any()


def test_a_removal_keeps_the_part_joined_to_the_rest_of_the_segment_without_an_edge():
    img, _, tissue = a_lobe_behind_a_neck()
    segment = tissue.copy()
    proposal = tissue.copy()
    proposal[:, :, :16] = False  # the click's basin: the slab, the neck and part of the body
    negative = (12, 12, 40)  # its depth in the basin: 8 voxels; the basin stands within twice that
    kept = trim_change(img, segment, proposal, negative, False, [((12, 12, 5), True)], SPACING, 2.0)
    assert kept[negative]
    assert kept[:, :, 28:].sum() > 0.9 * proposal[:, :, 28:].sum()  # the slab goes
    assert kept[4:20, 4:20, 16:22].mean() < 0.2  # the body, joined to the rest without an edge, stays
    assert not (kept & ~proposal).any()


def test_the_check_never_adds_what_the_click_did_not_propose_and_keeps_the_click():
    img, segment, tissue = a_lobe_behind_a_neck()
    proposal = tissue & ~segment
    click = (12, 12, 36)  # in the slab: a part the user wants, closed by edges
    kept = trim_change(img, segment, proposal, click, True, [], SPACING, 2.0)
    assert kept[click]
    assert kept[4:20, 4:20, 28:46].mean() > 0.9
    assert not (kept & ~proposal).any()


def test_a_large_proposal_is_walked_on_blocks_and_still_decided():
    rng = np.random.default_rng(1)
    img = rng.normal(100.0, 2.0, (60, 60, 60)).astype(np.float32)
    segment = np.zeros(img.shape, bool)
    segment[:, :, :10] = True
    proposal = np.zeros(img.shape, bool)
    proposal[:, :, 10:50] = True  # 144,000 voxels: over the walk's budget
    kept = trim_change(img, segment, proposal, (30, 30, 20), True, [], SPACING, 2.0)
    assert kept[30, 30, 20] and kept.sum() > 0 and not (kept & ~proposal).any()
