"""The lab server's authorization matrix (Testing/backend/test_authorization_matrix.py: its
table and requests), endpoint by endpoint, through the cluster's ingress: an HTTP server
on loopback serving the ingress in front of two real workers (fake Ray handles, in this
process) that share the server's users. alice's session, image and job live on the workers
the ingress chose; every other caller meets them as the single server's matrix says."""

import importlib.util
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import uvicorn

from slicerfm_client.client import SlicerFMClient
from slicerfm_client.launcher import free_port

from test_ingress_lab import LabCluster

MATRIX_FILE = Path(__file__).resolve().parents[1] / "backend" / "test_authorization_matrix.py"


def load_matrix():
    """The single server's matrix module (its table and request builder), by file."""
    spec = importlib.util.spec_from_file_location("single_server_authorization_matrix", MATRIX_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


matrix = load_matrix()


class IngressServer:
    """The LabCluster's ingress under uvicorn in a thread; ``url``, ``tokens``, ``stop()``."""

    def __init__(self, cluster: LabCluster):
        self.cluster, self.tokens = cluster, cluster.tokens
        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        self.server = uvicorn.Server(uvicorn.Config(cluster.ingress, host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the ingress did not start"
            time.sleep(0.01)

    def client(self, user):
        return SlicerFMClient(self.url, token=self.tokens[user])

    def headers(self, user):
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)
        for handle in self.cluster.handles:  # their lifespans ran in the server's loop, now gone
            handle.worker.state.close()


@pytest.fixture
def a_world(tmp_path, a_ct_like_volume):
    """alice's session (her image attached, one segment) and her finished job, behind the ingress."""
    cluster = LabCluster(tmp_path / "state")
    server = IngressServer(cluster)
    try:
        alice = server.client("alice")
        alice.connect(heartbeat=False)
        image_id = alice.set_image(*a_ct_like_volume, "CT")
        alice.add_point("organ", (10, 15, 20), True)

        def work(ctx):
            ctx.add_array("displacement", np.zeros((2, 2, 2, 3), np.float32))
            return {}

        worker = cluster.handles[int(alice.session_token[1])].worker
        job = worker.state.jobs.submit("demo", work, "cpu", owner="user:alice")
        alice.wait_job(job.id, poll_s=0.01)
        yield server, alice, image_id, job.id
    finally:
        server.stop()


def endpoints(server):
    return sorted(matrix.routes(server.cluster.handles[0].worker.app))


def test_the_matrix_names_every_endpoint_the_workers_serve(a_world):
    server = a_world[0]
    assert set(endpoints(server)) == set(matrix.ACCESS)


def test_through_the_ingress_every_endpoint_refuses_callers_without_a_working_token(a_world):
    server, alice, image_id, job_id = a_world
    wrong = "sfmu_0123456789_" + "x" * 43
    for method, path in endpoints(server):
        for name, token in (("none", None), ("wrong", wrong), ("revoked", server.tokens["carol"]),
                            ("garbage", "not a token at all")):
            status = matrix.call(server, method, path, token, alice.session_token, image_id, job_id)
            expected = {200} if matrix.ACCESS[(method, path)] == "public" else {401}
            assert status in expected, (method, path, name, status)


def test_through_the_ingress_another_user_and_an_admin_find_none_of_alices_resources(a_world):
    server, alice, image_id, job_id = a_world
    not_found = {"session": {410}, "job": {404}}
    for caller in ("bob", "root"):
        token = server.tokens[caller]
        for method, path in endpoints(server):
            kind = matrix.ACCESS[(method, path)]
            if kind in not_found:
                status = matrix.call(server, method, path, token, alice.session_token, image_id, job_id)
                assert status in not_found[kind], (method, path, caller, status)
            elif kind in ("image", "upload"):
                status = matrix.call(server, method, path, token, "", image_id, job_id)
                unknown = matrix.call(server, method, path, token, "", "f" * 64, job_id)
                assert status == unknown and status >= 400, (method, path, caller, status, unknown)
    assert [s["name"] for s in alice.segments()] == ["organ"]
    assert alice.job_status(job_id)["state"] == "done"


def test_through_the_ingress_admin_endpoints_are_for_admins_and_the_others_for_every_user(a_world):
    server, alice, image_id, job_id = a_world
    for method, path in endpoints(server):
        kind = matrix.ACCESS[(method, path)]
        if kind == "admin":
            for caller in ("alice", "bob"):
                status = matrix.call(server, method, path, server.tokens[caller], alice.session_token,
                                     image_id, job_id)
                assert status == 403, (method, path, caller, status)
            status = matrix.call(server, method, path, server.tokens["root"], alice.session_token,
                                 image_id, job_id)
            assert status == 200, (method, path, status)
        elif kind == "user":
            status = matrix.call(server, method, path, server.tokens["bob"], "", image_id, job_id)
            assert status not in (401, 403, 404), (method, path, status)


def test_the_ingress_answers_unknown_paths_as_a_worker_does(a_world):
    server = a_world[0]
    answer = requests.get(server.url + "/api/nothing-here", headers=server.headers("bob"), timeout=30)
    assert answer.status_code == 404
