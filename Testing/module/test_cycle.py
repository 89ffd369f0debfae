"""The prepare -> run -> apply cycle shared by clicks and server jobs (SlicerFMLib.cycle)."""

import threading

import pytest

from SlicerFMLib.cycle import FeatureLogic
from SlicerFMLib.worker import BackgroundWorker


@pytest.fixture
def a_worker():
    worker = BackgroundWorker()
    yield worker
    worker.shutdown()


def test_execute_runs_on_the_worker_and_apply_on_the_polling_thread_between_the_hooks(a_worker):
    feature = FeatureLogic(runner=a_worker)
    seen = []
    feature._cycle(21, lambda payload: (seen.append(("execute", threading.get_ident())), payload * 2)[1],
                   lambda payload, result: seen.append(("apply", payload, result, threading.get_ident())),
                   description="double", on_error=seen.append,
                   before=lambda: seen.append("before"), after=lambda: seen.append("after"))
    a_worker.wait(10)
    here = threading.get_ident()
    assert seen[0][0] == "execute" and seen[0][1] != here
    assert seen[1:] == ["before", ("apply", 21, 42, here), "after"]


def test_a_result_that_no_longer_fits_the_scene_goes_to_on_error_like_a_network_error():
    feature = FeatureLogic()              # inline runner: as in the Python console
    errors = []

    def apply(payload, result):
        raise ValueError("the segmentation was removed")

    task = feature._cycle(1, lambda payload: payload, apply, description="x", on_error=errors.append)
    assert task.delivered and [str(e) for e in errors] == ["the segmentation was removed"]
    feature._cycle(1, lambda payload: 1 / 0, apply, description="x", on_error=errors.append)
    assert isinstance(errors[-1], ZeroDivisionError)


def test_a_cancelled_run_hands_its_late_result_to_on_cancelled_not_to_apply(a_worker):
    feature = FeatureLogic(runner=a_worker)
    release, started, seen = threading.Event(), threading.Event(), []

    def slow(payload):
        started.set()
        release.wait(10)
        return "late"

    feature._cycle(None, slow, lambda p, r: seen.append("applied"), description="slow",
                   on_error=seen.append, on_cancelled=lambda r: seen.append(("cancelled", r)),
                   after=lambda: seen.append("after"))
    assert started.wait(10)
    a_worker.cancel()
    release.set()
    a_worker.wait(10)
    assert seen == [("cancelled", "late"), "after"]


def test_report_tells_the_user_without_the_token_and_raises_only_when_blocking(a_worker):
    from slicerfm_client import errors
    from SlicerFMLib.connection import ConnectionSettings

    messages = []
    feature = FeatureLogic(runner=a_worker)
    feature.messageCallback = lambda text, level: messages.append((level, text))
    feature.connection.settings = ConnectionSettings(mode="remote", token="sekrit-token")
    feature._report(errors.BadRequestError("failed with sekrit-token in it"), prefix="job failed: ")
    assert messages == [("error", "job failed: failed with <token> in it")]
    blocking = FeatureLogic()
    with pytest.raises(errors.BadRequestError):
        blocking._report(errors.BadRequestError("boom"))
