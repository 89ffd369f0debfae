"""`slicerfm-backend serve --ray` on a local Ray cluster (loopback only, started and stopped
by the tests): sessions on different workers, images stored once for the cluster, a worker
killed mid-session, jobs as Ray tasks with progress, cancel and a dead task, a job's steps
ordered with the clicks of its worker's device; and a cluster of two nodes (two raylets
and object stores on this machine) of which one fails.

The server runs two session workers (one logical CPU each) and the built-in engine, plus
the test registration engine ``slow`` (slow_registration.py) as a plugin.
"""

import os
import re
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from slicerfm_client import errors
from slicerfm_client.client import SlicerFMClient
from slicerfm_client.launcher import LocalBackend

from ray_cluster import is_loopback, listening_addresses

EXECUTABLE = str(Path(sys.executable).with_name("slicerfm-backend"))
SESSION_ID = re.compile(r"^w(\d+)-")
IJK_TO_RAS = np.diag([-0.8, -0.8, 2.5, 1.0])


@pytest.fixture(scope="module")
def a_namespace():
    return f"slicerfm-test-{uuid.uuid4().hex[:8]}"


PLUGINS = "slow=slow_registration:SlowRegistration,gated=slow_registration:GatedRegistration"


@pytest.fixture(scope="module")
def a_gate_dir(tmp_path_factory):
    """Where the ``gated`` engine's steps say they started and wait for the test's go."""
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def a_ray_server(a_ray_cluster, a_namespace, a_gate_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("ray-server") / "server.log"
    env = dict(os.environ, SLICERFM_ENGINE_PLUGINS=PLUGINS, SLICERFM_TEST_GATE_DIR=str(a_gate_dir),
               SLICERFM_RAY_NAMESPACE=a_namespace, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    backend = LocalBackend([EXECUTABLE], engines=["classic"], env=env, log_path=str(log), startup_timeout_s=300,
                           extra_args=["--ray", a_ray_cluster.address, "--ray-workers", "2",
                                       "--registration-engines", "classic,slow,gated"])
    try:
        backend.start()
    except errors.SlicerFMError as error:
        pytest.fail(f"serve --ray did not start: {error}\n{log.read_text(errors='replace')[-3000:]}")
    yield backend
    backend.stop(timeout_s=30)


@pytest.fixture(scope="module")
def a_ray_driver(a_ray_cluster, a_namespace):
    """This test process joined to the cluster, to look at (and kill) the workers."""
    import ray
    from ray._private import ray_constants

    if ray_constants.ENABLE_RAY_CLUSTER:  # Testing/conftest.py sets it before ray is imported
        pytest.fail("ray was imported in cluster mode: it would look for the cluster on the network address")

    ray.init(address=a_ray_cluster.address, namespace=a_namespace, log_to_driver=False)
    yield ray
    ray.shutdown()


def worker_load(ray, index):
    return ray.get(ray.get_actor(f"slicerfm-worker-{index}").load.remote(), timeout=60)


def connected(url):
    client = SlicerFMClient(url, timeout_s=120)
    client.connect("cluster-test", heartbeat=False)
    return client


def worker_of(client) -> int:
    return int(SESSION_ID.match(client.session_token).group(1))


def a_volume(seed: int):
    """(K, J, I) = (20, 30, 40) int16 with a bright block; a different image per seed."""
    rng = np.random.default_rng(seed)
    array = rng.normal(-800, 20, (20, 30, 40)).astype(np.int16)
    array[5:15, 10:20, 10:30] = 60
    return array


def two_clients_on_two_workers(url):
    first, second = connected(url), connected(url)
    if worker_of(first) == worker_of(second):  # the least-loaded choice spreads, unless one was full
        pytest.fail(f"both sessions went to worker {worker_of(first)}")
    return first, second


def test_two_clients_click_in_parallel_on_different_workers(a_ray_server, a_ray_driver):
    first, second = two_clients_on_two_workers(a_ray_server.url)
    image = a_volume(1)
    clicks = [((10, 15, 20), True), ((8, 14, 12), True), ((10, 5, 5), False)]
    results, failures = {}, []

    def annotate(client):
        try:
            client.set_image(image, IJK_TO_RAS, "CT")
            results[worker_of(client)] = [client.add_point("block", point, positive).voxels
                                          for point, positive in clicks]
        except Exception as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=annotate, args=(client,)) for client in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert results[0] == results[1] and results[0][0] > 0
    pids = {worker_load(a_ray_driver, index)["pid"] for index in (0, 1)}
    assert len(pids) == 2 and os.getpid() not in pids
    for client in (first, second):
        client.close()


def test_an_image_uploaded_once_is_attached_on_any_worker(a_ray_server, a_ray_driver):
    first, second = two_clients_on_two_workers(a_ray_server.url)
    image = a_volume(2)
    directory = a_ray_driver.get_actor("slicerfm-images")
    before = a_ray_driver.get(directory.stats.remote())["images"]
    image_id = first.upload_image(image, IJK_TO_RAS, "CT")
    assert second.has_image(image_id)  # asked of any worker: the cluster holds it
    second.attach_image(image_id)  # attached on the other worker without an upload
    update = second.add_point("block", (10, 15, 20), True)
    assert update.voxels > 0
    assert a_ray_driver.get(directory.stats.remote())["images"] == before + 1
    first.upload_image(image, IJK_TO_RAS, "CT")  # again: HEAD says held, nothing is sent
    assert a_ray_driver.get(directory.stats.remote())["images"] == before + 1
    for client in (first, second):
        client.close()


def test_a_worker_killed_mid_session_answers_410_and_the_client_reseeds_without_loss(
        a_ray_server, a_ray_driver, a_ray_cluster):
    victim, bystander = two_clients_on_two_workers(a_ray_server.url)
    image = a_volume(3)
    for client in (victim, bystander):
        client.set_image(image, IJK_TO_RAS, "CT")
    copies = {name: np.zeros(image.shape, bool) for name in ("block", "second")}
    victim.add_point("block", (10, 15, 20), True).apply_to(copies["block"])
    victim.add_point("block", (10, 5, 5), False).apply_to(copies["block"])
    victim.add_box("second", (6, 11, 11), (8, 13, 14)).apply_to(copies["second"])
    index = worker_of(victim)
    load = worker_load(a_ray_driver, index)
    assert a_ray_cluster.owns(load["pid"])
    os.kill(load["pid"], signal.SIGKILL)

    assert bystander.add_point("block", (10, 15, 20), True).voxels > 0  # the others go on
    with pytest.raises(errors.SessionExpiredError, match="claim a new session"):
        victim.add_point("block", (10, 15, 25), True)
    victim.connect("cluster-test", heartbeat=False)  # what the module does after a 410
    victim.set_image(image, IJK_TO_RAS, "CT")  # still in the cluster's store: no upload
    for name, mask in copies.items():
        victim.seed(name, mask)
    voxels = {segment["name"]: segment["voxels"] for segment in victim.segments()}
    assert voxels == {name: int(mask.sum()) for name, mask in copies.items()}
    labels, segments = victim.labelmap()  # "second" lies inside "block" and is painted last
    by_name = {segment["name"]: segment["label"] for segment in segments}
    assert np.array_equal(labels == by_name["second"], copies["second"])
    assert np.array_equal(labels == by_name["block"], copies["block"] & ~copies["second"])
    deadline = time.monotonic() + 120
    while True:  # Ray restarts the worker: a new process, empty
        try:
            restarted = worker_load(a_ray_driver, index)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert restarted["pid"] != load["pid"] and restarted["incarnation"] != load["incarnation"]
    for client in (victim, bystander):
        client.close()


def registration_body(fixed_id, moving_id, steps):
    return {"engine": "slow", "fixed": {"image_id": fixed_id}, "moving": {"image_id": moving_id},
            "io_steps": steps}


def wait_until_running(client, job_id, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.job_status(job_id)
        if status["state"] == "running" and status["done"] > 0:
            return status
        assert status["state"] in ("queued", "running"), status
        time.sleep(0.1)
    pytest.fail(f"the job did not start within {timeout_s} s: {status}")


@pytest.fixture(scope="module")
def a_pair(a_ray_server):
    client = connected(a_ray_server.url)
    ids = [client.upload_image(a_volume(seed), IJK_TO_RAS, "CT") for seed in (4, 5)]
    yield client, ids
    client.close()


def test_a_registration_job_runs_as_a_ray_task_with_progress(a_pair, a_ray_driver):
    client, (fixed, moving) = a_pair
    status = client.submit_job("/api/register", registration_body(fixed, moving, 20))
    seen = []
    final = client.wait_job(status["job_id"], on_progress=lambda s: seen.append(s.get("progress")), poll_s=0.1)
    assert any(p is not None and 0 < p < 1 for p in seen), seen
    assert final["result"]["engine"] == "slow"
    workers = {worker_load(a_ray_driver, index)["pid"] for index in (0, 1)}
    assert final["result"]["details"]["pid"] not in workers  # ran in a task's process
    field, meta = client.job_array(status["job_id"], "displacement")
    assert field.shape == (20, 30, 40, 3) and meta["units"] == "mm"


def test_a_job_on_the_cluster_can_be_cancelled_while_it_runs(a_pair):
    client, (fixed, moving) = a_pair
    job_id = client.submit_job("/api/register", registration_body(fixed, moving, 600))["job_id"]
    wait_until_running(client, job_id)
    client.cancel_job(job_id)
    with pytest.raises(errors.JobCancelledError):
        client.wait_job(job_id, poll_s=0.1, timeout_s=60)


def wait_for(condition, what, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)


@pytest.fixture
def a_gate(a_gate_dir):
    """The ``gated`` engine's folder, empty before and after the test."""
    def clear():
        for path in a_gate_dir.iterdir():
            path.unlink()
    clear()
    yield a_gate_dir
    clear()


def test_a_job_whose_process_dies_in_a_step_is_reported_failed_and_frees_the_device(
        a_pair, a_ray_cluster, a_ray_driver, a_gate):
    client, (fixed, moving) = a_pair
    job_id = client.submit_job("/api/register", {**registration_body(fixed, moving, 3), "engine": "gated"})["job_id"]
    wait_for((a_gate / "step-0.started").exists, "the job's first step")
    worker = int(job_id[1:job_id.index("x")])
    assert worker_load(a_ray_driver, worker)["device_queue"]["busy"] == 1  # the step holds the worker's device
    tasks = a_ray_cluster.pids_named("run_engine_work")
    assert len(tasks) == 1, tasks
    os.kill(tasks[0], signal.SIGKILL)
    with pytest.raises(errors.JobFailedError, match="died"):
        client.wait_job(job_id, poll_s=0.1, timeout_s=120)
    assert worker_load(a_ray_driver, worker)["device_queue"]["busy"] == 0  # not held by the dead task


def test_a_long_job_holds_its_workers_device_one_step_at_a_time_and_clicks_go_first(
        a_pair, a_ray_driver, a_gate):
    client, (fixed, moving) = a_pair
    client.attach_image(fixed)
    worker = worker_of(client)
    job_id = client.submit_job("/api/register", {**registration_body(fixed, moving, 3), "engine": "gated"})["job_id"]
    assert job_id.startswith(f"w{worker}x")  # the job is held by the session's worker
    wait_for((a_gate / "step-0.started").exists, "the job's first step")
    queue = worker_load(a_ray_driver, worker)["device_queue"]
    assert queue["busy"] == 1, queue  # the task's step holds a slot of the worker's device

    clicked = {}
    click = threading.Thread(target=lambda: clicked.update(update=client.add_point("block", (10, 15, 20), True)))
    click.start()
    wait_for(lambda: worker_load(a_ray_driver, worker)["device_queue"]["interactive"] == 1,
             "the click waiting for the job's step")
    (a_gate / "step-0.go").touch()  # the step ends: the click goes before the job's next step
    click.join(120)
    assert clicked["update"].voxels > 0
    assert clicked["update"].notes["queue.ahead"] == "1"  # it waited for that one step, no more
    status = client.job_status(job_id)
    assert status["state"] == "running" and status["done"] < 3, status  # the job goes on after it
    for step in (1, 2):
        (a_gate / f"step-{step}.go").touch()
    final = client.wait_job(job_id, poll_s=0.1, timeout_s=120)
    assert final["result"]["engine"] == "gated" and final["device_wait_s"] >= 0
    assert worker_load(a_ray_driver, worker)["device_queue"] == {"busy": 0, "interactive": 0, "background": 0}


def test_on_two_nodes_sessions_use_both_images_cross_and_a_failed_node_costs_only_its_sessions(
        a_ray_cluster, a_ray_driver, tmp_path):
    """A second node (its own raylet and object store; loopback only), a server with one
    worker per node; the node is killed as a failing machine would be."""
    node = a_ray_cluster.add_node(cpus=2)
    log = tmp_path / "server.log"
    namespace = f"slicerfm-nodes-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, SLICERFM_RAY_NAMESPACE=namespace, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    backend = LocalBackend([EXECUTABLE], engines=["classic"], env=env, log_path=str(log), startup_timeout_s=300,
                           extra_args=["--ray", a_ray_cluster.address, "--ray-workers", "2"])
    try:
        backend.start()
        pids = [a_ray_driver.get(a_ray_driver.get_actor(f"slicerfm-worker-{i}", namespace).load.remote(),
                                 timeout=60)["pid"] for i in (0, 1)]
        on_node = {a_ray_cluster.node_of(pid): pid for pid in pids}
        assert set(on_node) == {0, 1}, on_node  # SPREAD: one worker on each node
        addresses = listening_addresses(a_ray_cluster.pids())
        assert addresses and all(is_loopback(address) for address in addresses), addresses

        first, second = two_clients_on_two_workers(backend.url)
        by_node = {a_ray_cluster.node_of(pids[worker_of(client)]): client for client in (first, second)}
        head_client, node_client = by_node[0], by_node[1]
        image = a_volume(6)
        image_id = head_client.set_image(image, IJK_TO_RAS, "CT")
        assert node_client.has_image(image_id)
        node_client.attach_image(image_id)  # from the head's object store to the other node's
        copy = np.zeros(image.shape, bool)
        node_client.add_point("block", (10, 15, 20), True).apply_to(copy)

        a_ray_cluster.kill_node(node)
        assert head_client.add_point("block", (10, 15, 20), True).voxels > 0  # the head's worker goes on
        with pytest.raises(errors.SessionExpiredError):
            node_client.add_point("block", (10, 5, 5), False)
        node_client.connect("cluster-test", heartbeat=False)  # what the module does after a 410
        assert node_client.has_image(image_id)  # the image store lives on the head: nothing to upload
        node_client.set_image(image, IJK_TO_RAS, "CT")
        node_client.seed("block", copy)
        labels, segments = node_client.labelmap()
        assert np.array_equal(labels == segments[0]["label"], copy)
        assert head_client.add_point("block", (8, 14, 12), True).voxels > 0
        for client in (first, second):
            client.close()
    except errors.SlicerFMError as error:
        pytest.fail(f"{error}\n{log.read_text(errors='replace')[-3000:]}")
    finally:
        backend.stop(timeout_s=30)
        a_ray_cluster.kill_node(node)
        a_ray_cluster.nodes.remove(node)
