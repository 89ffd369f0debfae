"""The simulated user places clicks where the protocol says."""

import numpy as np

from slicerfm_backend.evaluation.clicker import clicks_to_reach, dice, next_click
from slicerfm_backend.evaluation.simulate import simulate_clicks


def a_box_reference():
    reference = np.zeros((20, 20, 40), bool)
    reference[5:15, 5:15, 5:35] = True
    return reference


def test_the_first_click_is_the_deepest_point_of_the_reference_in_millimetres():
    reference = a_box_reference()
    (k, j, i), positive = next_click(reference, None, (1.0, 1.0, 1.0))
    assert positive and 9 <= k <= 10 and 9 <= j <= 10 and 9 <= i <= 30
    # With thin slices along k, k is the tightest axis in mm: the click sits mid-box in k.
    (k, _, _), _ = next_click(reference, None, (0.5, 1.0, 1.0))
    assert 9 <= k <= 10


def test_the_next_click_goes_into_the_largest_error_region_with_the_right_sign():
    reference = a_box_reference()
    prediction = reference.copy()
    prediction[5:15, 5:15, 25:35] = False          # large miss
    prediction[0:3, 0:3, 0:3] = True               # small overflow
    (k, j, i), positive = next_click(reference, prediction, (1, 1, 1))
    assert positive and 25 <= i < 35
    prediction[5:15, 5:15, 25:35] = True
    prediction[16:20, 0:20, 0:40] = True           # now the overflow is largest
    (k, j, i), positive = next_click(reference, prediction, (1, 1, 1))
    assert not positive and k >= 16


def test_a_perfect_prediction_needs_no_further_click():
    reference = a_box_reference()
    assert next_click(reference, reference.copy(), (1, 1, 1)) is None


def test_dice_and_clicks_to_threshold():
    reference = a_box_reference()
    assert dice(reference, reference) == 1.0 and dice(reference, ~reference) == 0.0
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert clicks_to_reach([0.5, 0.82, 0.91], 0.80) == 2
    assert clicks_to_reach([0.5, 0.82, 0.91], 0.95) is None


def test_the_simulation_loop_applies_changed_boxes_and_stops_when_perfect():
    reference = a_box_reference()

    def oracle(point, positive):  # returns the whole reference as a changed box at once
        return ((5, 5, 5), (15, 15, 35)), reference[5:15, 5:15, 5:35]

    result = simulate_clicks(reference, (1, 1, 1), oracle, n_clicks=5)
    assert result["dice"] == [1.0] and result["clicks_to"]["0.90"] == 1
    assert len(result["latency_s"]) == 1
