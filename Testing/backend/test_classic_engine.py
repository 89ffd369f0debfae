"""The built-in ``classic`` engine, driven in-process the way the server drives it.

Quality on the real sample CT (simulated user, same clicker as ``slicerfm-backend evaluate``),
the local nature of each click (a positive click only adds, a negative click only removes,
and only near itself), boxes, and the bound on the work of one click.
"""

import numpy as np
import pytest

from slicerfm_backend.engines.base import Prompt
from slicerfm_backend.engines.classic.engine import MAX_EXTENT_MM, MAX_ROI_VOXELS, ClassicEngine
from slicerfm_backend.evaluation.evaluate import load_case
from slicerfm_backend.evaluation.inprocess import InProcessSession
from slicerfm_backend.evaluation.simulate import simulate_clicks
from slicerfm_client.geometry import bbox_slices

CT_ORGANS = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 5, "stomach": 6}
SPACING = (2.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def a_ct_case(a_data_dir):
    ct = a_data_dir / "abdomen_ct"
    image, _, _, spacing = load_case(str(ct / "example_ct.nii.gz"),
                                     str(ct / "example_seg_fast_force_split.nii.gz"), 1)
    labels, _, _, _ = load_case(str(ct / "example_seg_fast_force_split.nii.gz"),
                                str(ct / "example_seg_fast_force_split.nii.gz"), 1)
    return image, labels, spacing


@pytest.fixture(scope="module")
def a_dice_table(a_ct_case):
    """Per-organ Dice after each of 5 simulated clicks on the sample CT."""
    image, labels, spacing = a_ct_case
    cache = {}
    table = {}
    for name, label in CT_ORGANS.items():
        session = InProcessSession(ClassicEngine(), image, spacing, "CT", cache=cache)
        table[name] = simulate_clicks(labels == label, spacing, session.interact, 5)["dice"]
    return table


def test_five_clicks_reach_the_goal_on_the_ct_organs(a_dice_table):
    mean5 = np.mean([dices[-1] for dices in a_dice_table.values()])
    assert mean5 >= 0.85, a_dice_table


def test_every_organ_is_useful_after_one_click_and_better_after_five(a_dice_table):
    for name, dices in a_dice_table.items():
        assert dices[0] >= 0.4, (name, dices)
        assert dices[-1] > dices[0], (name, dices)


def test_no_click_wrecks_the_result(a_dice_table):
    for name, dices in a_dice_table.items():
        assert all(b >= a - 0.05 for a, b in zip(dices, dices[1:])), (name, dices)


def phantom():
    """Int16 (60, 80, 80) volume at SPACING mm: fat (-100 HU) around two soft-tissue
    (50 HU) blobs -- a ball of radius 15 mm and a box -- joined by a thin 50 HU bridge,
    plus a separate bright (300 HU) ball; noise sigma 5 HU."""
    rng = np.random.default_rng(1)
    volume = rng.normal(-100, 5, (60, 80, 80))
    k, j, i = np.ogrid[:60, :80, :80]
    ball = ((k - 30) * SPACING[0]) ** 2 + (j - 40) ** 2 + (i - 25) ** 2 <= 15**2
    volume[ball] += 150
    volume[22:38, 30:50, 50:70] += 150  # the box blob
    volume[29:31, 39:41, 38:52] += 150  # the bridge, 4 x 2 x 2 mm thick
    bright = ((k - 30) * SPACING[0]) ** 2 + (j - 12) ** 2 + (i - 60) ** 2 <= 8**2
    volume[bright] = 300
    return np.rint(volume).astype(np.int16), ball, bright


def click(session, point, positive=True):
    return session.prompt(Prompt(kind="point", positive=positive, point_kji=point))


def test_a_click_follows_its_object_and_not_a_thin_bridge():
    volume, ball, _ = phantom()
    session = InProcessSession(ClassicEngine(), volume, SPACING, "CT")
    click(session, (30, 40, 25))
    mask = session.mask.to_dense()
    dice = 2 * (mask & ball).sum() / (mask.sum() + ball.sum())
    assert dice >= 0.9
    assert not mask[30, 40, 60], "leaked through the bridge into the box blob"


def test_positive_clicks_only_add_and_negative_clicks_only_remove_near_themselves():
    volume, ball, bright = phantom()
    session = InProcessSession(ClassicEngine(), volume, SPACING, "CT")
    click(session, (30, 40, 25))
    click(session, (30, 12, 60))  # a second object: added, the first one kept
    after_two = session.mask.to_dense()
    assert after_two[ball].mean() > 0.9 and after_two[bright].mean() > 0.9
    click(session, (30, 12, 60), positive=False)  # remove the second object again
    after_three = session.mask.to_dense()
    assert not after_three[bright].any()
    assert np.array_equal(after_three[ball], after_two[ball])


def test_a_negative_click_outside_the_segment_changes_nothing():
    volume, ball, _ = phantom()
    session = InProcessSession(ClassicEngine(), volume, SPACING, "CT")
    click(session, (30, 40, 25))
    before = session.mask.to_dense()
    result = click(session, (10, 10, 10), positive=False)
    assert np.array_equal(session.mask.to_dense(), before)
    assert np.prod([b - a for a, b in zip(*result.bbox)]) == 1


def test_a_negative_click_removes_a_leak_and_keeps_the_object():
    volume, ball, _ = phantom()
    volume[21:39, 30:50, 35:55] = 50  # a thick bridge: the first click leaks into the box blob
    session = InProcessSession(ClassicEngine(), volume, SPACING, "CT")
    click(session, (30, 40, 25))
    assert session.mask.to_dense()[30, 40, 60], "expected the leak this test corrects"
    click(session, (30, 40, 60), positive=False)
    mask = session.mask.to_dense()
    assert not mask[25:36, 33:47, 55:66].any()
    assert mask[ball].mean() > 0.9


def test_a_box_segments_the_object_inside_it_and_nothing_outside():
    volume, ball, _ = phantom()
    session = InProcessSession(ClassicEngine(), volume, SPACING, "CT")
    lo, hi = (20, 22, 8), (40, 58, 42)  # inclusive corners around the ball
    session.prompt(Prompt(kind="box", positive=True, box_kji=(lo, hi)))
    mask = session.mask.to_dense()
    inside = np.zeros(mask.shape, bool)
    inside[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1] = True
    assert not (mask & ~inside).any()
    assert 2 * (mask & ball).sum() / (mask.sum() + ball.sum()) >= 0.9


def test_only_negative_clicks_give_an_empty_segment():
    volume, _, _ = phantom()
    session = InProcessSession(ClassicEngine(), volume, SPACING, "CT")
    click(session, (30, 40, 25), positive=False)
    assert session.mask.count() == 0


def test_one_click_in_a_huge_uniform_region_stays_within_its_bounds():
    volume = np.full((160, 300, 300), 40, np.int16)  # 0.8 mm voxels: a 24 cm soft-tissue cube
    volume[::7] += 3  # some texture
    spacing = (1.5, 0.8, 0.8)
    session = InProcessSession(ClassicEngine(), volume, spacing, "CT")
    result = click(session, (80, 150, 150))
    extent_mm = [(b - a) * s for (a, b), s in zip(zip(*result.bbox), spacing)]
    assert all(e <= MAX_EXTENT_MM + 5 for e in extent_mm)
    assert result.counts["roi_voxels"] <= MAX_ROI_VOXELS
    assert result.mask.any()
    assert result.mask.shape == tuple(b - a for a, b in zip(*result.bbox))


def test_earlier_edits_outside_the_answer_are_kept():
    """The engine answers a bounding box; the segment outside it is not the engine's."""
    volume, ball, _ = phantom()
    session = InProcessSession(ClassicEngine(), volume, SPACING, "CT")
    painted = ((0, 0, 0), (3, 3, 3))
    session.mask.set_region(painted, np.ones((3, 3, 3), bool))  # e.g. a brush stroke in Slicer
    result = click(session, (30, 40, 25))
    assert session.mask.to_dense()[bbox_slices(painted)].all()
    inside = session.mask.region(result.bbox)
    assert inside.any()
