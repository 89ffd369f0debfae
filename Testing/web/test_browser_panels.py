"""The automatic segmentation and registration panels in Chromium.

Automatic segmentation runs the narrow random VISTA3D of the backend tests (its classes are
random, so the test checks what the page reports and keeps, not anatomy); the gated copy
keeps a job running until the test has cancelled it. Registration runs the built-in
``classic`` engine on two small phantoms, then carries the moving scan's segment onto the
fixed one.
"""

import numpy as np
from web_helpers import kji_to_ras, read_label_map


def test_automatic_segmentation_runs_with_progress_and_can_be_cancelled(
        a_page, a_phantom_pair, a_web_backend):
    page = a_page
    page.upload(a_phantom_pair["fixed"])
    page.open_panel("auto-panel", "#auto-search")
    page.wait("window.trame.state.get('auto_available') === true")
    page.page.fill("#auto-search", "spleen")
    page.wait("window.trame.state.get('auto_shown').length >= 1")
    page.page.locator(".sf-class-list input[type=checkbox]").first.check()
    page.shot("class-picked")
    page.press("#auto-run")
    page.wait_message("Automatic segmentation done", timeout=180_000)
    page.shot("automatic-segmentation-done")
    assert not page.state("auto_progress")["running"]

    page.choose("auto-engine", "vista3d-gated")
    page.wait("window.trame.state.get('auto_available') === true")
    page.page.locator("#auto-everything").check()
    page.press("#auto-run")
    page.wait("window.trame.state.get('auto_progress').running === true")
    page.shot("automatic-segmentation-running")
    page.press("#auto-cancel")
    a_web_backend.gate.touch()          # the job goes on to its next window, sees the cancel
    page.wait_message("cancelled", timeout=120_000)
    page.wait("window.trame.state.get('auto_progress').running === false")
    page.shot("automatic-segmentation-cancelled")


def test_registration_aligns_the_moving_scan_and_carries_its_segment_onto_the_fixed_one(
        a_page, a_phantom_pair, tmp_path):
    page = a_page
    page.upload(a_phantom_pair["fixed"])
    page.upload(a_phantom_pair["moving"])
    _, ijk_to_ras = read_label_map(a_phantom_pair["moving"])
    page.click_ras(kji_to_ras((15, 20, 21), ijk_to_ras))          # the moving scan's core
    page.wait_results(1)
    drawn = read_label_map(page.download("labels.nii.gz", tmp_path))[0] == 1
    assert drawn.sum() > 100

    page.open_panel("registration-panel", "#registration-run")
    page.choose("registration-fixed", "phantom_fixed")
    page.choose("registration-moving", "phantom_moving")
    page.press("#registration-run")
    page.wait("window.trame.state.get('registration_progress').running === true", timeout=30_000)
    page.shot("registration-running")
    page.wait_message("Registration done", timeout=180_000)
    page.wait("window.trame.state.get('registration_done') === true")
    page.shot("registered-overlay")
    page.press("#carry-button")
    page.wait("window.trame.state.get('volume_id') === window.trame.state.get('registration_fixed')"
              " && window.trame.state.get('segments').length === 1")
    page.shot("segment-carried-onto-fixed")
    carried = read_label_map(page.download("labels.nii.gz", tmp_path))[0] == 1
    # the moving body is the fixed one shifted by +3 voxels along i: carried back by ~3
    assert carried.sum() > 0.7 * drawn.sum()
    shift = np.argwhere(drawn).mean(axis=0)[2] - np.argwhere(carried).mean(axis=0)[2]
    assert 2.0 < shift < 4.0
