"""Several tabs, bad input, slow clicks and a backend that goes away, in Chromium.

Each browser tab is a tab process of its own (its scene, its backend session); the server's
``/api/status`` lists them with their process ids.
"""

import re
import time

import numpy as np
from web_helpers import ARTEFACTS, MAX_UPLOAD_MB, PageDriver, kji_to_ras, read_label_map

SPLEEN_KJI = (104, 32, 23)


def test_two_tabs_are_separate_sessions_a_box_drawn_in_one_stays_there_and_a_closed_tab_is_released(
        a_page, a_browser_context, a_web_server, the_ct, tmp_path):
    first = a_page
    first.open_panel("open-panel", "#data-list")
    first.page.get_by_text("example_ct.nii.gz", exact=True).click()       # from the data folder
    first.wait("(window.trame.state.get('volumes') || []).length === 1 && !window.trame.state.get('loading')")
    first.wait_views_fitted()
    _, ijk_to_ras = read_label_map(the_ct)
    first.click_ras(kji_to_ras(SPLEEN_KJI, ijk_to_ras))
    first.wait_results(1)
    first.shot("first-tab-segmented")

    second = PageDriver.open(a_browser_context, a_web_server.url, ARTEFACTS / "second-tab")
    try:
        assert second.state("volumes") == [] and second.state("segments") == []
        second.shot("second-tab-opened-empty")
        second.upload(the_ct)
        assert [s["name"] for s in second.segments()] == ["Segment 1"]
        assert not read_label_map(second.download("labels.nii.gz", tmp_path))[0].any()
        first_labels = read_label_map(first.download("labels.nii.gz", tmp_path))[0]
        assert first_labels.sum() > 1000
        second.draw_box(kji_to_ras((100, 20, 12), ijk_to_ras), kji_to_ras((100, 45, 35), ijk_to_ras))
        second.wait_results(1)
        second.shot("second-tab-box-on-the-spleen")
        assert (read_label_map(second.download("labels.nii.gz", tmp_path))[0] == 1).sum() > 1000
        np.testing.assert_array_equal(read_label_map(first.download("labels.nii.gz", tmp_path))[0],
                                      first_labels)
        tabs = [tab for tab in a_web_server.status()["tabs"] if not tab["spare"]]
        assert len({tab["pid"] for tab in tabs}) == len(tabs) >= 2
        second_id = second.page.url.split("/t/")[1].split("/")[0]
    finally:
        second.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
            tab["tab_id"] == second_id for tab in a_web_server.status()["tabs"]):
        time.sleep(0.5)
    assert all(tab["tab_id"] != second_id for tab in a_web_server.status()["tabs"])
    log = (a_web_server.log_dir / f"tab-{second_id}.log").read_text()
    assert "releasing its backend session" in log
    first.go_to(kji_to_ras(SPLEEN_KJI, ijk_to_ras))              # the first tab still works
    assert first.result_count() == 1


def test_bad_uploads_get_a_message_and_lose_nothing(a_page, the_ct, a_two_series_dicom_zip,
                                                    tmp_path):
    page = a_page
    page.upload(the_ct)
    _, ijk_to_ras = read_label_map(the_ct)
    page.click_ras(kji_to_ras(SPLEEN_KJI, ijk_to_ras))
    page.wait_results(1)
    kept = read_label_map(page.download("labels.nii.gz", tmp_path))[0]

    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    page.upload(notes, expect_volume=False)
    assert "is not a file SlicerFM opens" in page.wait_message("notes.txt")
    page.shot("text-file-refused")

    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(np.random.default_rng(0).bytes(50_000))
    page.upload(broken, expect_volume=False)
    text = page.wait_message("'broken.nii.gz'")
    assert "is not an image SlicerFM can open" in text or "could not be read" in text
    page.shot("broken-file-refused")

    huge = tmp_path / "huge.nii"
    with open(huge, "wb") as handle:
        handle.truncate((MAX_UPLOAD_MB + 1) * 1024 * 1024)
    page.upload(huge, expect_volume=False)
    assert f"larger than the {MAX_UPLOAD_MB} MB" in page.wait_message("'huge.nii'")
    page.shot("oversized-file-refused")

    page.upload(a_two_series_dicom_zip, expect_volume=False)
    page.wait("(window.trame.state.get('dicom_choices') || []).length === 2")
    page.shot("dicom-series-choice")
    page.page.locator(".sf-series", has_text="second copy").click()
    page.wait("(window.trame.state.get('volumes') || []).length === 2 && !window.trame.state.get('loading')")
    assert "second copy" in page.state("volumes")[1]["name"]
    page.shot("second-series-opened")

    assert "escape.nii.gz" not in [e["key"] for e in page.state("data_entries")]
    page.page.evaluate("window.trame.trigger('open_data_entry', ['../outside/secret.nii.gz'])")
    assert "is not in the data folder" in page.wait_message("secret.nii.gz")

    volumes = page.state("volumes")
    assert volumes[0]["name"] == "example_ct"
    page.choose("volume-select", "example_ct")
    page.wait(f"window.trame.state.get('volume_id') === {volumes[0]['id']!r} && "
              "window.trame.state.get('segments').length === 1")
    np.testing.assert_array_equal(read_label_map(page.download("labels.nii.gz", tmp_path))[0], kept)


def test_engines_show_their_readiness_and_clicks_made_while_one_runs_are_queued_and_all_applied(
        a_page, the_ct, tmp_path):
    page = a_page
    page.upload(the_ct)
    page.page.locator(".v-select", has=page.page.locator("#engine-select")).click()
    missing = page.page.get_by_role("option", name=re.compile("sam-med3d"))
    assert "weights missing" in missing.inner_text()                 # listed, device shown,
    assert "v-list-item--disabled" in (missing.get_attribute("class") or "")   # not choosable
    page.page.keyboard.press("Escape")
    page.choose("engine-select", re.compile("slow-sphere"))
    page.wait("window.trame.state.get('engine') === 'slow-sphere'")
    _, ijk_to_ras = read_label_map(the_ct)
    first, second = (60, 50, 40), (60, 50, 80)
    page.click_ras(kji_to_ras(first, ijk_to_ras))
    x, y = page.screen_position(kji_to_ras(second, ijk_to_ras))
    page.page.mouse.click(x, y)                                  # while the first one runs
    page.wait("window.trame.state.get('busy') === true")
    page.shot("second-click-queued")
    page.wait_results(2)
    page.shot("both-applied")
    labels = read_label_map(page.download("labels.nii.gz", tmp_path))[0]
    assert labels[first] == 1 and labels[second] == 1


def test_a_backend_that_goes_down_and_restarts_loses_no_segment(a_page, the_ct, a_web_backend,
                                                                 tmp_path):
    page = a_page
    page.upload(the_ct)
    _, ijk_to_ras = read_label_map(the_ct)
    page.click_ras(kji_to_ras(SPLEEN_KJI, ijk_to_ras))
    page.wait_results(1)
    before = read_label_map(page.download("labels.nii.gz", tmp_path))[0] == 1

    a_web_backend.stop()
    page.click_ras(kji_to_ras((96, 40, 20), ijk_to_ras))
    page.wait_message("reach")                                    # unreachable: said so
    page.shot("backend-down")
    a_web_backend.start()                                         # same port, empty server
    page.click_ras(kji_to_ras((96, 40, 20), ijk_to_ras))
    page.wait_results(2)
    page.shot("reconnected-and-re-seeded")
    assert any("Reconnected" in text for text in page.messages())
    after = read_label_map(page.download("labels.nii.gz", tmp_path))[0] == 1
    assert (before & after).sum() >= 0.99 * before.sum()
