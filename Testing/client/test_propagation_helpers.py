"""Client helpers for slice engines: slice coordinates to voxel (k, j, i) prompts."""

import numpy as np
import pytest

from slicerfm_client import wire
from slicerfm_client.propagation import _job_id, slice_box_kji, slice_point_kji
from slicerfm_client.updates import MaskUpdate, mask_update


@pytest.mark.parametrize("axis,expected", [
    (0, ((42.0, 120.0, 80.0), (42.0, 260.0, 210.0))),
    (1, ((120.0, 42.0, 80.0), (260.0, 42.0, 210.0))),
    (2, ((120.0, 80.0, 42.0), (260.0, 210.0, 42.0))),
])
def test_a_slice_box_is_one_voxel_thick_on_its_axis(axis, expected):
    assert slice_box_kji(axis, 42, (120, 80), (260, 210)) == expected


def test_a_slice_point_puts_row_and_column_on_the_other_axes():
    assert slice_point_kji(1, 7, 3.5, 9.0) == (3.5, 7.0, 9.0)
    with pytest.raises(ValueError, match="axis"):
        slice_point_kji(3, 7, 1, 1)


def test_a_mask_update_message_carries_its_propagation_job():
    meta = {"segment": "s", "bbox_kji": [[1, 2, 3], [2, 4, 5]], "voxels": 4, "can_undo": True,
            "can_redo": False, "propagation": {"job_id": "abc", "kind": "propagate", "state": "queued"}}
    header, mask = wire.decode(wire.encode(np.ones((1, 2, 2), np.uint8), meta))
    update = mask_update(header, mask)
    assert update.propagation["job_id"] == "abc" and update.bbox == ((1, 2, 3), (2, 4, 5))
    assert _job_id(update) == "abc" and _job_id({"job_id": "x"}) == "x" and _job_id("y") == "y"
    with pytest.raises(ValueError, match="no propagation"):
        _job_id(MaskUpdate("s", None, np.zeros((0, 0, 0), bool)))
