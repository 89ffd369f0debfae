"""The cluster's ingress and workers in one process, without Ray: real single-process
applications inside :class:`SessionWorker` objects, reached through handles that look like
Ray's (``method.remote(...)`` returns an awaitable). Routing, the 410 of a dead worker,
full workers, streamed uploads, images shared between workers and job-id routing."""

import asyncio
import sys

import httpx
import numpy as np
import pytest

from slicerfm_backend.cluster import launch, router as router_module
from slicerfm_backend.cluster.asgi_call import BodyFeed, Lifespan, RequestHead, call
from slicerfm_backend.cluster.ingress import Ingress
from slicerfm_backend.cluster.pool import WorkerPool
from slicerfm_backend.cluster.router import Router
from slicerfm_backend.cluster.worker import SessionWorker
from slicerfm_backend.settings import Settings
from slicerfm_client import geometry, protocol, wire

from ingress_fakes import Handle, SharedDict, run

IJK_TO_RAS = np.diag([-0.8, -0.8, 2.5, 1.0])


@pytest.fixture
def a_cluster():
    """Two workers (at most 2 sessions each) sharing one image store, and their ingress."""
    shared = SharedDict()
    handles = []
    for index in range(2):
        worker = SessionWorker(Settings(max_sessions=2), index, directory=None, task_options={})
        worker.state.images.shared = shared
        handles.append(Handle(worker))
    return handles, shared, Ingress(WorkerPool(handles))


def http(ingress):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=ingress), base_url="http://ingress")


async def claim(client):
    answer = await client.post(protocol.PATH_SESSIONS, json={"client": "test"})
    assert answer.status_code == 200, answer.text
    return answer.json()["session"]


def an_image(noise=0):
    array = np.full((8, 12, 16), -800, np.int16)
    array[2:6, 3:9, 4:12] = 60
    array += np.random.default_rng(0).integers(0, noise + 1, array.shape, dtype=np.int16)
    image_id = geometry.image_id("int16", array.shape, IJK_TO_RAS, wire.array_sha256(array))
    return array, image_id, wire.encode(array, {"ijk_to_ras": IJK_TO_RAS.tolist(), "modality": "CT"})


def test_new_sessions_go_to_the_least_loaded_worker_and_requests_follow_their_session(a_cluster):
    handles, _, ingress = a_cluster

    async def scenario():
        async with http(ingress) as client:
            leases = [await claim(client) for _ in range(4)]
            array, image_id, body = an_image()
            assert (await client.put(protocol.image_path(image_id), content=body)).status_code == 201
            for lease in leases:
                headers = {protocol.HEADER_SESSION: lease}
                attach = await client.post(protocol.PATH_ATTACH_IMAGE, json={"image_id": image_id}, headers=headers)
                assert attach.status_code == 200, attach.text
                click = await client.post(protocol.PATH_INTERACT, headers=headers, json={
                    "segment": "s", "prompt": {"kind": "point", "positive": True, "point_kji": [4, 6, 8]}})
                assert click.status_code == 200 and "cluster;dur=" in click.headers["server-timing"]
            return leases

    leases = run(handles, scenario)
    assert sorted(lease[:3] for lease in leases) == ["w0-", "w0-", "w1-", "w1-"]
    for handle in handles:
        assert len(handle.worker.state.sessions) == 2  # each session lives on its own worker only


def test_sessions_claimed_at_the_same_moment_spread_over_the_workers(a_cluster):
    handles, _, ingress = a_cluster

    async def scenario():
        async with http(ingress) as client:
            return await asyncio.gather(*(claim(client) for _ in range(4)))

    leases = run(handles, scenario)
    assert sorted(lease[:3] for lease in leases) == ["w0-", "w0-", "w1-", "w1-"]


def test_a_dead_workers_session_answers_410_and_new_sessions_go_elsewhere(a_cluster):
    handles, _, ingress = a_cluster

    async def scenario():
        async with http(ingress) as client:
            first, second = await claim(client), await claim(client)
            victim = first if first.startswith("w0-") else second
            survivor = second if victim is first else first
            handles[0].dead = True
            gone = await client.get(protocol.PATH_SESSION, headers={protocol.HEADER_SESSION: victim})
            alive = await client.get(protocol.PATH_SESSION, headers={protocol.HEADER_SESSION: survivor})
            ingress.router.pool.workers[0].asked = 0.0  # let the next claim ask again
            ingress.router.pool.workers[1].asked = 0.0
            replacement = await claim(client)
            return gone, alive, replacement

    gone, alive, replacement = run(handles, scenario)
    assert gone.status_code == 410 and gone.json()["error"] == protocol.ERROR_SESSION_EXPIRED
    assert "claim a new session" in gone.json()["message"]
    assert alive.status_code == 200
    assert replacement.startswith("w1-")


def test_when_every_worker_is_full_a_claim_answers_503_with_retry_after(a_cluster):
    handles, _, ingress = a_cluster

    async def scenario():
        async with http(ingress) as client:
            for _ in range(4):
                await claim(client)
            return await client.post(protocol.PATH_SESSIONS, json={"client": "one too many"})

    answer = run(handles, scenario)
    assert answer.status_code == 503 and answer.json()["error"] == protocol.ERROR_SERVER_FULL
    assert "all 2 workers" in answer.json()["message"] and int(answer.headers["retry-after"]) > 0


def test_an_image_uploaded_through_one_worker_is_attached_on_the_other(a_cluster):
    handles, shared, ingress = a_cluster

    async def scenario():
        async with http(ingress) as client:
            array, image_id, body = an_image()
            assert (await client.head(protocol.image_path(image_id))).status_code == 404
            assert (await client.put(protocol.image_path(image_id), content=body)).status_code == 201
            holders = [h.worker.state.images.holds_in_memory(image_id) for h in handles]
            leases = [await claim(client), await claim(client)]
            for lease in leases:
                answer = await client.post(protocol.PATH_ATTACH_IMAGE, json={"image_id": image_id},
                                           headers={protocol.HEADER_SESSION: lease})
                assert answer.status_code == 200, answer.text
            return image_id, holders

    image_id, holders = run(handles, scenario)
    assert list(shared.images) == [image_id]
    assert holders.count(True) == 1  # decoded by one worker, fetched by the other at attach
    assert all(h.worker.state.images.holds_in_memory(image_id) for h in handles)


def test_a_large_upload_streams_to_the_worker_in_pieces(a_cluster, monkeypatch):
    handles, shared, _ = a_cluster
    monkeypatch.setattr(router_module, "STREAM_THRESHOLD", 1000)
    monkeypatch.setattr(router_module, "PIECE_BYTES", 1000)
    array, image_id, body = an_image(noise=1000)  # incompressible: a few kB on the wire
    assert len(body) > 2000
    pieces = [body[i:i + 300] for i in range(0, len(body), 300)]
    pushed = []
    original = SessionWorker.push

    async def counting_push(self, stream_id, piece, more):
        pushed.append(len(piece))
        return await original(self, stream_id, piece, more)

    monkeypatch.setattr(SessionWorker, "push", counting_push)

    class Pieces:
        def __init__(self):
            self.left = list(pieces)

        async def read(self, at_least):
            out = b""
            while self.left and len(out) < at_least:
                out += self.left.pop(0)
            return out, bool(self.left)

    head = RequestHead("PUT", protocol.image_path(image_id), headers=[(b"content-type", b"application/octet-stream")])
    async def scenario():
        return await Router(WorkerPool(handles)).forward(head, Pieces())

    reply = run(handles, scenario)
    assert reply.status == 201, reply.body
    assert len(pushed) > 1 and sum(pushed) == len(body)
    assert np.array_equal(shared.images[image_id].array, array)


def test_a_job_of_a_dead_worker_is_reported_failed_and_an_unknown_job_id_is_not_found(a_cluster):
    handles, _, ingress = a_cluster

    async def scenario():
        async with http(ingress) as client:
            handles[1].dead = True
            job = await client.get(protocol.job_path("w1xabcd-someid"))
            wrong = await client.get(protocol.job_path("not-a-cluster-id"))
            return job, wrong

    job, wrong = run(handles, scenario)
    assert job.status_code == 200 and job.json()["state"] == "failed"
    assert "submit the job again" in job.json()["error"]["message"]
    assert wrong.status_code == 404 and wrong.json()["error"] == protocol.ERROR_JOB_NOT_FOUND


def test_a_body_feed_stops_taking_pieces_once_the_application_answered():
    async def early(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 413, "headers": []})
        await send({"type": "http.response.body", "body": b"too large"})

    async def scenario():
        feed = BodyFeed(max_pieces=1)
        answer = asyncio.ensure_future(call(early, RequestHead("PUT", "/x"), feed))
        accepted = [await feed.put(b"a" * 10, True) for _ in range(3)]
        return (await answer), accepted

    reply, accepted = asyncio.run(scenario())
    assert reply.status == 413 and accepted[0] and not accepted[-1]


def test_the_lifespan_of_an_in_process_application_starts_and_stops():
    events = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            events.append(message["type"])
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    async def scenario():
        lifespan = Lifespan(app)
        await lifespan.start()
        await lifespan.stop()

    asyncio.run(scenario())
    assert events == ["lifespan.startup", "lifespan.shutdown"]


def test_serving_on_ray_without_ray_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SystemExit, match=r"slicerfm-backend\[ray\]"):
        launch.import_ray()


@pytest.mark.parametrize("address, loopback", [(None, True), ("127.0.0.1:6379", True), ("localhost:1", True),
                                               ("[::1]:6379", True), ("10.0.0.5:6379", False),
                                               ("ray://head.example:10001", False)])
def test_a_ray_address_on_loopback_keeps_ray_on_loopback(address, loopback):
    assert launch.is_loopback_address(address) is loopback
