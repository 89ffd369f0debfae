"""The vista3d automatic job through a real server (progress, cancel, result on the image's
own grid) and point corrections through the interaction path; narrow random network."""

import threading

import numpy as np
import pytest

from slicerfm_client import errors, protocol
from slicerfm_client.auto_segment import class_catalogue, segment_auto
from slicerfm_backend.engines import registry
from slicerfm_backend.engines.base import ImageData
from slicerfm_backend.engines.vista3d import Vista3DEngine
from slicerfm_backend.engines.vista3d import grid as grid_mod

from vista3d_helpers import ct_phantom

pytestmark = pytest.mark.torch


@pytest.fixture
def vista_server(a_server_factory, monkeypatch):
    monkeypatch.setitem(registry.ENGINE_CLASSES, "vista3d-small", "vista3d_helpers:SmallVista3DEngine")
    return a_server_factory(engines=["sphere", "vista3d-small"])


def oblique_geometry(spacing=(2.0, 1.2, 3.1), angle=0.3):
    """ijk_to_ras with anisotropic spacing (i, j, k) and a rotation about S, plus an
    axis swap (i runs towards A), so the working grid permutes and flips axes."""
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[-s, c, 0], [c, s, 0], [0, 0, 1.0]])  # i -> mostly A, j -> mostly R
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * np.asarray(spacing)
    matrix[:3, 3] = (12.0, -30.0, 5.0)
    return matrix


def test_auto_job_on_an_oblique_anisotropic_image(vista_server):
    # 60 mm of air along i (beyond the 15 mm foreground margin): not computed
    image = np.pad(ct_phantom((18, 40, 30)), ((0, 0), (0, 0), (30, 0)), constant_values=-1000)
    matrix = oblique_geometry()
    seen = []
    with vista_server.client() as client:
        client.connect()
        result = segment_auto(client, image, matrix, classes=["liver", "kidney"], engine="vista3d-small",
                              on_progress=lambda status: seen.append(status), poll_s=0.05)
    assert result.labels.shape == image.shape and result.labels.dtype == np.uint8
    assert set(result.dictionary) == {1, 14, 5}  # kidney split into left and right
    assert result.dictionary[14]["name"] == "left kidney" and len(result.dictionary[1]["color"]) == 3
    assert set(np.unique(result.labels)) <= {0, 1, 14, 5}
    # the computed box is what maps into the foreground crop; the rest is reported
    grid = grid_mod.WorkingGrid.for_image(image.shape, matrix)
    box = grid_mod.foreground_box(grid_mod.resample(image, grid))
    inside = np.ones([b - a for a, b in zip(*box)], np.uint8)
    computed, bbox = grid_mod.to_image_grid(inside, grid, box)
    assert result.not_computed["computed_bbox_kji"] == bbox
    assert result.not_computed["voxels"] == image.size - int(computed.sum()) > 0
    assert not result.labels[computed == 0].any()
    assert result.meta["device"] == "cpu" and "CPU" in result.meta["precision"]
    windows = [s for s in seen if s.get("stage") == "windows" and s.get("total")]
    assert windows and windows[-1]["total"] == result.meta["windows"] * result.meta["class_groups"]


def test_auto_job_cancel_and_bad_requests(a_server_factory, monkeypatch, tmp_path):
    # The gated engine holds every window until the gate file exists: the job is certainly
    # running when the client cancels it, however fast the machine.
    monkeypatch.setitem(registry.ENGINE_CLASSES, "vista3d-small", "vista3d_helpers:SmallVista3DEngine")
    monkeypatch.setitem(registry.ENGINE_CLASSES, "vista3d-gated", "vista3d_helpers:GatedSmallVista3DEngine")
    gate = tmp_path / "gate-open"
    monkeypatch.setenv("SLICERFM_TEST_GATE", str(gate))
    vista_server = a_server_factory(engines=["sphere", "vista3d-small", "vista3d-gated"])
    image = ct_phantom((30, 70, 70))
    matrix = np.diag([1.5, 1.5, 1.5, 1.0])
    cancel = threading.Event()

    def on_progress(status):
        if status.get("state") == "running" and not gate.exists():
            cancel.set()
            gate.touch()

    with vista_server.client() as client:
        client.connect()
        with pytest.raises(errors.JobCancelledError):
            segment_auto(client, image, matrix, everything=True, engine="vista3d-gated",
                         on_progress=on_progress, cancel_event=cancel, poll_s=0.05)
        image_id = client.upload_image(image, matrix, "CT")
        for body, word in [({"engine": "vista3d-small", "image_id": image_id, "classes": ["tumour x"]}, "unknown"),
                           ({"engine": "vista3d-small", "image_id": image_id, "classes": [130]}, "point"),
                           ({"engine": "vista3d-small", "image_id": image_id}, "classes"),
                           ({"engine": "sphere", "image_id": image_id, "everything": True}, "automatic")]:
            with pytest.raises(errors.SlicerFMError) as caught:
                client.submit_job(protocol.PATH_SEGMENT_AUTO, body)
            assert word in str(caught.value)
        catalogue = class_catalogue(client, "vista3d-small")
    assert len(catalogue) == 132 and sum(c["everything"] for c in catalogue) == 117


def test_point_correction_changes_only_the_clicked_region(vista_server):
    """A previous segment of two blobs; a negative click in one of them may only change
    voxels of the region connected to it: the other blob keeps every voxel."""
    image = ct_phantom((24, 48, 48))
    matrix = np.diag([1.5, 1.5, 1.5, 1.0])
    seed = np.zeros(image.shape, bool)
    seed[8:16, 6:14, 6:14] = True      # blob A, clicked
    seed[8:16, 20:27, 20:27] = True    # blob B, inside the clicked 32^3 window, not connected
    with vista_server.client() as client:
        client.connect()
        client.set_image(image, matrix, "CT")
        client.seed("liver", seed)
        client.interact("liver", {"kind": "point", "positive": False, "point_kji": [12, 10, 10]},
                        engine="vista3d-small", label="liver")
        labels, segments = client.labelmap()
        with pytest.raises(errors.SlicerFMError) as caught:
            client.interact("liver", {"kind": "point", "positive": True, "point_kji": [12, 10, 10]},
                            engine="vista3d-small", label="kidney")
        assert "part" in str(caught.value)
    after = labels == 1
    assert np.array_equal(after[:, 18:, 18:], seed[:, 18:, 18:])
    assert not np.array_equal(after[:, :18, :18], seed[:, :18, :18])  # the click did change A


def test_vista3d_estimates_an_automatic_run_on_the_cpu_from_its_windows():
    image = ImageData("x", np.zeros((112, 101, 122), np.int16), (3.0, 3.0, 3.0), np.diag([3.0, 3.0, 3.0, 1.0]), "CT")
    one = Vista3DEngine("cpu").estimate_auto_s(image, [1])
    assert 154 * 4 < one < 200 * 27  # a few windows at ~2.5 min each on 2 cores
    assert Vista3DEngine("cpu").estimate_auto_s(image, list(range(1, 118))) > one
    assert Vista3DEngine("cuda").estimate_auto_s(image, [1]) is None
