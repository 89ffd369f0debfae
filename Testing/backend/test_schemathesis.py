"""Schemathesis against a real server: generated requests for every operation of the OpenAPI
schema, and stateful sequences (claim a session, attach an image, interact, undo, lock,
delete, ...), must never be answered with a 5xx.

The short runs here keep the default suite quick; the long runs are a documented command
(docs/LAB_SERVER.md): ``SLICERFM_SCHEMATHESIS_EXAMPLES=60 SLICERFM_SCHEMATHESIS_STEPS=600
.venv/bin/python -m pytest Testing/backend/test_schemathesis.py``.

The schema the server publishes gets OpenAPI links here (claim -> every session operation,
with the lease in the ``X-SlicerFM-Session`` header; claim -> attach with an image uploaded
beforehand), so that sequences reach past the session and image checks.
"""

import copy
import os
import random

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from slicerfm_backend.app import make_app
from slicerfm_backend.settings import Settings
from slicerfm_client import geometry, protocol, wire

TOKEN = "schemathesis-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = int(os.environ.get("SLICERFM_SCHEMATHESIS_EXAMPLES", "8"))
STEPS = int(os.environ.get("SLICERFM_SCHEMATHESIS_STEPS", "300"))
SESSION_OPERATIONS = [("get", protocol.PATH_SESSION), ("delete", protocol.PATH_SESSION),
                      ("post", protocol.PATH_HEARTBEAT), ("get", protocol.PATH_SEGMENTS),
                      ("get", protocol.PATH_LABELMAP), ("post", protocol.PATH_INTERACT), ("post", protocol.PATH_UNDO),
                      ("post", protocol.PATH_REDO), ("post", protocol.PATH_RESET), ("post", protocol.PATH_LOCK),
                      ("post", protocol.PATH_DELETE), ("post", protocol.PATH_SEED)]


@schemathesis.serializer(protocol.MEDIA_TYPE_MESSAGE)
def _message_bytes(ctx, value) -> bytes:
    """A generated "binary" body goes out as the bytes it is (wire messages are binary)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


def _pointer(method: str, path: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def with_links(raw: dict, image_id: str) -> dict:
    """The published schema plus links from claiming a session to what uses it."""
    schema = copy.deepcopy(raw)
    claim = schema["paths"][protocol.PATH_SESSIONS]["post"]["responses"]["200"]
    links = {f"{method}{path.replace('/', '_')}": {
        "operationRef": _pointer(method, path),
        "parameters": {f"header.{protocol.HEADER_SESSION}": "$response.body#/session"}}
        for method, path in SESSION_OPERATIONS}
    links["attach"] = {"operationRef": _pointer("post", protocol.PATH_ATTACH_IMAGE),
                       "parameters": {f"header.{protocol.HEADER_SESSION}": "$response.body#/session"},
                       "requestBody": {"image_id": image_id}}
    claim["links"] = links
    return schema


def sample_image():
    """The image the sequences attach: a small CT-like volume, and its geometry."""
    rng = np.random.default_rng(0)
    array = rng.normal(-800, 20, (20, 30, 40)).astype(np.int16)
    array[5:15, 10:20, 10:30] = 60
    return array, np.diag([-0.8, -0.8, 2.5, 1.0])


IMAGE = sample_image()
IMAGE_ID = geometry.image_id("int16", IMAGE[0].shape, IMAGE[1], wire.array_sha256(IMAGE[0]))
SCHEMA = schemathesis.openapi.from_dict(with_links(make_app(Settings(engines=["classic"])).openapi(), IMAGE_ID))


@pytest.fixture
def a_fuzzed_server(a_server_factory, tmp_path):
    server = a_server_factory(engines=["classic"], token=TOKEN, state_dir=tmp_path / "state", max_sessions=64)
    assert server.client(token=TOKEN).upload_image(*IMAGE, "CT") == IMAGE_ID
    return server


#: 503s that say "not now" or "not here" (a documented answer, not a failure of the server)
UNAVAILABLE = {protocol.ERROR_ENGINE_UNAVAILABLE, protocol.ERROR_SERVER_FULL, protocol.ERROR_STORAGE,
               protocol.ERROR_OUT_OF_MEMORY, protocol.ERROR_RESTARTING}


def assert_no_server_error(response, case) -> None:
    declined = response.status_code == 503 and response.json().get("error") in UNAVAILABLE
    assert response.status_code < 500 or declined, (
        f"{case.method} {case.path} answered {response.status_code}: {response.text[:500]}\n"
        f"{case.as_curl_command()}")


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_generated_request_gets_a_server_error(case, a_fuzzed_server):
    response = case.call(base_url=a_fuzzed_server.url, headers=AUTH)
    assert_no_server_error(response, case)


def test_no_sequence_of_requests_gets_a_server_error(a_fuzzed_server):
    server = a_fuzzed_server
    base = SCHEMA.as_state_machine()
    random.seed(0)  # schemathesis also draws from Python's global generator

    class Sequences(base):
        def get_call_kwargs(self, case):
            return {"base_url": server.url, "headers": dict(AUTH)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            assert_no_server_error(response, case)

        def teardown(self):
            # Each sequence starts from the same server: the sessions it claimed end (else the
            # server fills up and later sequences could not claim one).
            server.state.sessions.end_where(lambda session: True, "ended by the test")

    # No shrinking: a sequence depends on the server's state, so replaying a shorter one is
    # not the same test (hypothesis would call that flaky); the failing sequence is reported as found.
    # Derandomized, 30 sequences by default. Whether these short runs reach a successful attach
    # varies with the process (the draws depend on state left by tests run before: alone they
    # do, after the other backend modules they did not), so reaching it is not asserted here;
    # the long documented run (docs/LAB_SERVER.md) is the one that explores deep sequences.
    Sequences.run(settings=settings(max_examples=max(1, STEPS // 10), stateful_step_count=10, deadline=None,
                                    derandomize=True,
                                    suppress_health_check=list(HealthCheck), database=None,
                                    phases=[Phase.explicit, Phase.generate]))
