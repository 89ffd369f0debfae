"""The one-message point click (``tab/clicks.py``) without a browser: what the page may send
and the events the tab replays (the RAS point itself is checked in Chromium, in
``test_browser_clicks.py``)."""

import math

import pytest

from slicerfm_web.tab.clicks import click_events, click_position


def test_a_click_inside_its_view_is_taken_as_floats():
    assert click_position(10, 20.5, 608, 435) == (10.0, 20.5, 608.0, 435.0)
    assert click_position(0, 435, 608, 435) == (0.0, 435.0, 608.0, 435.0)     # the corners count


@pytest.mark.parametrize("position", [
    (-1, 10, 608, 435), (10, 436, 608, 435), (609, 10, 608, 435),        # outside the view
    (10, 10, 0, 435), (math.nan, 10, 608, 435), (10, math.inf, 608, 435),  # no view, not finite
    ("10", None, 608, 435), ([1], 2, 608, 435),                             # not numbers
])
def test_a_click_outside_its_view_or_not_made_of_numbers_is_refused_with_a_message(position):
    with pytest.raises(ValueError, match="click"):
        click_position(*position)


def test_the_replayed_click_is_a_move_a_left_press_and_a_left_release_at_one_place_without_modifiers():
    events = click_events(12.5, 30.0, 608.0, 435.0)
    assert [e["type"] for e in events] == ["MouseMove", "LeftButtonPress", "LeftButtonRelease"]
    for event in events:
        assert (event["x"], event["y"], event["w"], event["h"]) == (12.5, 30.0, 608.0, 435.0)
        assert event["ctrlKey"] == event["altKey"] == event["shiftKey"] == 0
