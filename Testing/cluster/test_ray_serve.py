"""The Ray Serve application that KubeRay's RayService deploys
(``slicerfm_backend.cluster.serve_app:app``, deploy/kubernetes/rayservice.yaml), run with
``serve.run`` on the local loopback cluster: a client claims a session through Serve's
HTTP proxy and clicks; the detached workers are ended by the test."""

import uuid

import numpy as np
import pytest
import requests

from ray_cluster import free_port
from slicerfm_client.client import SlicerFMClient


@pytest.fixture(scope="module")
def a_serve_application(a_ray_cluster):
    import ray
    from ray import serve

    from slicerfm_backend.cluster.serve_app import SlicerFMIngress

    namespace = f"serve-test-{uuid.uuid4().hex[:8]}"
    ray.init(address=a_ray_cluster.address, namespace=namespace, log_to_driver=False)
    port = free_port()
    env = {"SLICERFM_RAY_WORKERS": "1", "SLICERFM_RAY_NAMESPACE": namespace, "SLICERFM_ENGINES": "classic"}
    deployment = serve.deployment(name="slicerfm-ingress", ray_actor_options={
        "num_cpus": 0, "runtime_env": {"env_vars": env}})(SlicerFMIngress)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(deployment.bind(), name="slicerfm", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        for name in ("slicerfm-worker-0", "slicerfm-images"):
            try:
                ray.kill(ray.get_actor(name, namespace=namespace))
            except ValueError:
                pass
        ray.shutdown()


def test_the_serve_application_for_rayservice_serves_a_click(a_serve_application):
    assert requests.get(a_serve_application + "/api/info", timeout=30).json()["protocol_version"]
    client = SlicerFMClient(a_serve_application, timeout_s=120)
    client.connect("serve-test", heartbeat=False)
    assert client.session_token.startswith("w0-")
    array = np.full((20, 30, 40), -800, np.int16)
    array[5:15, 10:20, 10:30] = 60
    client.set_image(array, np.diag([-0.8, -0.8, 2.5, 1.0]), "CT")
    update = client.add_point("block", (10, 15, 20), True)
    assert update.voxels > 0 and "cluster" in update.timings_ms
    client.close()
