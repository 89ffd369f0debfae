"""The tab's scene code on slicer-core, without a browser: segment list operations and the
downloads (label map with its dictionary, Slicer's .seg.nrrd)."""

import json

import numpy as np
import pytest

from SlicerFMLib.segment_io import apply_mask_update
from slicerfm_web.tab.downloads import label_map, write_seg_nrrd
from slicerfm_web.tab.images import LoadedImage
from slicerfm_web.tab.segments import SegmentList, ensure_segmentation, parse_colour
from slicerfm_web.tab.volumes import add_volume_node, apply_preset


class State(dict):
    """The attribute access of trame's state, enough for the controllers."""

    __getattr__ = dict.get

    def __setattr__(self, key, value):
        self[key] = value


@pytest.fixture
def a_scene():
    from slicer import (vtkMRMLScene, vtkSlicerApplicationLogic,
                        vtkSlicerSegmentationsModuleLogic)

    scene = vtkMRMLScene()
    app = vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    segmentations = vtkSlicerSegmentationsModuleLogic()
    segmentations.SetMRMLApplicationLogic(app)
    segmentations.SetMRMLScene(scene)
    yield scene
    scene.Clear(True)


@pytest.fixture
def a_volume(a_scene):
    ijk_to_ras = np.diag([-0.8, -0.8, 2.0, 1.0])
    ijk_to_ras[:3, 3] = [10.0, -5.0, 30.0]
    array = np.full((10, 12, 14), -1000, np.int16)
    return add_volume_node(a_scene, LoadedImage(array, ijk_to_ras, "phantom", "CT"))


@pytest.fixture
def a_segment_list(a_scene, a_volume):
    segments = SegmentList(State())
    segments.set_node(ensure_segmentation(a_scene, a_volume))
    return segments


def test_a_ct_volume_gets_its_modality_and_the_abdomen_window(a_volume):
    assert a_volume.GetAttribute("DICOM.Modality") == "CT"
    display = a_volume.GetDisplayNode()
    assert (display.GetWindow(), display.GetLevel()) == (400.0, 40.0)
    apply_preset(a_volume, "CT lung")
    assert (display.GetWindow(), display.GetLevel()) == (1500.0, -600.0)
    with pytest.raises(ValueError, match="unknown window/level preset"):
        apply_preset(a_volume, "CT everything")


def test_segments_are_added_renamed_coloured_hidden_and_deleted(a_segment_list):
    segments = a_segment_list
    first = segments.add()
    second = segments.add("kidney")
    assert [s["name"] for s in segments.state.segments] == ["Segment 1", "kidney"]
    assert segments.state.active_segment == second
    segments.rename(first, "  spleen   left ")
    segments.set_colour(first, "#ff8000")
    segments.set_visible(second, False)
    rows = {s["id"]: s for s in segments.state.segments}
    assert rows[first]["name"] == "spleen left" and rows[first]["color"] == "#ff8000"
    assert rows[second]["visible"] is False
    with pytest.raises(ValueError, match="needs a name"):
        segments.rename(first, "   ")
    with pytest.raises(ValueError, match="#rrggbb"):
        segments.set_colour(first, "orange")
    segments.delete(second)
    assert [s["id"] for s in segments.state.segments] == [first]
    third = segments.add()
    assert third not in (first, second)            # IDs are never reused


def test_a_locked_segment_cannot_be_deleted(a_segment_list):
    from SlicerFMLib.editor_settings import set_segment_locked

    segment = a_segment_list.add("liver")
    set_segment_locked(a_segment_list.node, segment, True)
    with pytest.raises(ValueError, match="is locked: unlock it before deleting it"):
        a_segment_list.delete(segment)


def test_the_label_map_numbers_segments_in_list_order_with_their_names_and_colours(
        a_segment_list, a_volume, tmp_path):
    from SlicerFMLib.volume_io import volume_to_array

    segments = a_segment_list
    first, second = segments.add("a"), segments.add("b")
    green = "#00ff00"
    segments.set_colour(second, green)
    ijk_to_ras = volume_to_array(a_volume)[1]
    block = np.ones((2, 3, 4), bool)
    apply_mask_update(segments.node, first, [[1, 1, 1], [3, 4, 5]], block, ijk_to_ras)
    apply_mask_update(segments.node, second, [[5, 5, 5], [7, 8, 9]], block, ijk_to_ras)
    labels, dictionary = label_map(segments.node, a_volume)
    assert labels.shape == (10, 12, 14) and labels.dtype == np.uint8
    assert (labels == 1).sum() == 24 and (labels == 2).sum() == 24
    assert labels[1:3, 1:4, 1:5].min() == 1 and labels[5:7, 5:8, 5:9].min() == 2
    assert [(d["value"], d["name"], d["color"]) for d in dictionary] == \
        [(1, "a", dictionary[0]["color"]), (2, "b", green)]
    assert parse_colour(green) == (0.0, 1.0, 0.0)
    json.dumps(dictionary)

    path = tmp_path / "seg.seg.nrrd"
    write_seg_nrrd(segments.node, path)
    assert path.stat().st_size > 0
    header = path.read_bytes()[:4000].decode("latin-1")
    assert "Segment0_Name:=a" in header and "Segment1_Name:=b" in header


def test_the_3d_copy_gives_each_segment_its_own_surface_even_when_they_share_a_layer(
        a_scene, a_volume, a_segment_list):
    from test_web_security import run_coroutine

    from slicer import vtkSlicerApplicationLogic, vtkSlicerSegmentationsModuleLogic

    from SlicerFMLib.volume_io import volume_to_array
    from slicerfm_web.tab.surfaces import SurfaceMirror

    segments = a_segment_list
    ids = [segments.add(name) for name in ("a", "b", "c")]
    ijk_to_ras = volume_to_array(a_volume)[1]
    for n, segment_id in enumerate(ids):              # side by side along k: one shared layer
        apply_mask_update(segments.node, segment_id, [[1 + 3 * n, 2, 2], [3 + 3 * n, 8, 8]],
                          np.ones((2, 6, 6), bool), ijk_to_ras)
    logic = vtkSlicerSegmentationsModuleLogic()
    app = vtkSlicerApplicationLogic()
    app.SetMRMLScene(a_scene)
    logic.SetMRMLApplicationLogic(app)
    logic.SetMRMLScene(a_scene)
    mirror = SurfaceMirror(a_scene, logic)

    async def sync():
        mirror.set_source(segments.node)
        mirror.sync()
    run_coroutine(sync())
    copies = mirror.mirror.GetSegmentation()
    assert segments.node.GetDisplayNode().GetVisibility3D() == 0
    assert mirror.mirror.GetDisplayNode().GetVisibility2D() == 0
    centres = []
    for segment_id in ids:
        surface = copies.GetSegment(segment_id).GetRepresentation("Closed surface")
        assert surface is not None and surface.GetNumberOfPoints() > 0
        bounds = surface.GetBounds()
        centres.append((bounds[4] + bounds[5]) / 2)         # S = 2 mm per k
        assert copies.GetSegment(segment_id).GetColor() == \
            segments.node.GetSegmentation().GetSegment(segment_id).GetColor()
    assert np.all(np.diff(centres) > 4.0)                   # three places, not one
