"""A point click sent as one message (``tab/clicks.py``) lands where trame-rca's mouse events
put it: the same screen pixel clicked both ways in Chromium gives the same RAS point."""

import numpy as np
from web_helpers import kji_to_ras, read_label_map

#: deep inside the spleen of the sample CT (k, j, i)
SPLEEN_VOXEL = (104, 32, 23)


def test_a_point_click_sent_in_one_message_lands_on_the_ras_point_of_trame_rcas_mouse_events(
        a_page, the_ct, a_data_dir):
    page = a_page
    page.upload(the_ct)
    _, ijk_to_ras = read_label_map(a_data_dir / "abdomen_ct" / "example_seg_fast_force_split.nii.gz")
    target = kji_to_ras(SPLEEN_VOXEL, ijk_to_ras)
    results = 0
    for view in ("Red", "Green"):
        page.go_to(target, view)
        page.use_tool("positive")
        x, y = page.screen_position(target, view)
        placed = {}
        for path in ("one message", "trame-rca"):
            direct = path == "one message"
            page.page.evaluate(f"window.slicerfm.directClicks = {'true' if direct else 'false'}")
            before = page.state("view_clicks")
            page.page.mouse.click(x, y)
            results += 1
            page.wait_results(results)
            assert page.state("view_clicks") == before + (1 if direct else 0), path
            prompt = page.state("last_prompt")
            assert prompt["tool"] == "positive"
            placed[path] = np.asarray(prompt["ras"])
        page.shot(f"{view}-clicked-both-ways")
        np.testing.assert_allclose(placed["one message"], placed["trame-rca"], atol=1e-6)
        # and within the screen pixel clicked (rounded to whole CSS px) of the point aimed at
        geometry = page.state("view_geometry")[view]
        pixel = np.linalg.norm(np.asarray(geometry["xy_to_ras"]).reshape(4, 4)[:3, :2], axis=0).max()
        offset = np.abs(placed["one message"] - target)
        assert offset.max() <= 1.5 * pixel, (view, offset, pixel)
    page.page.evaluate("window.slicerfm.directClicks = true")
    assert not page.console_errors
