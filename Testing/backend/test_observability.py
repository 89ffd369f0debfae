"""What the server tells its operators: Prometheus metrics, JSON logs, the audit log; and
what it answers when the device runs out of memory or a user queues too much."""

import json
import logging
import threading
import time

import numpy as np
import pytest
import requests

from slicerfm_backend import log_setup
from slicerfm_client import errors, protocol


def metrics_text(server, headers=None):
    response = requests.get(server.url + protocol.PATH_METRICS, headers=headers or {})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return response.text


def test_metrics_cover_requests_by_route_engine_stages_waits_sessions_jobs_and_memory(a_connected_client, a_server):
    a_connected_client.add_point("organ", (10, 15, 20), True, engine="sphere")
    text = metrics_text(a_server)
    for expected in ('slicerfm_request_seconds_count{method="POST",route="/api/session/interact",status="200"}',
                     'slicerfm_engine_stage_seconds_count{engine="sphere",stage="total"}',
                     'slicerfm_engine_stage_seconds_count{engine="sphere",stage="toy"}',
                     'slicerfm_device_wait_seconds_count{device="cpu",priority="interactive"}',
                     "slicerfm_sessions 1.0", 'slicerfm_jobs{state="running"}',
                     'slicerfm_memory_limit_bytes{budget="images"}', 'slicerfm_memory_used_bytes{budget="sessions"}',
                     'slicerfm_device_queue_depth{device="cpu",priority="background"}',
                     "process_resident_memory_bytes", "slicerfm_auth_refusals_total"):
        assert expected in text, expected
    assert a_connected_client.image_id not in text and a_connected_client.session_token.split(".")[1] not in text
    assert "/api/images/" + a_connected_client.image_id not in text


def test_metrics_are_for_admins(a_lab_server):
    refused = requests.get(a_lab_server.url + protocol.PATH_METRICS, headers=a_lab_server.headers("alice"))
    assert refused.status_code == 403
    assert "slicerfm_sessions" in metrics_text(a_lab_server, a_lab_server.headers("root"))


def test_json_log_lines_are_json_and_text_lines_escape_control_characters():
    record = logging.LogRecord("slicerfm_backend.access", logging.INFO, __file__, 1, "%s %s", ("GET", "a\nb"), None)
    line = json.loads(log_setup.formatter("json").format(record))
    assert line["level"] == "INFO" and line["logger"] == "slicerfm_backend.access" and line["message"] == "GET a\nb"
    text = log_setup.formatter("text").format(record)
    assert "\n" not in text and "a\\nb" in text


def test_the_audit_log_says_who_did_what_without_ids_or_names(a_lab_server, a_ct_like_volume):
    alice = a_lab_server.client("alice")
    alice.connect("audit", heartbeat=False)
    image_id = alice.set_image(*a_ct_like_volume, "CT")
    alice.add_point("secret-patient-name", (10, 15, 20), True, engine="sphere")
    alice.undo("secret-patient-name")
    alice.close()
    with pytest.raises(errors.AuthenticationError):
        a_lab_server.client("carol").connect(heartbeat=False)
    a_lab_server.state.audit.close()
    lines = [json.loads(line) for line in (a_lab_server.state_dir / "audit.log").read_text().splitlines()]
    actions = [(line["user"], line["action"]) for line in lines]
    for expected in (("alice", "session.claim"), ("alice", "image.upload"), ("alice", "segment.interact"),
                     ("alice", "segment.undo"), ("alice", "session.end")):
        assert expected in actions, expected
    text = (a_lab_server.state_dir / "audit.log").read_text()
    for secret in (image_id, "secret-patient-name", a_lab_server.tokens["alice"]):
        assert secret not in text


def test_running_out_of_gpu_memory_answers_503_frees_the_caches_and_the_server_goes_on(a_connected_client, a_server):
    a_connected_client.add_point("organ", (10, 15, 20), True, engine="sphere")
    with pytest.raises(errors.ServerBusyError, match="ran out of memory") as refused:
        a_connected_client.add_point("organ", (10, 15, 25), True, engine="oom")
    assert refused.value.code == "out_of_memory" and refused.value.retry_after
    assert len(a_server.state.caches._caches) == 0  # the engines' caches were dropped
    assert a_connected_client.segments()[0]["voxels"] > 0  # the segment is as it was
    a_connected_client.add_point("organ", (12, 15, 25), True, engine="sphere")


def test_a_job_that_runs_out_of_gpu_memory_fails_saying_so(a_server):
    def work(ctx):
        raise RuntimeError("CUDA out of memory. Tried to allocate 8.00 GiB")

    job = a_server.state.jobs.submit("demo", work, "cpu")
    with pytest.raises(errors.JobFailedError, match="ran out of memory") as failed:
        a_server.client().wait_job(job.id, poll_s=0.01)
    assert failed.value.code == "out_of_memory"


def test_a_job_reports_its_queue_position_and_how_long_it_waited(a_server):
    gate = threading.Event()
    first = a_server.state.jobs.submit("blocker", lambda ctx: (gate.wait(10), {})[-1], "cpu")
    second = a_server.state.jobs.submit("waiting", lambda ctx: {}, "cpu")
    client = a_server.client()
    status = client.job_status(second.id)
    assert status["state"] == "queued" and status["queue_position"] == 0 and "queued_s" in status
    gate.set()
    done = client.wait_job(second.id, poll_s=0.01)
    assert done["queued_s"] > 0 and done["device_wait_s"] >= 0
    client.wait_job(first.id, poll_s=0.01)


def test_one_user_may_have_only_so_many_jobs_waiting_or_running(a_lab_server, a_ct_like_volume):
    gate = threading.Event()
    jobs = a_lab_server.state.jobs
    for _ in range(jobs.max_jobs_per_user):
        jobs.submit("blocker", lambda ctx: (gate.wait(10), {})[-1], "cpu", owner="user:alice")
    alice = a_lab_server.client("alice")
    image_id = alice.upload_image(*a_ct_like_volume, "CT")
    body = {"engine": "classic", "fixed": {"image_id": image_id}, "moving": {"image_id": image_id}}
    refused = requests.post(a_lab_server.url + protocol.PATH_REGISTER, json=body, headers=a_lab_server.headers("alice"))
    assert refused.status_code == 503 and "MAX_JOBS_PER_USER" in refused.json()["message"]
    assert refused.headers["Retry-After"]
    bob = a_lab_server.client("bob")
    bob_image = bob.upload_image(*a_ct_like_volume, "CT")
    body = {"engine": "classic", "fixed": {"image_id": bob_image}, "moving": {"image_id": bob_image}}
    accepted = requests.post(a_lab_server.url + protocol.PATH_REGISTER, json=body, headers=a_lab_server.headers("bob"))
    assert accepted.status_code == 202  # another user is not held up by alice's
    bob.cancel_job(accepted.json()["job_id"])
    gate.set()


def test_server_timing_reports_the_wait_and_the_clicks_ahead(a_connected_client, a_server):
    scheduler = a_server.state.devices("cpu")
    scheduler.acquire("someone else")  # the device is busy when the click arrives
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        update=a_connected_client.add_point("organ", (10, 15, 20), True, engine="sphere")))
    thread.start()
    deadline = time.monotonic() + 10
    while scheduler.depth()["interactive"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    scheduler.release()
    thread.join(10)
    update = result["update"]
    assert update.queue_ahead == 1 and update.timings_ms["queue"] >= 40
    assert np.isfinite(list(update.timings_ms.values())).all()
