"""A lab's server on a local Ray cluster (loopback only): `serve --ray` with a state
directory holding users, over HTTPS with a CA made here. Through the ingress: each user
meets only their own sessions, images and jobs; a user revoked mid-session is refused; an
admin sees every worker's sessions and metrics; a worker killed mid-session comes back with
its sessions (the client waits through the restart, nothing to re-seed); a worker killed
while it runs a click answers that click 410, ends the session and the client re-seeds a
new one: nothing applied twice, nothing lost."""

import datetime as dt
import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from slicerfm_backend.auth.users import UserStore
from slicerfm_client import errors, protocol
from slicerfm_client.client import SlicerFMClient
from slicerfm_client.launcher import free_port

EXECUTABLE = str(Path(sys.executable).with_name("slicerfm-backend"))
IJK_TO_RAS = np.diag([-0.8, -0.8, 2.5, 1.0])
USERS = {"alice": "annotator", "bob": "annotator", "dave": "annotator", "root": "admin"}


def certificate(subject, key, issuer, issuer_key, ca):
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(folder: Path) -> Path:
    """A lab CA (ca.pem) and a certificate it signed for 127.0.0.1 (server.pem, server.key)."""
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("SlicerFM cluster test CA", ca_key, None, ca_key, ca=True)
    server = certificate("127.0.0.1", server_key, ca.subject, ca_key, ca=False)
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return folder


class RayLabServer:
    def __init__(self, url, ca, tokens, state_dir, namespace):
        self.url, self.ca, self.tokens, self.state_dir, self.namespace = url, ca, tokens, state_dir, namespace

    def client(self, user):
        client = SlicerFMClient(self.url, token=self.tokens[user], ca_bundle=self.ca, timeout_s=120)
        client.connect(f"ray-lab-{user}", heartbeat=False)
        return client

    def get(self, path, user=None, lease=None, method="GET"):
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        if lease:
            headers[protocol.HEADER_SESSION] = lease
        return requests.request(method, self.url + path, headers=headers, verify=self.ca, timeout=60)


@pytest.fixture(scope="module")
def a_ray_lab_server(a_ray_cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray-lab")
    pki = make_pki(folder)
    state_dir = folder / "state"
    store = UserStore(state_dir)
    tokens = {name: store.add(name, role=role) for name, role in USERS.items()}
    namespace = f"slicerfm-lab-{uuid.uuid4().hex[:8]}"
    port = free_port()
    log_path = folder / "server.log"
    gates = folder / "gates"
    gates.mkdir()
    env = dict(os.environ, SLICERFM_ENGINE_PLUGINS="slow=slow_registration:SlowRegistration,held=held_click:HeldClick",
               SLICERFM_TEST_GATE_DIR=str(gates), SLICERFM_RAY_NAMESPACE=namespace,
               RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    env.pop("SLICERFM_TOKEN", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [EXECUTABLE, "serve", "--port", str(port), "--engines", "classic,held", "--registration-engines",
             "classic,slow", "--state-dir", str(state_dir), "--tls-cert", str(pki / "server.pem"),
             "--tls-key", str(pki / "server.key"), "--ray", a_ray_cluster.address, "--ray-workers", "2"],
            stdout=log, stderr=log, env=env)
    server = RayLabServer(f"https://127.0.0.1:{port}", str(pki / "ca.pem"), tokens, state_dir, namespace)
    server.gates = gates  # where the `held` engine's click says it started (and waits)
    deadline = time.monotonic() + 300
    while True:
        try:
            server.get(protocol.PATH_INFO)
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"serve --ray did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(1)
    yield server
    process.send_signal(signal.SIGTERM)  # drains, then stops the workers
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def a_volume(seed):
    rng = np.random.default_rng(seed)
    array = rng.normal(-800, 20, (20, 30, 40)).astype(np.int16)
    array[5:15, 10:20, 10:30] = 60
    return array


def test_over_https_each_user_meets_only_their_own_session_image_and_job(a_ray_lab_server):
    server = a_ray_lab_server
    alice, bob = server.client("alice"), server.client("bob")
    assert alice.session_token[:3] != bob.session_token[:3]  # two workers
    image_id = alice.set_image(a_volume(1), IJK_TO_RAS, "CT")
    other_id = alice.upload_image(a_volume(2), IJK_TO_RAS, "CT")
    alice.add_point("organ", (10, 15, 20), True)
    job = alice.submit_job(protocol.PATH_REGISTER, {"engine": "slow", "fixed": {"image_id": image_id},
                                                    "moving": {"image_id": other_id}, "io_steps": 2})
    alice.wait_job(job["job_id"], poll_s=0.1, timeout_s=120)

    assert server.get(protocol.PATH_SEGMENTS, "bob", alice.session_token).status_code == 410
    assert server.get(protocol.image_path(image_id), "bob", method="HEAD").status_code == 404
    assert server.get(protocol.image_path("f" * 64), "bob", method="HEAD").status_code == 404
    with pytest.raises(errors.ImageNotFoundError):
        bob.attach_image(image_id)
    assert server.get(protocol.job_path(job["job_id"]), "bob").status_code == 404
    assert server.get(protocol.job_path(job["job_id"]), "alice").json()["state"] == "done"
    assert server.get(protocol.PATH_SEGMENTS, lease=alice.session_token).status_code == 401
    assert [s["name"] for s in alice.segments()] == ["organ"]
    for client in (alice, bob):
        client.close()


def test_a_user_revoked_mid_session_is_refused_through_the_ingress(a_ray_lab_server):
    server = a_ray_lab_server
    dave = server.client("dave")
    dave.upload_image(a_volume(3), IJK_TO_RAS, "CT")
    UserStore(server.state_dir).revoke("dave")  # `slicerfm-backend users revoke dave`
    with pytest.raises(errors.AuthenticationError, match="revoked"):
        dave.segments()
    with pytest.raises(errors.AuthenticationError):
        server.client("dave")
    deadline = time.monotonic() + 60
    while any(row["user"] == "dave" for row in server.get(protocol.PATH_ADMIN_SESSIONS, "root").json()["sessions"]):
        assert time.monotonic() < deadline, "the revoked user's session was not ended"
        time.sleep(0.5)  # the workers' housekeeping ends it


def test_an_admin_sees_every_workers_sessions_and_metrics_and_annotators_do_not(a_ray_lab_server):
    server = a_ray_lab_server
    alice, bob = server.client("alice"), server.client("bob")
    listed = server.get(protocol.PATH_ADMIN_SESSIONS, "root")
    assert listed.status_code == 200, listed.text
    workers = {row["worker"] for row in listed.json()["sessions"] if row["user"] in ("alice", "bob")}
    assert workers == {0, 1}
    metrics = server.get(protocol.PATH_METRICS, "root")
    assert metrics.status_code == 200
    assert 'worker="0"' in metrics.text and 'worker="1"' in metrics.text
    assert "slicerfm_ingress_request_seconds_bucket" in metrics.text
    assert server.get(protocol.PATH_METRICS, "alice").status_code == 403
    assert server.get(protocol.PATH_ADMIN_SESSIONS, "bob").status_code == 403
    for client in (alice, bob):
        client.close()


@pytest.fixture(scope="module")
def a_lab_driver(a_ray_cluster, a_ray_lab_server):
    """This test process joined to the cluster, to find (and kill) the workers."""
    import ray
    from ray._private import ray_constants

    if ray_constants.ENABLE_RAY_CLUSTER:  # Testing/conftest.py sets it before ray is imported
        pytest.fail("ray was imported in cluster mode: it would look for the cluster on the network address")
    ray.init(address=a_ray_cluster.address, namespace=a_ray_lab_server.namespace, log_to_driver=False)
    yield ray
    ray.shutdown()


def worker_pid(ray, index):
    return ray.get(ray.get_actor(f"slicerfm-worker-{index}").load.remote(), timeout=120)["pid"]


def test_a_worker_killed_mid_session_comes_back_with_the_session_and_its_undo_history(
        a_ray_lab_server, a_ray_cluster, a_lab_driver):
    server = a_ray_lab_server
    alice, bob = server.client("alice"), server.client("bob")
    assert alice.persistent_session and alice.session_token[:3] != bob.session_token[:3]
    alice.set_image(a_volume(4), IJK_TO_RAS, "CT")
    bob.set_image(a_volume(4), IJK_TO_RAS, "CT")
    first = alice.add_point("organ", (10, 15, 20), True)
    second = alice.add_point("organ", (10, 5, 5), False)
    pid = worker_pid(a_lab_driver, int(alice.session_token[1]))
    assert a_ray_cluster.owns(pid)
    os.kill(pid, signal.SIGKILL)

    assert bob.add_point("organ", (10, 15, 20), True).voxels > 0  # the other worker goes on
    segments = {s["name"]: s["voxels"] for s in alice.segments()}  # waits through the restart
    assert segments == {"organ": second.voxels}
    assert alice.undo("organ").voxels == first.voxels  # the undo history came back too
    assert worker_pid(a_lab_driver, int(alice.session_token[1])) != pid
    for client in (alice, bob):
        client.close()


def test_a_worker_killed_while_it_runs_a_click_answers_410_and_nothing_is_applied_twice_or_lost(
        a_ray_lab_server, a_ray_cluster, a_lab_driver):
    server = a_ray_lab_server
    alice = server.client("alice")
    image = a_volume(5)
    alice.set_image(image, IJK_TO_RAS, "CT")
    copy = np.zeros(image.shape, bool)  # the client's own copy, as the module keeps it
    alice.add_point("organ", (10, 15, 20), True).apply_to(copy)
    old_lease, index = alice.session_token, int(alice.session_token[1])
    pid = worker_pid(a_lab_driver, index)
    assert a_ray_cluster.owns(pid)
    outcome = {}

    def click():
        try:
            outcome["update"] = alice.add_point("organ", (10, 5, 5), False, engine="held")
        except errors.SlicerFMError as error:
            outcome["error"] = error

    clicking = threading.Thread(target=click)
    clicking.start()
    deadline = time.monotonic() + 120
    while not (server.gates / "click.started").exists():
        assert time.monotonic() < deadline and clicking.is_alive(), outcome
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)  # while the click runs
    clicking.join(120)
    assert isinstance(outcome.get("error"), errors.SessionExpiredError), outcome  # not sent again

    alice.connect("ray-lab-alice", heartbeat=False)  # what the module does after a 410
    alice.set_image(image, IJK_TO_RAS, "CT")  # in the cluster's store: no upload
    alice.seed("organ", copy)
    labels, segments = alice.labelmap()
    assert np.array_equal(labels == segments[0]["label"], copy)  # nothing lost
    deadline = time.monotonic() + 180
    while True:  # the restarted worker read the old session back, and ends it before answering it
        answer = server.get(protocol.PATH_SEGMENTS, "alice", old_lease)
        if answer.status_code != 503:
            break
        assert time.monotonic() < deadline, "the worker did not come back"
        time.sleep(1)
    assert answer.status_code == 410, answer.text
    sessions = server.get(protocol.PATH_ADMIN_SESSIONS, "root").json()["sessions"]
    assert not any(old_lease.startswith(row["session"] + ".") for row in sessions)  # no session with the click twice
    assert worker_pid(a_lab_driver, index) != pid
    alice.close()
