"""Regression tests for what an attack run against `serve` found (issue 14, findings 1-10).

Each test fails on the server before the fix. Memory figures (findings 2-4, "memory
back") are measured on a real server process in Testing/e2e/test_lab_faults.py.
"""

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from pydantic import ValidationError

from slicerfm_backend.auth.authenticator import Authenticator
from slicerfm_backend.settings import Settings
from slicerfm_client import errors, geometry, protocol, wire
from slicerfm_client.client import SlicerFMClient

EXECUTABLE = str(Path(sys.executable).with_name("slicerfm-backend"))
SHAPE = (20, 30, 40)


def image_message(array, meta=None):
    matrix = np.eye(4).tolist()
    sha = wire.array_sha256(array)
    body = wire.encode(array, {"ijk_to_ras": matrix, "modality": "CT", **(meta or {})}, sha256=sha)
    return geometry.image_id(array.dtype.name, array.shape, matrix, sha), body


def session_headers(client):
    return {protocol.HEADER_SESSION: client.session_token, protocol.HEADER_PROTOCOL: protocol.PROTOCOL_VERSION}


# -- 1. an empty token switched authentication off -------------------------------------------


@pytest.mark.parametrize("empty", ["", "   ", "\n"])
def test_an_empty_token_is_refused_instead_of_switching_authentication_off(empty):
    with pytest.raises(ValidationError, match="empty"):
        Settings(token=empty)
    with pytest.raises(ValueError, match="empty"):
        Authenticator(token=empty)


def test_serve_refuses_an_empty_token_file(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("  \n")
    done = subprocess.run([EXECUTABLE, "serve", "--host", "0.0.0.0", "--port", "0", "--token-file", str(token_file)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "empty" in done.stderr


@pytest.mark.parametrize("settings", [{}, {"token": "a-real-token"}])
def test_info_says_a_token_is_needed_exactly_when_the_server_refuses_requests_without_one(a_server_factory, settings):
    server = a_server_factory(**settings)
    said = requests.get(server.url + protocol.PATH_INFO).json()["auth_required"]
    refused = requests.get(server.url + protocol.PATH_ENGINES).status_code == 401
    assert said is refused


# -- 3 and 6. amplification, a full image store --------------------------------------------


def test_the_image_budget_comes_from_the_machines_memory_not_a_fixed_16_gib():
    from slicerfm_backend.memory import machine_memory_bytes

    budgets = Settings().budgets()
    assert 0 < budgets["images"] < machine_memory_bytes()
    assert sum(budgets.values()) <= machine_memory_bytes()


def test_an_image_larger_than_the_whole_image_memory_is_refused_from_its_header(a_server_factory):
    server = a_server_factory(image_cache_bytes=100_000)
    image_id, body = image_message(np.zeros((100, 100, 100), np.uint8))  # 1 MB of zeros: ~3 kB sent
    response = requests.put(server.url + protocol.image_path(image_id), data=body)
    assert response.status_code == 413 and "SLICERFM_IMAGE_CACHE_BYTES" in response.json()["message"]
    assert server.state.budgets["images"].used == 0


def test_a_full_image_store_answers_retry_later_and_keeps_the_image_just_uploaded(a_server_factory):
    """Before: the second upload evicted the first (201), whose attach then answered 404."""
    server = a_server_factory(image_cache_bytes=50_000)
    first = server.client()
    first.connect(heartbeat=False)
    first_id = first.upload_image(np.full(SHAPE, 1, np.int16)[:10], np.eye(4))  # 24 kB
    second = server.client()
    second.connect(heartbeat=False)
    second.set_image(np.full(SHAPE, 2, np.int16)[:10], np.eye(4))  # attached: in use
    with pytest.raises(errors.ServerBusyError) as full:
        second.upload_image(np.full(SHAPE, 3, np.int16)[:10], np.eye(4))
    assert full.value.retry_after and full.value.status == 503 and "full" in str(full.value)
    first.attach_image(first_id)  # still there


# -- 4. undo history and job results have byte limits --------------------------------------


def test_full_image_seeds_are_kept_compressed_in_the_undo_history(a_connected_client, a_server):
    """Before: each seed of the whole image kept two byte-per-voxel copies (416 seeds: +1 GB)."""
    full = np.zeros(SHAPE, np.uint8)
    for n in range(60):
        full[:] = 0
        full[n % SHAPE[0]] = 1
        a_connected_client.seed("organ", full)
    session = next(iter(a_server.state.sessions._sessions.values()))
    raw_steps = 50 * 2 * full.size  # what 50 undo steps cost as bool arrays
    assert session.nbytes < raw_steps / 10


def test_a_sessions_history_stays_within_its_share_of_the_sessions_budget(a_server_factory, a_ct_like_volume):
    server = a_server_factory(session_bytes=16 * 60_000, max_sessions=16)  # 60 kB per session
    client = server.client()
    client.connect(heartbeat=False)
    client.set_image(*a_ct_like_volume, "CT")
    noise = np.random.default_rng(0)
    for _ in range(20):  # random masks barely compress: ~3 kB a step
        client.seed("organ", (noise.random(SHAPE) > 0.5).astype(np.uint8))
    session = next(iter(server.state.sessions._sessions.values()))
    assert session.nbytes <= 60_000
    assert client.undo("organ").can_undo  # the newest steps are kept


def test_masks_larger_than_a_sessions_share_are_refused_and_change_nothing(a_server_factory, a_ct_like_volume):
    server = a_server_factory(session_bytes=16 * 10_000, max_sessions=16)
    client = server.client()
    client.connect(heartbeat=False)
    client.set_image(*a_ct_like_volume, "CT")
    with pytest.raises(errors.TooLargeError, match="Nothing was changed"):
        client.seed("organ", np.ones(SHAPE, np.uint8))  # 24 kB as a mask block
    assert client.segments()[0]["voxels"] == 0


def test_job_results_count_against_their_budget(a_server_factory, a_ct_like_volume):
    server = a_server_factory(job_result_bytes=10_000)
    client = server.client()
    client.connect(heartbeat=False)
    image_id = client.upload_image(*a_ct_like_volume, "CT")
    response = requests.post(server.url + protocol.PATH_REGISTER, json={
        "engine": "classic", "fixed": {"image_id": image_id}, "moving": {"image_id": image_id}})
    assert response.status_code == 413 and "SLICERFM_JOB_RESULT_BYTES" in response.json()["message"]


# -- 5. images of other users --------------------------------------------------------------


def test_another_users_image_cannot_be_read_registered_attached_or_probed(a_lab_server, a_ct_like_volume):
    alice = a_lab_server.client("alice")
    image_id = alice.upload_image(*a_ct_like_volume, "CT")
    bob = a_lab_server.client("bob")
    bob.connect(heartbeat=False)
    assert not bob.has_image(image_id)  # HEAD: 404 for bob
    with pytest.raises(errors.ImageNotFoundError):
        bob.attach_image(image_id)
    response = requests.post(a_lab_server.url + protocol.PATH_REGISTER, headers=a_lab_server.headers("bob"),
                             json={"engine": "classic", "fixed": {"image_id": image_id},
                                   "moving": {"image_id": image_id}, "want_warped": True})
    assert response.status_code == 404 and response.json()["error"] == protocol.ERROR_IMAGE_NOT_FOUND
    bob.upload_image(*a_ct_like_volume, "CT")  # uploading it proves bob has it too
    bob.attach_image(image_id)


def test_an_image_is_shared_between_users_when_the_server_says_so(a_lab_server_sharing_images, a_ct_like_volume):
    lab = a_lab_server_sharing_images
    image_id = lab.client("alice").upload_image(*a_ct_like_volume, "CT")
    bob = lab.client("bob")
    bob.connect(heartbeat=False)
    assert bob.has_image(image_id)
    bob.attach_image(image_id)  # without uploading it himself


def test_no_image_id_job_id_or_token_reaches_any_log_line(a_server_factory, a_ct_like_volume, caplog):
    server = a_server_factory(token="a-token-never-logged")
    client = server.client(token="a-token-never-logged")
    with caplog.at_level(logging.DEBUG):
        client.connect("log test", heartbeat=False)
        image_id = client.set_image(*a_ct_like_volume, "CT")
        client.add_point("organ", (10, 15, 20), True, engine="sphere")
        job = client.submit_job(protocol.PATH_REGISTER, {"engine": "classic", "fixed": {"image_id": image_id},
                                                         "moving": {"image_id": image_id}})
        client.cancel_job(job["job_id"])
        requests.get(server.url + protocol.PATH_ENGINES + "?token=" + "secret-in-url",
                     headers={"Authorization": "Bearer a-token-never-logged"})
        client.close()
    server_lines = [r for r in caplog.records if r.name.startswith(("slicerfm_backend", "uvicorn"))]
    text = "\n".join(caplog.handler.format(r) for r in server_lines)
    assert "slicerfm_backend.access" in text  # the access log was captured
    for secret in ("a-token-never-logged", image_id, image_id[:12], job["job_id"], job["job_id"][:6],
                   "secret-in-url", client.session_token or "", "organ"):
        assert not secret or secret not in text, secret


# -- 7. requests that answered 500 ---------------------------------------------------------


def test_a_lone_surrogate_segment_name_is_refused_and_the_session_goes_on(a_connected_client):
    url = a_connected_client.url
    headers = {**session_headers(a_connected_client), "Content-Type": "application/json"}
    body = '{"segment": "\\ud800", "engine": "sphere", "prompt": {"kind": "point", "point_kji": [10, 15, 20]}}'
    assert requests.post(url + protocol.PATH_INTERACT, data=body, headers=headers).status_code == 422
    a_connected_client.add_point("organ", (10, 15, 20), True, engine="sphere")
    deleted = requests.post(url + protocol.PATH_DELETE, data='{"segment": "\\udfff"}', headers=headers)
    assert deleted.status_code == 422
    assert [s["name"] for s in a_connected_client.segments()] == ["organ"]


JSON_ENDPOINTS = [protocol.PATH_SESSIONS, protocol.PATH_ATTACH_IMAGE, protocol.PATH_INTERACT, protocol.PATH_UNDO,
                  protocol.PATH_LOCK, protocol.PATH_DELETE, protocol.PATH_REGISTER, protocol.PATH_SEGMENT_AUTO]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_json_nested_a_thousand_deep_is_refused_with_400(a_connected_client, path):
    deep = '{"segment": ' + "[" * 1000 + "]" * 1000 + "}"
    response = requests.post(a_connected_client.url + path, data=deep,
                             headers={**session_headers(a_connected_client), "Content-Type": "application/json"})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("shape", [[1] * 100, [1 << 40, 1, 1], [2048, 1024, 1024]])
def test_seed_headers_with_absurd_shapes_are_refused_before_allocating(a_connected_client, shape):
    header = {"dtype": "uint8", "shape": shape, "codec": "raw", "chunk_bytes": 1 << 22, "sha256": "0" * 64,
              "meta": {"segment": "organ", "bbox_kji": [[0, 0, 0], [20, 30, 40]]}}
    raw = json.dumps(header).encode()
    body = wire.MAGIC + len(raw).to_bytes(4, "little") + raw
    response = requests.post(a_connected_client.url + protocol.PATH_SEED, data=body,
                             headers=session_headers(a_connected_client))
    assert response.status_code == 422 and "does not match" in response.json()["message"]


@pytest.mark.parametrize("box", ["[[0, 0, 0], [Infinity, 30, 40]]", "[[0, 0, 0], [20.0, 30, 40]]",
                                 "[[0, 0, 0], [true, 30, 40]]", "[[0, 0, 0], [1e999, 30, 40]]"])
def test_a_seed_box_that_is_not_integers_is_refused(a_connected_client, box):
    mask = np.ones((20, 30, 40), np.uint8)
    body = wire.encode(mask, {"segment": "organ", "bbox_kji": [[0, 0, 0], [20, 30, 40]]})
    size = int.from_bytes(body[4:8], "little")
    header = body[8:8 + size].decode().replace('"bbox_kji":[[0,0,0],[20,30,40]]', f'"bbox_kji":{box}')
    body = body[:4] + len(header).to_bytes(4, "little") + header.encode() + body[8 + size:]
    response = requests.post(a_connected_client.url + protocol.PATH_SEED, data=body,
                             headers=session_headers(a_connected_client))
    assert response.status_code == 422, response.text


def test_infinity_and_nan_in_a_json_body_are_refused(a_connected_client):
    body = '{"segment": "organ", "engine": "sphere", "prompt": {"kind": "point", "point_kji": [Infinity, 1, NaN]}}'
    response = requests.post(a_connected_client.url + protocol.PATH_INTERACT, data=body,
                             headers={**session_headers(a_connected_client), "Content-Type": "application/json"})
    assert response.status_code == 400


# -- 8. size limits decided before reading ---------------------------------------------------


def raw_request(url: str, head: str) -> str:
    """Send only a request's head (a large declared body never follows); return the answer's
    status line as soon as the server sends one."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        return sock.recv(4096).decode(errors="replace").splitlines()[0]


def test_an_upload_declaring_more_than_the_limit_is_refused_before_its_body_is_read(a_server_factory):
    server = a_server_factory(max_upload_bytes=1_000_000)
    status = raw_request(server.url, f"PUT {protocol.image_path('a' * 64)} HTTP/1.1\r\nHost: x\r\n"
                                     f"Content-Length: {1 << 34}\r\n\r\n")
    assert " 413 " in status


def test_a_put_to_an_image_already_held_does_not_read_an_unlimited_body(a_server_factory, a_ct_like_volume):
    server = a_server_factory(max_upload_bytes=1_000_000)
    image_id = server.client().upload_image(*a_ct_like_volume, "CT")
    status = raw_request(server.url, f"PUT {protocol.image_path(image_id)} HTTP/1.1\r\nHost: x\r\n"
                                     f"Content-Length: {1 << 34}\r\n\r\n")
    assert " 413 " in status


def test_a_json_body_declaring_more_than_64_kib_is_refused_before_it_is_read(a_connected_client):
    status = raw_request(a_connected_client.url, f"POST {protocol.PATH_INTERACT} HTTP/1.1\r\nHost: x\r\n"
                                                 f"{protocol.HEADER_SESSION}: {a_connected_client.session_token}\r\n"
                                                 f"Content-Length: {1 << 30}\r\n\r\n")
    assert " 413 " in status


# -- 9. lax input ----------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [
    {"kind": "point", "positive": "false", "point_kji": [10, 15, 20]},
    {"kind": "point", "positive": None, "point_kji": [10, 15, 20]},
    {"kind": "point", "positive": 0, "point_kji": [10, 15, 20]},
    {"kind": "point", "point_kji": ["10", "15", "20"]},
    {"kind": "point", "point_kji": [True, 15, 20]},
    {"kind": ["point"], "point_kji": [10, 15, 20]},
    {"kind": "box", "box_kji": [["1", 2, 3], [4, 5, 6]]},
])
def test_prompts_take_json_booleans_and_numbers_only(a_connected_client, prompt):
    response = requests.post(a_connected_client.url + protocol.PATH_INTERACT,
                             json={"segment": "organ", "engine": "sphere", "prompt": prompt},
                             headers=session_headers(a_connected_client))
    assert response.status_code == 422, response.text
    assert a_connected_client.segments() in ([], [{"name": "organ", "label": 1, "locked": False, "voxels": 0,
                                                  "prompts": 0, "can_undo": False, "can_redo": False}])


def test_io_steps_beyond_the_engines_limit_are_refused_when_the_job_is_submitted(a_server, a_ct_like_volume):
    client = a_server.client()
    image_id = client.upload_image(*a_ct_like_volume, "CT")
    response = requests.post(a_server.url + protocol.PATH_REGISTER, json={
        "engine": "classic", "fixed": {"image_id": image_id}, "moving": {"image_id": image_id}, "io_steps": 3000})
    assert response.status_code == 422 and "io_steps" in response.json()["message"]


def test_a_client_name_that_would_forge_a_log_line_is_refused(a_server, caplog):
    with caplog.at_level(logging.INFO):
        response = requests.post(a_server.url + protocol.PATH_SESSIONS,
                                 json={"client": "x\n2026-01-01 00:00:00 INFO admin granted"})
    assert response.status_code == 422
    assert "admin granted" not in caplog.text


def test_the_api_docs_need_the_token_like_every_endpoint_but_info(a_server_factory):
    server = a_server_factory(token="docs-token")
    for path in ("/docs", "/openapi.json"):
        assert requests.get(server.url + path).status_code == 401
        assert requests.get(server.url + path, headers={"Authorization": "Bearer docs-token"}).status_code == 200


# -- 10. smaller ---------------------------------------------------------------------------


def test_a_client_gone_mid_upload_is_logged_once_without_an_error_traceback(a_server, caplog):
    array = np.random.default_rng(0).integers(0, 1000, (60, 100, 100)).astype(np.int16)
    image_id, body = image_message(array)
    with caplog.at_level(logging.INFO):
        raw_head = (f"PUT {protocol.image_path(image_id)} HTTP/1.1\r\nHost: x\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
        host, port = a_server.url.split("//")[1].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(raw_head + body[: len(body) // 2])
        deadline = time.monotonic() + 10
        while "abandoned" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "abandoned" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert a_server.state.budgets["images"].used == 0


def test_engine_counts_travel_in_server_timing_as_descriptions_not_durations(a_server_factory, a_ct_like_volume):
    server = a_server_factory(engines=["classic"])
    client = server.client()
    client.connect(heartbeat=False)
    client.set_image(*a_ct_like_volume, "CT")
    update = client.add_point("organ", (10, 15, 20), True)
    assert "engine.roi_voxels" not in update.timings_ms
    assert float(update.notes["engine.roi_voxels"]) > 0
    assert update.queue_ahead == 0


def test_a_failed_jobs_arrays_say_it_failed(a_server):
    def work(ctx):
        raise ValueError("the pair does not overlap")

    job = a_server.state.jobs.submit("demo", work, "cpu")
    client = a_server.client()
    with pytest.raises(errors.JobFailedError):
        client.wait_job(job.id, poll_s=0.01)
    with pytest.raises(errors.JobNotDoneError, match="failed; it has no results"):
        client.job_array(job.id, "displacement")


def test_a_connection_reset_mid_request_is_not_reported_as_an_unreachable_server():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def reset_after_reading():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()  # RST

    threading.Thread(target=reset_after_reading, daemon=True).start()
    client = SlicerFMClient(f"http://127.0.0.1:{listener.getsockname()[1]}")
    with pytest.raises(errors.ServerUnreachableError) as lost:
        client.engines()
    listener.close()
    assert "lost during the request" in str(lost.value) and "is it running" not in str(lost.value)
