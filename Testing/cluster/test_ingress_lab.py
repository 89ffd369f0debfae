"""A lab's server on the cluster, in-process (the workers are real single-process servers
behind fake Ray handles): users and ownership through the ingress, a revoked user, the
admin's view of every worker, merged metrics, each worker's own state directory (a
worker started again finds its sessions) and its part of the machine's memory."""

import json
import threading
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from slicerfm_backend.auth.users import UserStore
from slicerfm_backend.cluster.ingress import Ingress
from slicerfm_backend.cluster.pool import WorkerPool
from slicerfm_backend.cluster.worker import SessionWorker, worker_settings
from slicerfm_backend.memory import machine_memory_bytes
from slicerfm_backend.settings import DEFAULT_MEMORY_SHARE, Settings
from slicerfm_client import protocol

from ingress_fakes import Handle, SharedDict, run
from test_ingress import an_image

CLICK = {"segment": "organ", "prompt": {"kind": "point", "positive": True, "point_kji": [4, 6, 8]}}


class LabCluster:
    """Two workers with a state directory holding users alice and bob (annotators), root
    (admin) and carol (revoked); ``auth(name)`` are a user's headers."""

    def __init__(self, state_dir, **settings):
        store = UserStore(state_dir)
        self.tokens = {name: store.add(name, role="admin" if name == "root" else "annotator")
                       for name in ("alice", "bob", "root", "carol")}
        store.revoke("carol")
        self.store, self.state_dir, self.shared = store, state_dir, SharedDict()
        self.settings = Settings(state_dir=state_dir, max_sessions=4, **settings)
        self.handles = [Handle(self._worker(index)) for index in range(2)]
        self.ingress = Ingress(WorkerPool(self.handles))

    def _worker(self, index):
        worker = SessionWorker(self.settings, index, directory=None, task_options={})
        worker.state.images.shared = self.shared
        return worker

    def auth(self, name, lease=None):
        headers = {"Authorization": f"Bearer {self.tokens[name]}"}
        if lease:
            headers[protocol.HEADER_SESSION] = lease
        return headers

    async def restart(self, index):
        """The worker stops and Ray starts it again: a new server on the same state
        directory. (A process killed mid-session: Testing/cluster/test_ray_lab.py.)"""
        await self.handles[index].worker.shutdown()
        self.handles[index].worker = self._worker(index)


@pytest.fixture
def a_lab_cluster(tmp_path):
    return LabCluster(tmp_path / "state")


def http(ingress):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=ingress), base_url="http://ingress")


async def claim(client, headers):
    answer = await client.post(protocol.PATH_SESSIONS, json={"client": "test"}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["session"]


async def alice_at_work(cluster, client):
    """alice's session with her image attached and one click; ``(lease, image_id)``."""
    lease = await claim(client, cluster.auth("alice"))
    _, image_id, body = an_image()
    assert (await client.put(protocol.image_path(image_id), content=body,
                             headers=cluster.auth("alice"))).status_code == 201
    headers = cluster.auth("alice", lease)
    assert (await client.post(protocol.PATH_ATTACH_IMAGE, json={"image_id": image_id},
                              headers=headers)).status_code == 200
    assert (await client.post(protocol.PATH_INTERACT, json=CLICK, headers=headers)).status_code == 200
    return lease, image_id


def test_another_users_session_image_and_job_do_not_exist_for_them_through_the_ingress(a_lab_cluster):
    cluster = a_lab_cluster

    async def scenario():
        async with http(cluster.ingress) as client:
            lease, image_id = await alice_at_work(cluster, client)
            worker = cluster.handles[int(lease[1])].worker
            job = worker.state.jobs.submit("demo", lambda ctx: {}, "cpu", owner="user:alice")
            bobs = await claim(client, cluster.auth("bob"))
            assert bobs[:3] != lease[:3]  # the other worker: the image and the job live elsewhere
            return {
                "session": await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("bob", lease)),
                "head": await client.head(protocol.image_path(image_id), headers=cluster.auth("bob")),
                "head unknown": await client.head(protocol.image_path("f" * 64), headers=cluster.auth("bob")),
                "attach": await client.post(protocol.PATH_ATTACH_IMAGE, json={"image_id": image_id},
                                            headers=cluster.auth("bob", bobs)),
                "job": await client.get(protocol.job_path(job.id), headers=cluster.auth("bob")),
                "job of alice": await client.get(protocol.job_path(job.id), headers=cluster.auth("alice")),
                "alice": await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("alice", lease)),
            }

    answers = run(cluster.handles, scenario)
    assert answers["session"].status_code == 410  # as for an unknown lease (docs/LAB_SERVER.md)
    assert answers["head"].status_code == answers["head unknown"].status_code == 404
    assert answers["attach"].status_code == 404
    assert answers["attach"].json()["error"] == protocol.ERROR_IMAGE_NOT_FOUND
    assert answers["job"].status_code == 404 and answers["job of alice"].status_code == 200
    assert [s["name"] for s in answers["alice"].json()["segments"]] == ["organ"]


def test_a_users_jobs_from_sessions_on_both_workers_meet_one_queue_and_its_per_user_limit(tmp_path):
    cluster = LabCluster(tmp_path / "state", max_jobs_per_user=1)
    release = threading.Event()
    for handle in cluster.handles:  # the job's work waits (no Ray here): the first job stays running
        handle.worker.state.jobs.execute = lambda work, ctx: release.wait(30) and {}

    async def scenario():
        async with http(cluster.ingress) as client:
            first, image_id = await alice_at_work(cluster, client)
            second = await claim(client, cluster.auth("alice"))
            body = {"engine": "classic", "fixed": {"image_id": image_id}, "moving": {"image_id": image_id}}
            try:
                return first, second, [await client.post(protocol.PATH_REGISTER, json=body,
                                                          headers=cluster.auth("alice", lease))
                                       for lease in (first, second)]
            finally:
                release.set()

    first, second, (accepted, refused) = run(cluster.handles, scenario)
    assert first[:3] != second[:3]  # her two sessions live on two workers
    assert accepted.status_code == 202, accepted.text
    assert refused.status_code == 503 and "you already have 1" in refused.json()["message"]


def test_a_revoked_user_is_refused_by_every_worker_and_a_user_without_a_token_too(a_lab_cluster):
    cluster = a_lab_cluster

    async def scenario():
        async with http(cluster.ingress) as client:
            lease, _ = await alice_at_work(cluster, client)
            before = await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("alice", lease))
            cluster.store.revoke("alice")  # `slicerfm-backend users revoke alice` on the server's directory
            after = await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("alice", lease))
            claims = [await client.post(protocol.PATH_SESSIONS, json={}, headers=cluster.auth("alice"))
                      for _ in range(2)]
            carol = await client.post(protocol.PATH_SESSIONS, json={}, headers=cluster.auth("carol"))
            anonymous = await client.post(protocol.PATH_SESSIONS, json={})
            return before, after, claims, carol, anonymous

    before, after, claims, carol, anonymous = run(cluster.handles, scenario)
    assert before.status_code == 200
    assert after.status_code == 401 and "revoked" in after.json()["message"]
    assert [answer.status_code for answer in claims] == [401, 401]
    assert carol.status_code == 401 and anonymous.status_code == 401


def test_an_admin_sees_the_sessions_of_every_worker_and_ends_one_on_either(a_lab_cluster):
    cluster = a_lab_cluster

    async def scenario():
        async with http(cluster.ingress) as client:
            alice = await claim(client, cluster.auth("alice"))
            bob = await claim(client, cluster.auth("bob"))
            listed = await client.get(protocol.PATH_ADMIN_SESSIONS, headers=cluster.auth("root"))
            refused = await client.get(protocol.PATH_ADMIN_SESSIONS, headers=cluster.auth("alice"))
            rows = {row["user"]: row for row in listed.json()["sessions"]}
            ended = await client.delete(protocol.admin_session_path(rows["bob"]["session"]),
                                        headers=cluster.auth("root"))
            not_admin = await client.delete(protocol.admin_session_path(rows["alice"]["session"]),
                                            headers=cluster.auth("bob"))
            return (alice, bob, listed, refused, ended, not_admin,
                    await client.get(protocol.PATH_SESSION, headers=cluster.auth("bob", bob)),
                    await client.get(protocol.PATH_SESSION, headers=cluster.auth("alice", alice)))

    alice, bob, listed, refused, ended, not_admin, bobs_next, alices_next = run(cluster.handles, scenario)
    assert listed.status_code == 200 and refused.status_code == 403 and not_admin.status_code == 403
    rows = {row["user"]: row for row in listed.json()["sessions"]}
    assert {rows["alice"]["worker"], rows["bob"]["worker"]} == {0, 1}
    assert listed.json()["unavailable_workers"] == []
    assert alice.split(".")[1] not in listed.text and bob.split(".")[1] not in listed.text
    assert ended.status_code == 200
    assert bobs_next.status_code == 410 and alices_next.status_code == 200


def test_metrics_of_every_worker_come_labelled_by_worker_with_the_ingresss_own_for_admins_only(a_lab_cluster):
    cluster = a_lab_cluster

    async def scenario():
        async with http(cluster.ingress) as client:
            await alice_at_work(cluster, client)
            await claim(client, cluster.auth("bob"))
            return (await client.get(protocol.PATH_METRICS, headers=cluster.auth("root")),
                    await client.get(protocol.PATH_METRICS, headers=cluster.auth("alice")),
                    await client.get(protocol.PATH_METRICS))

    metrics, annotator, anonymous = run(cluster.handles, scenario)
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'slicerfm_sessions{worker="0"} 1.0' in text and 'slicerfm_sessions{worker="1"} 1.0' in text
    assert 'slicerfm_memory_limit_bytes{budget="images",worker="1"}' in text
    assert 'slicerfm_ingress_request_seconds_count{method="POST",route="claim",status="200"} 2.0' in text
    assert "slicerfm_cluster_workers_answering 2.0" in text
    assert text.count("# TYPE slicerfm_sessions gauge") == 1  # one family, samples of both workers
    assert annotator.status_code == 403 and anonymous.status_code == 401


def test_a_worker_started_again_finds_its_sessions_in_its_own_state_directory(a_lab_cluster):
    cluster = a_lab_cluster

    async def scenario():
        async with http(cluster.ingress) as client:
            lease, image_id = await alice_at_work(cluster, client)
            index = int(lease[1])
            await client.post(protocol.PATH_INTERACT, headers=cluster.auth("alice", lease), json={
                **CLICK, "prompt": {"kind": "point", "positive": False, "point_kji": [3, 4, 5]}})
            await cluster.restart(index)
            cluster.shared.images.clear()  # the cluster's store dropped the image meanwhile
            segments = await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("alice", lease))
            undo = await client.post(protocol.PATH_UNDO, json={"segment": "organ"},
                                     headers=cluster.auth("alice", lease))
            click = await client.post(protocol.PATH_INTERACT, json=CLICK, headers=cluster.auth("alice", lease))
            return index, image_id, segments, undo, click

    index, image_id, segments, undo, click = run(cluster.handles, scenario)
    own = cluster.state_dir / f"worker-{index}"
    uploaded_through = cluster.state_dir / f"worker-{1 - index}"  # the least-loaded worker took the upload
    assert (uploaded_through / "images" / f"{image_id}.sfm").is_file()
    assert (own / "sessions").is_dir() and (own / "images" / f"{image_id}.sfm").is_file()
    assert not (cluster.state_dir / "sessions").exists()  # the server's own directory holds the users
    assert segments.status_code == 200 and [s["name"] for s in segments.json()["segments"]] == ["organ"]
    assert undo.status_code == 200  # the undo history came back too
    assert click.status_code == 200, click.text  # and the image, from this worker's own directory


def test_each_worker_takes_its_part_of_the_machines_memory_unless_a_budget_is_set(tmp_path):
    default = worker_settings(Settings(state_dir=tmp_path), 1, node_share=4)
    assert default.state_dir == tmp_path / "worker-1"
    whole = int(machine_memory_bytes() * DEFAULT_MEMORY_SHARE)
    assert default.budgets()["images"] == whole // 4 // 2
    assert worker_settings(Settings(memory_budget_bytes=10**9), 1, node_share=4).budgets()["images"] == 10**9 // 2


def test_openid_connect_users_are_known_to_every_worker_and_meet_only_their_own_sessions(tmp_path):
    key, stranger = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    issuer, audience = "https://login.example.org/realms/lab", "slicerfm"
    settings = Settings(oidc_issuer=issuer, oidc_audience=audience, oidc_jwks=str(jwks), max_sessions=4)
    handles = [Handle(SessionWorker(settings, index, directory=None, task_options={})) for index in range(2)]
    ingress = Ingress(WorkerPool(handles))

    def bearer(user, signer=key, **claims):
        now = int(time.time())
        token = jwt.encode({"iss": issuer, "aud": audience, "iat": now, "exp": now + 300,
                            "preferred_username": user, **claims}, signer, algorithm="RS256", headers={"kid": "k1"})
        return {"Authorization": f"Bearer {token}"}

    async def scenario():
        async with http(ingress) as client:
            leases = [await claim(client, bearer("dana")) for _ in range(2)]
            others = [await client.get(protocol.PATH_SESSION, headers={
                **bearer("erin"), protocol.HEADER_SESSION: lease}) for lease in leases]
            own = [await client.get(protocol.PATH_SESSION, headers={
                **bearer("dana"), protocol.HEADER_SESSION: lease}) for lease in leases]
            listed = await client.get(protocol.PATH_ADMIN_SESSIONS, headers=bearer("ops", roles=["slicerfm-admin"]))
            forged = await client.post(protocol.PATH_SESSIONS, json={}, headers=bearer("dana", signer=stranger))
            return leases, others, own, listed, forged

    leases, others, own, listed, forged = run(handles, scenario)
    assert sorted(lease[:3] for lease in leases) == ["w0-", "w1-"]
    assert [answer.status_code for answer in others] == [410, 410]
    assert [answer.status_code for answer in own] == [200, 200]
    assert sorted((row["user"], row["worker"]) for row in listed.json()["sessions"]) == [("dana", 0), ("dana", 1)]
    assert forged.status_code == 401


def test_a_draining_ingress_answers_restarting_so_clients_wait_for_it(a_lab_cluster):
    cluster = a_lab_cluster

    async def scenario():
        async with http(cluster.ingress) as client:
            lease = await claim(client, cluster.auth("alice"))
            cluster.ingress.drain.draining = True  # what SIGTERM does (lab's DrainingServer)
            refused = await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("alice", lease))
            cluster.ingress.drain.draining = False
            return refused, cluster.ingress.drain.in_flight

    refused, in_flight = run(cluster.handles, scenario)
    assert refused.status_code == 503 and refused.json()["error"] == protocol.ERROR_RESTARTING
    assert int(refused.headers["retry-after"]) > 0 and in_flight == 0


def test_ids_that_name_no_worker_meet_the_credential_check_first_as_on_one_server(a_lab_cluster):
    cluster = a_lab_cluster

    async def scenario():
        async with http(cluster.ingress) as client:
            lease = {protocol.HEADER_SESSION: "not-a-lease.secret"}
            return [
                await client.get(protocol.PATH_SEGMENTS, headers=lease),
                await client.get(protocol.PATH_SEGMENTS, headers={**lease, **cluster.auth("bob")}),
                await client.get(protocol.job_path("not-a-cluster-id")),
                await client.get(protocol.job_path("not-a-cluster-id"), headers=cluster.auth("bob")),
                await client.delete(protocol.admin_session_path("w9-0123456789abcdef")),
                await client.delete(protocol.admin_session_path("w9-0123456789abcdef"), headers=cluster.auth("bob")),
                await client.delete(protocol.admin_session_path("w9-0123456789abcdef"), headers=cluster.auth("root")),
            ]

    statuses = [answer.status_code for answer in run(cluster.handles, scenario)]
    assert statuses == [401, 410, 401, 404, 401, 403, 404]


def test_with_a_state_directory_a_gone_workers_session_waits_for_its_restart_instead_of_410(a_lab_cluster):
    cluster = a_lab_cluster
    ingress = Ingress(WorkerPool(cluster.handles), keeps_sessions=True)  # as serve --ray with --state-dir

    async def scenario():
        async with http(ingress) as client:
            lease = await claim(client, cluster.auth("alice"))
            handle = cluster.handles[int(lease[1])]
            handle.dead = True  # its process died; Ray is restarting it
            waiting = await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("alice", lease))
            state = ingress.router.pool.workers[int(lease[1])]
            state.down_since -= 3600  # away for an hour: the session counts as lost
            lost = await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("alice", lease))
            handle.dead = False  # back, with the session read from its state directory
            back = await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("alice", lease))
            handle.dead = True  # and dies again later: a new wait, not the old absence
            again = await client.get(protocol.PATH_SEGMENTS, headers=cluster.auth("alice", lease))
            handle.dead = False
            return waiting, lost, back, again

    waiting, lost, back, again = run(cluster.handles, scenario)
    assert again.status_code == 503
    assert waiting.status_code == 503 and waiting.json()["error"] == protocol.ERROR_RESTARTING
    assert int(waiting.headers["retry-after"]) > 0
    assert lost.status_code == 410
    assert back.status_code == 200


SECOND_CLICK = {**CLICK, "prompt": {"kind": "point", "positive": False, "point_kji": [3, 4, 5]}}


def test_a_click_running_when_its_worker_dies_is_never_applied_twice_its_session_ends_and_answers_410(
        a_lab_cluster):
    cluster = a_lab_cluster
    ingress = Ingress(WorkerPool(cluster.handles), keeps_sessions=True)  # as serve --ray with --state-dir

    async def scenario():
        async with http(ingress) as client:
            lease, _ = await alice_at_work(cluster, client)
            index, headers = int(lease[1]), cluster.auth("alice", lease)
            cluster.handles[index].dies_in_next_request = True
            in_flight = await client.post(protocol.PATH_INTERACT, json=SECOND_CLICK, headers=headers)
            while_gone = await client.post(protocol.PATH_INTERACT, json=SECOND_CLICK, headers=headers)
            await cluster.restart(index)  # the new incarnation reads the journal: the click was applied
            journaled = len(cluster.handles[index].worker.state.sessions)
            cluster.handles[index].dead = False
            after = await client.get(protocol.PATH_SEGMENTS, headers=headers)
            listed = await client.get(protocol.PATH_ADMIN_SESSIONS, headers=cluster.auth("root"))
            return in_flight, while_gone, journaled, after, listed

    in_flight, while_gone, journaled, after, listed = run(cluster.handles, scenario)
    assert in_flight.status_code == 410 and in_flight.json()["error"] == protocol.ERROR_SESSION_EXPIRED
    assert "nothing is applied twice" in in_flight.json()["message"]
    assert while_gone.status_code == 503 and while_gone.json()["error"] == protocol.ERROR_RESTARTING  # not sent
    assert journaled == 1  # the restarted worker had the session with the click applied ...
    assert after.status_code == 410  # ... and ended it before answering anything of it
    assert not [row for row in listed.json()["sessions"] if row["user"] == "alice"]


def test_a_click_not_sent_while_its_worker_is_gone_is_applied_once_when_it_is_back(a_lab_cluster):
    cluster = a_lab_cluster
    ingress = Ingress(WorkerPool(cluster.handles), keeps_sessions=True)

    async def scenario():
        async with http(ingress) as client:
            lease, _ = await alice_at_work(cluster, client)
            index, headers = int(lease[1]), cluster.auth("alice", lease)
            cluster.handles[index].dead = True  # died between requests
            reading = await client.get(protocol.PATH_SEGMENTS, headers=headers)  # sent, failed: safe again
            held_back = await client.post(protocol.PATH_INTERACT, json=SECOND_CLICK, headers=headers)
            await cluster.restart(index)
            cluster.handles[index].dead = False
            sent_again = await client.post(protocol.PATH_INTERACT, json=SECOND_CLICK, headers=headers)
            undo = [await client.post(protocol.PATH_UNDO, json={"segment": "organ"}, headers=headers)
                    for _ in range(3)]
            return reading, held_back, sent_again, undo

    reading, held_back, sent_again, undo = run(cluster.handles, scenario)
    assert reading.status_code == 503 and held_back.status_code == 503
    assert sent_again.status_code == 200, sent_again.text
    # two clicks, two undo steps: back to the first click, then empty, then nothing to undo
    assert [answer.status_code for answer in undo[:2]] == [200, 200]
    assert undo[2].status_code != 200
