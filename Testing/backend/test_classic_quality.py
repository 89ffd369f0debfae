"""The built-in ``classic`` engine on a fast subset of its benchmark (issue 18).

A few structures of each kind -- large and small CT organs, abdominal MR, brain MRI at 1 mm --
clicked 10 times by the simulated user of ``slicerfm-backend evaluate`` with the engine
in-process. Asserts that clicks never hurt (no click lowers Dice by more than 0.02, Dice after
10 clicks is not below Dice after 5) and a floor on Dice, so that a regression fails CI. The
whole benchmark: ``benchmarks/dice_table.py`` (docs/BENCHMARKS.md).
"""

import pytest

from slicerfm_backend.evaluation.suite import MAX_DROP, issue18_cases, run_cases

#: case key -> floor on Dice after 5 clicks (a few hundredths under what the engine gives)
FLOORS_AT_5 = {
    "ct_large/spleen": 0.90,
    "ct_small/gallbladder": 0.78,
    "mr_abdomen/stomach": 0.79,
    "mr_abdomen/liver": 0.77,
    "brain/3rd-Ventricle": 0.81,
    "brain/4th-Ventricle": 0.77,
    "brain/Left-Caudate": 0.60,
}


@pytest.fixture(scope="module")
def a_quality_run(a_data_dir):
    cases = [c for c in issue18_cases(a_data_dir) if c.key in FLOORS_AT_5]
    assert len(cases) == len(FLOORS_AT_5), "a case of the fast subset is missing from the suite"
    return run_cases(cases, a_data_dir, clicks=10, in_process=True)


def test_no_click_lowers_dice_by_more_than_two_hundredths(a_quality_run):
    for key, row in a_quality_run.items():
        assert row["worst_drop"] <= MAX_DROP, (key, row["dice"])


def test_ten_clicks_are_never_worse_than_five(a_quality_run):
    for key, row in a_quality_run.items():
        assert row["at"]["10"] >= row["at"]["5"], (key, row["dice"])


def test_five_clicks_reach_the_floor_of_each_structure(a_quality_run):
    for key, floor in FLOORS_AT_5.items():
        assert a_quality_run[key]["at"]["5"] >= floor, (key, a_quality_run[key]["dice"])
