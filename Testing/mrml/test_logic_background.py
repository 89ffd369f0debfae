"""The Logic with a background worker (as the widget runs it): network off the main
thread, MRML changes on the polling (main) thread only, clicks applied in order, cancel."""

import threading

import numpy as np
import pytest
from logic_helpers import ras_of, server_mask, slicer_mask

from SlicerFMLib.worker import BackgroundWorker

INSIDE = (10, 15, 20)


@pytest.fixture
def a_background_logic(a_connected_logic, a_block_volume, an_organ_segmentation):
    worker = BackgroundWorker()
    a_connected_logic.runner = worker
    volume, _ = a_block_volume
    a_connected_logic.setInputs(volume, an_organ_segmentation, "organ")
    yield a_connected_logic, worker, volume, an_organ_segmentation
    worker.shutdown()


def test_results_are_applied_on_the_polling_thread_only(a_background_logic):
    logic, worker, volume, segmentation = a_background_logic
    modified_in = []
    segmentation.GetSegmentation().AddObserver(   # every event the segment edit fires
        "AnyEvent", lambda caller, event: modified_in.append((event, threading.get_ident())))
    task = logic.addPoint(ras_of(volume, INSIDE))
    assert task is not None and not task.delivered
    assert not slicer_mask(volume, segmentation, "organ").any()   # not applied before a poll
    worker.wait(60)
    assert slicer_mask(volume, segmentation, "organ").any()
    assert modified_in                       # (custom segmentation events come as "NoEvent")
    assert {thread for _, thread in modified_in} == {threading.get_ident()}


def test_clicks_made_while_one_is_in_flight_are_sent_in_order(a_background_logic):
    logic, worker, volume, segmentation = a_background_logic
    first = logic.addPoint(ras_of(volume, INSIDE))
    queued = [logic.addPoint(ras_of(volume, (10, 12, 12)), positive=False),
              logic.addPoint(ras_of(volume, (10, 17, 27)), positive=True)]
    assert first is not None and queued == [None, None]           # queued, not yet prepared
    worker.wait(60)
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"),
                                  server_mask(logic, segmentation, "organ"))
    segments = logic.connection.client.segments()
    assert [s["prompts"] for s in segments] == [3]


def test_a_cancelled_click_is_not_applied_and_the_server_is_reseeded_next_time(
        a_background_logic):
    logic, worker, volume, segmentation = a_background_logic
    logic.addPoint(ras_of(volume, INSIDE))
    logic.cancel()
    worker.wait(60)
    assert not slicer_mask(volume, segmentation, "organ").any()
    assert server_mask(logic, segmentation, "organ").any()         # the server did it anyway
    task = logic.addPoint(ras_of(volume, (2, 3, 3)), positive=False)
    worker.wait(60)
    assert task.result.seeded == [task.result.interaction.segment]
    np.testing.assert_array_equal(slicer_mask(volume, segmentation, "organ"),
                                  server_mask(logic, segmentation, "organ"))
