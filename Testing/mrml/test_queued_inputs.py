"""A click queued behind one in flight goes to the segment (and engine) that was selected
when it was made, even when the user selects another segment before it is sent."""

from logic_helpers import ras_of, slicer_mask

from SlicerFMLib.worker import BackgroundWorker

INSIDE = (10, 15, 20)


def test_a_queued_click_goes_to_the_segment_selected_when_it_was_made(
        a_connected_logic, a_block_volume, an_organ_segmentation):
    logic = a_connected_logic
    worker = BackgroundWorker()
    logic.runner = worker
    volume, _ = a_block_volume
    try:
        logic.setInputs(volume, an_organ_segmentation, "organ")
        first = logic.addPoint(ras_of(volume, INSIDE))
        queued = logic.addPoint(ras_of(volume, (10, 17, 27)))
        assert first is not None and queued is None                # in flight, queued
        logic.setInputs(volume, an_organ_segmentation, "other")     # the user moves on
        logic.engine = "no-such-engine"
        worker.wait(60)
        assert [s["prompts"] for s in logic.connection.client.segments()] == [2]
        assert not slicer_mask(volume, an_organ_segmentation, "other").any()
        assert (logic.segmentID, logic.engine) == ("other", "no-such-engine")   # kept
    finally:
        worker.shutdown()
