"""Progress shared between the worker thread and the main thread, and cancel."""

import threading

import pytest

from slicerfm_client import errors
from SlicerFMLib.job_progress import JobProgress


def test_server_status_dicts_become_snapshots_with_a_readable_line():
    seen = []
    progress = JobProgress(listener=seen.append)
    assert progress.snapshot().text() == ""
    progress.local("uploading the volume")
    assert progress.snapshot().text() == "working: uploading the volume"
    progress.report({"job_id": "abc", "state": "queued", "stage": "", "done": 0, "total": 0,
                     "progress": None, "queue_position": 2})
    assert progress.snapshot().text() == "queued, 2 job(s) ahead"
    progress.report({"job_id": "abc", "state": "running", "stage": "demons", "done": 30,
                     "total": 115, "progress": 0.26, "queue_position": None})
    snapshot = progress.snapshot()
    assert (snapshot.state, snapshot.fraction, snapshot.job_id) == ("running", 0.26, "abc")
    assert snapshot.text() == "running: demons (30/115)"
    assert [s.state for s in seen] == ["local", "queued", "running"]
    assert seen[-1].elapsed_s >= seen[0].elapsed_s >= 0.0


def test_cancel_sets_the_event_the_client_watches_from_any_thread():
    progress = JobProgress()
    progress.check_cancelled()                      # not cancelled: nothing happens
    thread = threading.Thread(target=progress.cancel)
    thread.start()
    thread.join()
    assert progress.cancelled and progress.cancel_event.is_set()
    with pytest.raises(errors.JobCancelledError):
        progress.check_cancelled()
