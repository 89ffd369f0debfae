"""Segmenting the sample CT in Chromium: real uploads, real mouse clicks on the axial view.

The clicks are those ``slicerfm-backend evaluate`` simulates on the spleen (read from its
``--json``, voxel coordinates), turned into RAS and then into screen positions of the view;
the segment is checked through the page's own NIfTI download.
"""

import json
import subprocess

import numpy as np
import pytest
from web_helpers import (BIN, dice, first_label, kji_to_ras, read_label_map,
                         segment_masks_from_seg_nrrd)

SPLEEN = 1
CLICKS = 3
#: the page clicks a screen pixel, not the voxel centre: up to ~0.1 voxel away in plane
DICE_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def the_spleen_case(a_data_dir):
    folder = a_data_dir / "abdomen_ct"
    return folder / "example_ct.nii.gz", folder / "example_seg_fast_force_split.nii.gz"


@pytest.fixture(scope="module")
def evaluate_clicks(the_spleen_case, a_web_backend, tmp_path_factory):
    """What ``slicerfm-backend evaluate`` reports for 3 simulated clicks on the spleen."""
    out = tmp_path_factory.mktemp("evaluate") / "evaluate.json"
    completed = subprocess.run(
        [str(BIN / "slicerfm-backend"), "evaluate", "--engine", "classic", "--image",
         str(the_spleen_case[0]), "--label", str(the_spleen_case[1]), "--label-id", str(SPLEEN),
         "--clicks", str(CLICKS), "--json", str(out), "--server", a_web_backend.url],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return json.loads(out.read_text())


def test_clicks_in_the_axial_view_give_the_dice_that_evaluate_reports_and_undo_redo_step_back_and_forth(
        a_page, the_spleen_case, evaluate_clicks, tmp_path):
    page = a_page
    page.shot("page-opened")
    page.upload(the_spleen_case[0])
    page.shot("ct-opened")
    reference, ijk_to_ras = read_label_map(the_spleen_case[1])
    reference = reference == SPLEEN

    def segment_dice():
        labels, _ = read_label_map(page.download("labels.nii.gz", tmp_path))
        return dice(labels == 1, reference)

    got = []
    for number, click in enumerate(evaluate_clicks["clicks"], start=1):
        page.click_ras(kji_to_ras(click["point_kji"], ijk_to_ras), click["positive"])
        page.wait_results(number)
        page.shot(f"click-{number}-{'positive' if click['positive'] else 'negative'}")
        got.append(segment_dice())
    np.testing.assert_allclose(got, evaluate_clicks["dice"], atol=DICE_TOLERANCE)
    assert got[-1] > 0.9
    assert page.state("view_clicks") == CLICKS      # each click went as one message (tab/clicks.py)

    page.press("#undo-button")
    page.wait_results(CLICKS + 1)
    page.shot("undone")
    assert segment_dice() == pytest.approx(got[-2], abs=1e-9)
    page.press("#redo-button")
    page.wait_results(CLICKS + 2)
    page.shot("redone")
    assert segment_dice() == pytest.approx(got[-1], abs=1e-9)
    assert not page.console_errors


def test_a_locked_segment_keeps_every_voxel_when_another_segment_is_clicked_on_it(
        a_page, the_spleen_case, tmp_path):
    page = a_page
    page.upload(the_spleen_case[0])
    reference, ijk_to_ras = read_label_map(the_spleen_case[1])
    inside = kji_to_ras((104, 32, 23), ijk_to_ras)          # deep inside the spleen
    page.click_ras(inside)
    page.wait_results(1)
    page.press("#add-segment")
    page.wait("window.trame.state.get('segments').length === 2")
    page.click_ras(inside)                                   # 'Segment 2' unlocked neighbour
    page.wait_results(2)
    masks = segment_masks_from_seg_nrrd(page.download("segmentation.seg.nrrd", tmp_path),
                                        reference.shape, ijk_to_ras)
    assert (masks["Segment 1"] & masks["Segment 2"]).sum() > 1000   # overlap while unlocked
    spleen_before = masks["Segment 1"]
    page.press("#undo-button")
    page.wait_results(3)

    page.segment_row("Segment 1").locator(".sf-lock").click()
    page.wait("window.trame.state.get('segments')[0].locked === true && !window.trame.state.get('busy')")
    page.segment_row("Segment 2").click()
    page.wait("window.trame.state.get('active_segment') === window.trame.state.get('segments')[1].id")
    page.shot("segment-1-locked")
    page.click_ras(inside)
    page.wait_results(4)
    page.shot("click-on-segment-2-over-the-locked-one")
    masks = segment_masks_from_seg_nrrd(page.download("segmentation.seg.nrrd", tmp_path),
                                        reference.shape, ijk_to_ras)
    np.testing.assert_array_equal(masks["Segment 1"], spleen_before)
    assert not (masks["Segment 1"] & masks["Segment 2"]).any()

    page.segment_row("Segment 1").click()                     # clicks on a locked segment
    page.wait("window.trame.state.get('segment_locked') === true")
    assert page.page.is_disabled("#tool-positive")
    dictionary = json.loads(page.download("labels.json", tmp_path).read_text())
    assert [entry["locked"] for entry in dictionary["labels"]] == [True, False]
    assert first_label(read_label_map(page.download("labels.nii.gz", tmp_path))[0], dictionary,
                       "Segment 1").sum() == spleen_before.sum()
