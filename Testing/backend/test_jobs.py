"""Background jobs: states, progress, cancel, failures, limits, pinning, HTTP and fairness."""

import threading
import time

import numpy as np
import pytest

from slicerfm_backend.errors import DomainError, EngineError
from slicerfm_backend.jobs import JobManager
from slicerfm_backend.scheduler import DeviceSchedulers
from slicerfm_client import errors


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


def manager(**kwargs):
    return JobManager(DeviceSchedulers(), **kwargs)


def test_a_job_reports_progress_and_keeps_its_result_and_arrays():
    jobs = manager()
    release = threading.Event()

    def work(ctx):
        ctx.progress("warming up", 1, 4)
        release.wait(5)
        with ctx.device_step():
            ctx.add_array("field", np.arange(6, dtype=np.float32).reshape(1, 2, 3), {"unit": "mm"})
        ctx.progress("done", 4, 4)
        return {"answer": 42}

    job = jobs.submit("demo", work, "cpu")
    wait_for(lambda: job.stage == "warming up")
    status = jobs.describe(job)
    assert status["state"] == "running" and status["progress"] == 0.25
    assert status["result"] is None and status["arrays"] == []
    release.set()
    wait_for(lambda: job.state == "done")
    status = jobs.describe(job)
    assert status["result"] == {"answer": 42} and status["arrays"] == ["field"]
    array, meta = jobs.array(job.id, "field")
    assert meta == {"unit": "mm"} and array.shape == (1, 2, 3)


def test_cancelling_a_running_job_stops_it_at_its_next_progress_report():
    jobs = manager()
    steps = []

    def work(ctx):
        for step in range(10_000):
            ctx.progress("iterating", step, 10_000)
            steps.append(step)
            time.sleep(0.001)
        return {}

    job = jobs.submit("long", work, "cpu")
    wait_for(lambda: len(steps) > 3)
    jobs.cancel(job.id)
    wait_for(lambda: job.state == "cancelled")
    assert len(steps) < 10_000
    with pytest.raises(DomainError) as caught:
        jobs.array(job.id, "anything")
    assert caught.value.code == "job_not_done"


def test_a_queued_job_cancelled_never_runs_and_the_queue_goes_on():
    jobs = manager()
    gate = threading.Event()
    ran = []
    first = jobs.submit("first", lambda ctx: (gate.wait(5), ran.append("first"), {})[-1], "cpu")
    second = jobs.submit("second", lambda ctx: (ran.append("second"), {})[-1], "cpu")
    third = jobs.submit("third", lambda ctx: (ran.append("third"), {})[-1], "cpu")
    wait_for(lambda: first.state == "running")
    assert jobs.describe(third)["queue_position"] == 1
    jobs.cancel(second.id)
    assert second.state == "cancelled"
    gate.set()
    wait_for(lambda: third.state == "done")
    assert ran == ["first", "third"] and first.state == "done"


@pytest.mark.parametrize("error, code, text", [
    (EngineError("weights do not fit"), "job_failed", "weights do not fit"),
    (ValueError("the fixed image is empty"), "job_failed", "the fixed image is empty"),
    (DomainError("invalid", "mask geometry differs"), "invalid", "mask geometry differs"),
    (ZeroDivisionError("bug"), "internal_error", "ZeroDivisionError"),
])
def test_a_failing_job_reports_its_error_and_the_next_job_still_runs(error, code, text):
    jobs = manager()

    def fail(ctx):
        raise error

    failed = jobs.submit("bad", fail, "cpu")
    after = jobs.submit("good", lambda ctx: {"ok": True}, "cpu")
    wait_for(lambda: after.state == "done")
    status = jobs.describe(failed)
    assert status["state"] == "failed" and status["error"]["error"] == code
    assert text in status["error"]["message"] and status["result"] is None


def test_too_many_pending_jobs_are_refused_with_retry_after():
    jobs = manager(max_jobs=2)
    gate = threading.Event()
    jobs.submit("a", lambda ctx: (gate.wait(5), {})[-1], "cpu")
    jobs.submit("b", lambda ctx: {}, "cpu")
    with pytest.raises(DomainError) as caught:
        jobs.submit("c", lambda ctx: {}, "cpu")
    assert caught.value.code == "server_full" and caught.value.retry_after_s > 0
    gate.set()


def test_images_are_pinned_while_a_job_runs_and_results_expire_after_the_ttl():
    clock = FakeClock()
    jobs = manager(ttl_s=60.0, clock=clock)
    gate = threading.Event()
    job = jobs.submit("pair", lambda ctx: (gate.wait(5), {})[-1], "cpu", image_ids=["fixed", "moving"])
    assert jobs.images_in_use() == {"fixed", "moving"}
    gate.set()
    wait_for(lambda: job.state == "done")
    assert jobs.images_in_use() == set()
    clock.now += 59
    assert jobs.reap() == 0 and jobs.get(job.id) is job
    clock.now += 2
    assert jobs.reap() == 1
    with pytest.raises(DomainError) as caught:
        jobs.get(job.id)
    assert caught.value.code == "job_not_found"


# -- through HTTP ----------------------------------------------------------------------


def test_a_client_follows_a_job_over_http_with_progress_and_downloads_its_array(a_server):
    client = a_server.client()
    field = np.random.default_rng(0).normal(size=(3, 4, 5, 3)).astype(np.float32)

    def work(ctx):
        for step in range(3):
            ctx.progress("stepping", step + 1, 3)
        ctx.add_array("displacement", field, {"ijk_to_ras": np.eye(4).tolist()})
        return {"neg_jacobian_fraction": 0.0}

    job = a_server.state.jobs.submit("demo", work, "cpu")
    seen = []
    status = client.wait_job(job.id, on_progress=seen.append, poll_s=0.01)
    assert status["state"] == "done" and status["result"] == {"neg_jacobian_fraction": 0.0}
    assert seen[-1]["state"] == "done"
    array, meta = client.job_array(job.id, "displacement")
    np.testing.assert_array_equal(array, field)
    assert meta["ijk_to_ras"] == np.eye(4).tolist()
    with pytest.raises(errors.NotFoundError):
        client.job_array(job.id, "warped")
    with pytest.raises(errors.JobNotFoundError):
        client.job_status("no-such-job")


def test_a_client_cancel_event_cancels_the_job_on_the_server(a_server):
    client = a_server.client()

    def work(ctx):
        while True:
            ctx.progress("waiting for cancel")
            time.sleep(0.005)

    job = a_server.state.jobs.submit("endless", work, "cpu")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(errors.JobCancelledError):
        client.wait_job(job.id, cancel_event=cancel, poll_s=0.01)
    assert job.state == "cancelled"


def test_a_failed_job_raises_its_message_on_the_client(a_server):
    client = a_server.client()

    def work(ctx):
        raise EngineError("CUDA out of memory: try fewer instance-optimisation steps")

    job = a_server.state.jobs.submit("oom", work, "cpu")
    with pytest.raises(errors.JobFailedError) as caught:
        client.wait_job(job.id, poll_s=0.01)
    assert "fewer instance-optimisation steps" in str(caught.value) and caught.value.code == "job_failed"


def test_an_interactive_click_runs_between_the_steps_of_a_job_on_the_same_device(a_server):
    """The job holds the device one step at a time: a click gets through while it runs."""
    client = a_server.client()
    client.connect(heartbeat=False)
    client.set_image(np.zeros((20, 30, 40), np.int16), np.eye(4), "CT")
    clicked = threading.Event()
    steps = []

    def work(ctx):
        while not clicked.is_set():
            with ctx.device_step():
                steps.append(1)
                time.sleep(0.002)
        return {"steps": len(steps)}

    job = a_server.state.jobs.submit("busy", work, "cpu")  # the toy engines run on the CPU
    wait_for(lambda: len(steps) > 2)
    update = client.add_point("organ", (10, 15, 20), True, engine="sphere")
    assert job.state == "running"  # the job cannot end before the click returned
    clicked.set()
    wait_for(lambda: job.state == "done")
    assert update.voxels > 0
    client.close()
