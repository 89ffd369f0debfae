"""Every endpoint x every kind of caller: no token, a wrong token, a revoked user's token,
another user's token, an admin's token, and the owner's.

The endpoints are read from the application itself, so a new endpoint fails this test until
it is given a row in ACCESS. What each kind of endpoint answers:

* ``public``: anyone (only ``/api/info``, for the version check);
* every other endpoint: 401 without a working token (none, wrong, revoked);
* ``admin``: 403 for annotators, served for admins;
* ``session``/``job``: the owner's resource does not exist for anyone else, admins included
  (410 for a session, as for an unknown lease; 404 for a job);
* ``image``/``upload``: naming the owner's image answers exactly what naming an image the
  server does not hold answers (404, or the refusal that comes first) -- an upload too:
  one must send the image to prove one has it;
* ``user``: any signed-in user.
"""

import numpy as np
import pytest
import requests
from fastapi.routing import APIRoute

from slicerfm_client import protocol

ACCESS = {
    ("GET", protocol.PATH_INFO): "public",
    ("GET", protocol.PATH_ENGINES): "user",
    ("POST", protocol.PATH_SESSIONS): "user",
    ("GET", "/openapi.json"): "user",
    ("GET", "/docs"): "user",
    ("GET", protocol.PATH_SEGMENT_AUTO_CLASSES): "user",
    ("POST", protocol.PATH_HEARTBEAT): "session",
    ("GET", protocol.PATH_SESSION): "session",
    ("DELETE", protocol.PATH_SESSION): "session",
    ("POST", protocol.PATH_ATTACH_IMAGE): "session",
    ("GET", protocol.PATH_SEGMENTS): "session",
    ("POST", protocol.PATH_INTERACT): "session",
    ("POST", protocol.PATH_UNDO): "session",
    ("POST", protocol.PATH_REDO): "session",
    ("POST", protocol.PATH_RESET): "session",
    ("POST", protocol.PATH_DELETE): "session",
    ("POST", protocol.PATH_LOCK): "session",
    ("POST", protocol.PATH_SEED): "session",
    ("GET", protocol.PATH_LABELMAP): "session",
    ("HEAD", protocol.image_path("{image_id}")): "image",
    ("PUT", protocol.image_path("{image_id}")): "upload",
    ("POST", protocol.PATH_REGISTER): "image",
    ("POST", protocol.PATH_SEGMENT_AUTO): "image",
    ("GET", protocol.job_path("{job_id}")): "job",
    ("DELETE", protocol.job_path("{job_id}")): "job",
    ("GET", protocol.job_array_path("{job_id}", "{name}")): "job",
    ("GET", protocol.PATH_ADMIN_SESSIONS): "admin",
    ("DELETE", protocol.admin_session_path("{session_id}")): "admin",
    ("GET", protocol.PATH_METRICS): "admin",
}


def routes(app_or_router):
    """``(method, path)`` of every endpoint, also inside included routers (no prefixes here)."""
    for route in app_or_router.routes:
        if isinstance(route, APIRoute):
            for method in route.methods:
                yield method, route.path
        elif hasattr(route, "original_router"):
            yield from routes(route.original_router)


@pytest.fixture
def a_world(a_lab_server, a_ct_like_volume):
    """alice's session (with her image attached and one segment), her image and her job."""
    alice = a_lab_server.client("alice")
    alice.connect(heartbeat=False)
    image_id = alice.set_image(*a_ct_like_volume, "CT")
    alice.add_point("organ", (10, 15, 20), True, engine="sphere")

    def work(ctx):
        ctx.add_array("displacement", np.zeros((2, 2, 2, 3), np.float32))
        return {}

    job = a_lab_server.state.jobs.submit("demo", work, "cpu", owner="user:alice")
    alice.wait_job(job.id, poll_s=0.01)
    return a_lab_server, alice, image_id, job.id


def request_for(method, path, lease, image_id, job_id):
    """A plausible request for an endpoint, about alice's resources."""
    url_path = path.format(image_id=image_id, job_id=job_id, name="displacement",
                           session_id=lease.split(".")[0])
    json_bodies = {
        protocol.PATH_SESSIONS: {"client": "matrix"},
        protocol.PATH_ATTACH_IMAGE: {"image_id": image_id},
        protocol.PATH_INTERACT: {"segment": "organ", "engine": "sphere",
                                 "prompt": {"kind": "point", "point_kji": [5, 5, 5]}},
        protocol.PATH_REGISTER: {"engine": "classic", "fixed": {"image_id": image_id},
                                 "moving": {"image_id": image_id}},
        protocol.PATH_SEGMENT_AUTO: {"engine": "vista3d", "image_id": image_id, "classes": ["liver"]},
    }
    kwargs = {"headers": {protocol.HEADER_SESSION: lease}}
    if path in json_bodies:
        kwargs["json"] = json_bodies[path]
    elif path in (protocol.PATH_UNDO, protocol.PATH_REDO, protocol.PATH_RESET, protocol.PATH_DELETE,
                  protocol.PATH_LOCK):
        kwargs["json"] = {"segment": "organ"}
    elif method in ("PUT", "POST"):
        kwargs["data"] = b"SFM1"  # a message cut short: refused only after the access checks
    return url_path, kwargs


def call(server, method, path, token, lease, image_id, job_id):
    url_path, kwargs = request_for(method, path, lease, image_id, job_id)
    if token is not None:
        kwargs["headers"]["Authorization"] = f"Bearer {token}"
    return requests.request(method, server.url + url_path, timeout=30, **kwargs).status_code


def test_every_endpoint_has_a_row_in_the_access_table(a_lab_server):
    assert set(routes(a_lab_server.server.app)) == set(ACCESS)


def test_every_endpoint_refuses_callers_without_a_working_token(a_world):
    server, alice, image_id, job_id = a_world
    wrong = "sfmu_0123456789_" + "x" * 43
    for method, path in routes(server.server.app):
        for name, token in (("none", None), ("wrong", wrong), ("revoked", server.tokens["carol"]),
                            ("garbage", "not a token at all")):
            status = call(server, method, path, token, alice.session_token, image_id, job_id)
            expected = {200} if ACCESS[(method, path)] == "public" else {401}
            assert status in expected, (method, path, name, status)


def test_another_user_and_an_admin_find_none_of_alices_resources(a_world):
    """Her session and jobs answer as unknown ones do; an endpoint naming her image answers
    exactly as for an image the server does not hold (an upload included: one must send
    the image to prove one has it)."""
    server, alice, image_id, job_id = a_world
    not_found = {"session": {410}, "job": {404}}
    for caller in ("bob", "root"):
        token = server.tokens[caller]
        for method, path in routes(server.server.app):
            kind = ACCESS[(method, path)]
            if kind in not_found:
                status = call(server, method, path, token, alice.session_token, image_id, job_id)
                assert status in not_found[kind], (method, path, caller, status)
            elif kind in ("image", "upload"):
                status = call(server, method, path, token, "", image_id, job_id)
                unknown = call(server, method, path, token, "", "f" * 64, job_id)
                assert status == unknown and status >= 400, (method, path, caller, status, unknown)
    # and alice's work is intact
    assert [s["name"] for s in alice.segments()] == ["organ"]
    assert alice.job_status(job_id)["state"] == "done"


def test_admin_endpoints_are_for_admins_only(a_world):
    server, alice, image_id, job_id = a_world
    for method, path in routes(server.server.app):
        if ACCESS[(method, path)] != "admin":
            continue
        for caller in ("alice", "bob"):
            status = call(server, method, path, server.tokens[caller], alice.session_token, image_id, job_id)
            assert status == 403, (method, path, caller, status)
        status = call(server, method, path, server.tokens["root"], alice.session_token, image_id, job_id)
        assert status == 200, (method, path, status)


def test_signed_in_users_reach_the_endpoints_open_to_every_user(a_world):
    server, alice, image_id, job_id = a_world
    for method, path in routes(server.server.app):
        if ACCESS[(method, path)] != "user":
            continue
        status = call(server, method, path, server.tokens["bob"], "", image_id, job_id)
        assert status not in (401, 403, 404), (method, path, status)


def test_an_admin_lists_every_session_without_secrets_and_ends_one(a_world):
    server, alice, image_id, _ = a_world
    bob = server.client("bob")
    bob.connect(heartbeat=False)
    listed = requests.get(server.url + protocol.PATH_ADMIN_SESSIONS, headers=server.headers("root")).json()
    rows = {row["user"]: row for row in listed["sessions"]}
    assert set(rows) == {"alice", "bob"} and rows["alice"]["segments"] == 1 and rows["alice"]["image_attached"]
    text = str(listed)
    assert alice.session_token.split(".")[1] not in text and image_id not in text
    ended = requests.delete(server.url + protocol.admin_session_path(rows["bob"]["session"]),
                            headers=server.headers("root"))
    assert ended.status_code == 200
    with pytest.raises(Exception, match="unknown or has expired"):
        bob.segments()
    alice.segments()  # the others go on
