"""A slice engine (MedSAM / SAM) in Chromium: the box tool on a slice view sends a slice box,
the page shows the propagation's progress, its Cancel stops it, and a box that is left to
propagate segments the object through its slices.

The backend serves ``slices-test``: the real ``medsam`` engine -- slice prompts, embedding
cache, propagation job -- with a stand-in network that segments what is similar to the box's
inside (Testing/backend/slicewise_helpers.py, no weights). The image is the small phantom
(an ellipsoidal 300 HU core in a 40 HU body), so the right answer is known: the core.
"""

import re

import numpy as np
from web_helpers import SLICE_ENGINE, dice, kji_to_ras, read_label_map

SLICE = 15                                    # an axial slice through the core
BOX = ((SLICE, 9, 7), (SLICE, 30, 28))        # (k, j, i) corners around the core's section
CENTRE = (SLICE, 19.5, 17.5)


def only_on_slice(mask: np.ndarray, k: int) -> np.ndarray:
    kept = np.zeros_like(mask)
    kept[k] = mask[k]
    return kept


def tab_log(server, page) -> str:
    tab_id = page.page.url.split("/t/")[1].split("/")[0]
    return (server.log_dir / f"tab-{tab_id}.log").read_text()


def test_a_box_on_a_slice_view_propagates_with_progress_and_a_cancel_keeps_only_the_slice(
        a_page, a_phantom_pair, a_web_backend, a_web_server, tmp_path):
    page = a_page
    page.upload(a_phantom_pair["fixed"])
    image, ijk_to_ras = read_label_map(a_phantom_pair["fixed"])
    core = image > 200
    page.choose("engine-select", re.compile(SLICE_ENGINE))
    page.wait(f"window.trame.state.get('engine') === '{SLICE_ENGINE}' && "
              "window.trame.state.get('slice_engine') === true")
    assert "draw the box on one slice" in page.page.inner_text("#slice-engine-hint")
    corners = [kji_to_ras(corner, ijk_to_ras) for corner in BOX]

    hold = a_web_backend.slice_hold
    hold.touch()                                # the propagation waits until released
    try:
        page.draw_box(*corners)
        page.wait_results(1)
        page.wait("(window.trame.state.get('propagation_progress') || {text: ''}).text"
                  ".startsWith(\"propagating 'Segment 1'\")")       # queued, then running
        page.page.wait_for_selector("#propagation-line", state="visible")
        assert page.page.inner_text("#propagation-text").startswith("propagating 'Segment 1'")
        page.shot("slice-segmented-propagation-running")
        assert "slice box from the Red (Axial) view: axis k, slice 15" in tab_log(a_web_server, page)
        labels = read_label_map(page.download("labels.nii.gz", tmp_path))[0]
        np.testing.assert_array_equal(labels == 1, only_on_slice(core, SLICE))
        page.page.click("#propagation-cancel")  # the user's Cancel, while it runs
        page.wait_message("propagation of 'Segment 1' cancelled: the prompted slice stays")
        page.wait("!window.trame.state.get('propagation_progress').running")
        page.shot("propagation-cancelled")
    finally:
        hold.unlink(missing_ok=True)
    labels = read_label_map(page.download("labels.nii.gz", tmp_path))[0]
    np.testing.assert_array_equal(labels == 1, only_on_slice(core, SLICE))

    page.page.click("#reset-button")            # start again, and this time let it run
    page.wait_results(2)
    assert not read_label_map(page.download("labels.nii.gz", tmp_path))[0].any()
    page.draw_box(*corners)
    page.wait_message("'Segment 1' propagated to")
    page.wait("!window.trame.state.get('propagation_progress').running && "
              "!window.trame.state.get('busy')")
    assert page.result_count() == 3             # box, reset, box: the propagation is no click
    page.go_to(kji_to_ras(CENTRE, ijk_to_ras))  # coronal and sagittal views through the core
    page.page.wait_for_timeout(1500)            # the 3D surface follows 0.4 s after a change
    page.shot("propagated-through-the-core")
    propagated = read_label_map(page.download("labels.nii.gz", tmp_path))[0] == 1
    assert dice(propagated, core) > 0.95, dice(propagated, core)
    assert not (propagated & ~core).any()
    assert np.count_nonzero(propagated.any(axis=(1, 2))) >= 8
    assert not page.console_errors, page.console_errors
