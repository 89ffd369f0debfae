"""The background worker: results come back on the polling thread, in order; cancelling."""

import threading

import pytest

from SlicerFMLib.worker import BackgroundWorker, InlineRunner


@pytest.fixture
def a_worker():
    worker = BackgroundWorker()
    yield worker
    worker.shutdown()


def test_results_are_delivered_on_the_polling_thread_in_submission_order(a_worker):
    ran_in, delivered = [], []

    def work(value):
        ran_in.append(threading.get_ident())
        return value * 2

    for value in (1, 2, 3):
        a_worker.submit(work, value, on_done=lambda r: delivered.append((r, threading.get_ident())))
    assert delivered == []                  # nothing is delivered without a poll
    a_worker.wait(10)
    assert [r for r, _ in delivered] == [2, 4, 6]
    assert {t for _, t in delivered} == {threading.get_ident()}
    assert threading.get_ident() not in ran_in


def test_an_exception_in_the_worker_reaches_on_error(a_worker):
    errors = []

    def fail():
        raise RuntimeError("boom")

    a_worker.submit(fail, on_done=lambda r: errors.append("done?"), on_error=errors.append)
    a_worker.wait(10)
    assert len(errors) == 1 and str(errors[0]) == "boom"


def test_a_cancelled_running_task_hands_its_result_to_on_cancelled(a_worker):
    release, started, seen = threading.Event(), threading.Event(), []

    def slow():
        started.set()
        release.wait(10)
        return "late"

    running = a_worker.submit(slow, on_done=lambda r: seen.append(("done", r)),
                              on_cancelled=lambda r: seen.append(("cancelled", r)))
    queued = a_worker.submit(lambda: seen.append(("ran", None)), on_done=lambda r: None)
    assert started.wait(10) and running.running
    a_worker.cancel()
    release.set()
    a_worker.wait(10)
    assert seen == [("cancelled", "late")]  # the queued task never ran
    assert queued.cancelled and not a_worker.busy


def test_wait_gives_up_after_its_timeout(a_worker):
    release = threading.Event()
    a_worker.submit(release.wait, 10)
    with pytest.raises(TimeoutError):
        a_worker.wait(0.2)
    release.set()
    a_worker.wait(10)


def test_the_inline_runner_runs_and_delivers_before_submit_returns():
    seen = []
    task = InlineRunner().submit(lambda: 7, on_done=seen.append)
    assert seen == [7] and task.result == 7 and task.delivered
    task = InlineRunner().submit(lambda: 1 / 0, on_error=seen.append)
    assert isinstance(seen[-1], ZeroDivisionError) and task.error is seen[-1]


def test_a_cancelled_task_that_then_fails_still_reaches_on_cancelled(a_worker):
    """E.g. an upload cut off by a disconnect after Cancel: the Logic waiting for it must
    hear of it, or later clicks would queue behind it for ever."""
    release, started, seen = threading.Event(), threading.Event(), []

    def fails_late():
        started.set()
        release.wait(10)
        raise ConnectionError("connection closed")

    a_worker.submit(fails_late, on_error=seen.append, on_cancelled=lambda r: seen.append(("cancelled", r)))
    assert started.wait(10)
    a_worker.cancel()
    release.set()
    a_worker.wait(10)
    assert seen == [("cancelled", None)]


def test_the_interactive_logic_sends_the_next_click_after_a_cancelled_one_failed():
    """The prepare -> run -> apply cycle clears the in-flight click however it ended."""
    from SlicerFMLib.interactive_logic import InteractiveSegmentationLogic

    logic = InteractiveSegmentationLogic(runner=BackgroundWorker())
    release, started = threading.Event(), threading.Event()

    def fails_late(_interaction):
        started.set()
        release.wait(10)
        raise ConnectionError("connection closed")

    logic._execute = fails_late
    logic._run(object.__new__(_Interaction))
    assert started.wait(10) and logic.inflight is not None
    logic.cancel()
    release.set()
    logic.runner.wait(10)
    assert logic.inflight is None
    logic.runner.shutdown()


class _Interaction:
    description = "a click"
