"""Slice engines through the server and the client: the prompted slice at once, propagation
as a job with progress, cancel, undo, supersession and locks.

The engine is ``medsam`` with a stand-in network (``slices-standin``); its propagation can be
held on a gate so that cancel and supersession are tested without races.
"""

import threading

import numpy as np
import pytest

from slicerfm_backend.engines import registry
from slicerfm_client import errors
from slicewise_helpers import GatedThresholdNet, disc_box, tube_volume

pytestmark = pytest.mark.torch  # the slice pipeline resizes with torch

ENGINE = "slices-standin"
IJK_TO_RAS = np.diag([-0.8, -0.8, 2.5, 1.0])


@pytest.fixture
def a_gate(monkeypatch):
    release, entered = threading.Event(), threading.Event()
    release.set()
    monkeypatch.setattr(GatedThresholdNet, "release", release)
    monkeypatch.setattr(GatedThresholdNet, "entered", entered)
    yield release, entered
    release.set()


@pytest.fixture
def a_tube_client(a_server_factory, monkeypatch, a_gate):
    monkeypatch.setitem(registry.ENGINE_CLASSES, ENGINE, "slicewise_helpers:StandInSliceEngine")
    server = a_server_factory(engines=["sphere", ENGINE])
    client = server.client()
    client.connect("tests", heartbeat=False)
    volume = tube_volume()
    client.set_image(volume, IJK_TO_RAS, "CT")
    yield client, volume, server
    client.close()


def held(a_gate):
    release, entered = a_gate
    release.clear()
    entered.clear()
    return release, entered


def test_a_slice_box_answers_its_slice_and_a_job_propagates_the_rest(a_tube_client):
    client, volume, _ = a_tube_client
    labels = np.zeros(volume.shape, bool)
    update = client.add_box("tube", *disc_box(volume, 14), engine=ENGINE)
    assert update.bbox[0][0] == 14 and update.bbox[1][0] == 15
    assert update.propagation["kind"] == "propagate" and update.propagation["state"] in ("queued", "running", "done")
    update.apply_to(labels)
    seen = []
    more = client.wait_propagation(update, on_progress=seen.append, poll_s=0.02)
    more.apply_to(labels)
    assert np.array_equal(labels, volume > 150)
    assert more.voxels == int(np.count_nonzero(volume > 150)) and more.can_undo
    others = (volume > 150) & (np.arange(30) != 14)[:, None, None]  # what the job changed
    jj, ii = np.nonzero(others.any(axis=0))
    assert more.bbox == ((5, int(jj.min()), int(ii.min())), (25, int(jj.max()) + 1, int(ii.max()) + 1))
    result = more.propagation["result"]
    assert result["stopped"] == {"increasing": "vanished", "decreasing": "vanished"}
    assert result["plane"] == "axial" and result["device"] == "cpu"
    assert seen[-1]["state"] == "done" and seen[-1]["stage"] == "committed"
    assert seen[-1]["done"] == seen[-1]["total"] == 21
    server_labels, _ = client.labelmap()
    assert np.array_equal(server_labels > 0, labels)


def test_undo_takes_back_the_propagation_then_the_slice(a_tube_client):
    client, volume, _ = a_tube_client
    update = client.add_box("tube", *disc_box(volume, 14), engine=ENGINE)
    client.wait_propagation(update, poll_s=0.02)
    undone = client.undo("tube")
    assert undone.voxels == int(np.count_nonzero(volume[14] > 150))
    assert client.undo("tube").voxels == 0


def test_a_cancelled_propagation_commits_nothing_and_keeps_the_slice(a_tube_client, a_gate):
    client, volume, _ = a_tube_client
    release, entered = held(a_gate)
    update = client.add_box("tube", *disc_box(volume, 14), engine=ENGINE)
    assert entered.wait(10)
    client.cancel_propagation(update)
    release.set()
    with pytest.raises(errors.JobCancelledError) as cancelled:
        client.wait_propagation(update, poll_s=0.02)
    assert cancelled.value.code == "cancelled" and "by request" in str(cancelled.value)
    (segment,) = client.segments()
    assert segment["voxels"] == int(np.count_nonzero(volume[14] > 150))


def test_cancel_through_an_event_while_waiting(a_tube_client, a_gate):
    client, volume, _ = a_tube_client
    release, entered = held(a_gate)
    update = client.add_box("tube", *disc_box(volume, 14), engine=ENGINE)
    cancel = threading.Event()
    cancel.set()
    threading.Timer(0.2, release.set).start()
    with pytest.raises(errors.JobCancelledError):
        client.wait_propagation(update, cancel_event=cancel, poll_s=0.02)


def test_a_later_click_supersedes_a_running_propagation(a_tube_client, a_gate):
    client, volume, server = a_tube_client
    release, entered = held(a_gate)
    first = client.add_box("tube", *disc_box(volume, 14), engine=ENGINE)
    assert entered.wait(10)
    second_client = server.client()
    second_client.session_token, second_client.image_id = client.session_token, client.image_id
    answers = []
    clicker = threading.Thread(target=lambda: answers.append(
        second_client.add_point("tube", (14.0, 20.0, 25.0), positive=True, engine=ENGINE)))
    clicker.start()
    threading.Timer(0.3, release.set).start()
    clicker.join(30)
    with pytest.raises(errors.JobCancelledError) as superseded:
        client.wait_propagation(first, poll_s=0.02)
    assert superseded.value.code == "superseded"
    final = client.wait_propagation(answers[0], poll_s=0.02)
    labels, _ = client.labelmap()
    assert final.voxels == int(np.count_nonzero(labels)) == int(np.count_nonzero(volume > 150))


def test_a_cancel_arriving_right_after_the_commit_leaves_the_job_done_with_its_change(
        a_tube_client, monkeypatch):
    """A cancel (the user's, or a later click superseding it) that reaches the job after it
    wrote the segment cannot take the change back: the job ends done and hands its mask,
    so that a client applies what the server holds."""
    from slicerfm_backend import propagation

    commit = propagation._commit

    def commit_then_cancel(ctx, *args):
        answer = commit(ctx, *args)
        ctx._job.cancel_requested.set()  # as JobManager.cancel does for a running job
        return answer

    monkeypatch.setattr(propagation, "_commit", commit_then_cancel)
    client, volume, _ = a_tube_client
    labels = np.zeros(volume.shape, bool)
    update = client.add_box("tube", *disc_box(volume, 14), engine=ENGINE)
    update.apply_to(labels)
    more = client.wait_propagation(update, poll_s=0.02)
    more.apply_to(labels)
    assert more.propagation["state"] == "done" and more.propagation["stage"] == "committed"
    server_labels, _ = client.labelmap()
    assert np.array_equal(server_labels > 0, labels) and np.array_equal(labels, volume > 150)


def test_the_engine_list_says_which_engines_take_slice_prompts(a_tube_client):
    client, _, _ = a_tube_client
    rows = {row["name"]: row for row in client.engines()}
    assert rows[ENGINE]["slice_prompts"] is True and rows["sphere"]["slice_prompts"] is False


def test_a_propagation_ends_with_its_session(a_tube_client, a_gate):
    client, volume, server = a_tube_client
    release, entered = held(a_gate)
    update = client.add_box("tube", *disc_box(volume, 14), engine=ENGINE)
    assert entered.wait(10)
    job_id = update.propagation["job_id"]
    client.close()
    release.set()
    watcher = server.client()
    status = None
    for _ in range(500):
        status = watcher.job_status(job_id)
        if status["state"] in ("done", "failed", "cancelled"):
            break
        threading.Event().wait(0.02)
    assert status["state"] == "cancelled" and status["stage"] == "session_ended"


def test_propagation_never_takes_a_locked_segments_voxels(a_tube_client):
    client, volume, _ = a_tube_client
    organ = np.zeros(volume.shape, bool)
    organ[18:21, 15:25, 20:30] = True  # part of the tube on slices 18..20
    client.seed("organ", organ)
    client.lock("organ")
    update = client.add_box("tube", *disc_box(volume, 14), engine=ENGINE)
    more = client.wait_propagation(update, poll_s=0.02)
    labels, segments = client.labelmap()
    label = {s["name"]: s["label"] for s in segments}
    assert np.array_equal(labels == label["organ"], organ)  # untouched
    tube = np.zeros(volume.shape, bool)
    update.apply_to(tube)
    more.apply_to(tube)
    assert not (tube & organ).any()
    assert np.array_equal(tube, (volume > 150) & ~organ)
    with pytest.raises(errors.SegmentLockedError):
        client.add_box("organ", *disc_box(volume, 19), engine=ENGINE)


def test_propagate_false_and_max_slices_travel_with_the_click(a_tube_client):
    client, volume, _ = a_tube_client
    only = client.add_box("a", *disc_box(volume, 14), engine=ENGINE, propagate=False)
    assert only.propagation is None
    limited = client.add_slice_box("b", 0, 14, disc_box(volume, 14)[0][1:], disc_box(volume, 14)[1][1:],
                                   engine=ENGINE, max_slices=2)
    more = client.wait_propagation(limited, poll_s=0.02)
    assert more.bbox[0][0] == 12 and more.bbox[1][0] == 17
    assert more.propagation["result"]["stopped"] == {"increasing": "limit", "decreasing": "limit"}


def test_slice_points_refine_a_slice_on_the_views_axis(a_tube_client):
    client, volume, _ = a_tube_client
    update = client.add_slice_point("c", 1, 20, 14.0, 25.0, engine=ENGINE)  # coronal view, j = 20
    assert update.bbox[0][1] == 20 and update.bbox[1][1] == 21
    more = client.wait_propagation(update, poll_s=0.02)
    assert more.propagation["result"]["axis"] == 1


@pytest.mark.parametrize("field,value,message", [
    ("slice_axis", 3, "slice_axis"), ("propagate", "yes", "propagate"), ("max_slices", 0, "max_slices"),
])
def test_bad_slice_fields_are_refused(a_tube_client, field, value, message):
    client, volume, _ = a_tube_client
    with pytest.raises(errors.InvalidInputError, match=message):
        client.add_box("d", *disc_box(volume, 14), engine=ENGINE, **{field: value})


def test_a_box_thin_on_two_axes_is_refused_and_changes_nothing(a_tube_client):
    client, _, _ = a_tube_client
    with pytest.raises(errors.InvalidInputError, match="two voxels on two axes"):
        client.add_box("e", (14, 20, 10), (14, 20, 30), engine=ENGINE)
    assert client.segments()[0]["voxels"] == 0


def test_a_full_job_queue_answers_the_slice_and_says_why_nothing_propagates(a_server_factory, monkeypatch):
    import requests

    from slicerfm_client import protocol, wire

    monkeypatch.setitem(registry.ENGINE_CLASSES, ENGINE, "slicewise_helpers:StandInSliceEngine")
    server = a_server_factory(engines=[ENGINE], max_jobs=1)
    client = server.client()
    client.connect("tests", heartbeat=False)
    volume = tube_volume()
    client.set_image(volume, IJK_TO_RAS, "CT")
    blocker = threading.Event()
    server.state.jobs.submit("test-blocker", lambda ctx: {"waited": blocker.wait(30)}, "cpu")
    try:
        raw = requests.post(server.url + protocol.PATH_INTERACT,
                            headers={protocol.HEADER_SESSION: client.session_token},
                            json={"segment": "one", "engine": ENGINE,
                                  "prompt": {"kind": "box", "box_kji": [list(c) for c in disc_box(volume, 14)]}})
        assert raw.status_code == 200
        header, mask = wire.decode(raw.content)
        assert "propagation" not in header.meta and header.meta["propagation_error"]["error"] == "server_full"
        assert header.meta["voxels"] == int(np.count_nonzero(volume[14] > 150))  # the slice stands
    finally:
        blocker.set()
        client.close()


def test_a_session_waiting_for_its_propagation_does_not_end_for_idleness(a_server_factory, monkeypatch, a_gate):
    monkeypatch.setitem(registry.ENGINE_CLASSES, ENGINE, "slicewise_helpers:StandInSliceEngine")
    server = a_server_factory(engines=[ENGINE], idle_timeout_s=0.2, liveness_timeout_s=0.2)
    client = server.client()
    client.connect("tests", heartbeat=False)
    volume = tube_volume()
    client.set_image(volume, IJK_TO_RAS, "CT")
    release, entered = held(a_gate)
    update = client.add_box("tube", *disc_box(volume, 14), engine=ENGINE)
    assert entered.wait(10)
    threading.Event().wait(0.5)  # silent and idle past both timeouts, while the job runs
    server.state.sessions.reap()
    release.set()
    done = client.wait_propagation(update, poll_s=0.02)
    assert done.voxels == int(np.count_nonzero(volume > 150))
    threading.Event().wait(0.5)
    server.state.sessions.reap()  # finished: now silence ends it
    with pytest.raises(errors.SessionExpiredError):
        client.segments()
