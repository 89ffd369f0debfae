"""deploy/kubernetes/rayservice.yaml agrees with the code: it names the Serve application
that exists, the Ray version the ``ray`` extra pins, settings the server reads, the image's
user, the token, weights and state the server needs, GPUs for a worker and a job per pod,
and probes that need no tool the image lacks. Its validity against KubeRay's CRD schema is
checked by ``deploy/kubernetes/validate_rayservice.py`` (a documented command: the CRD is
KubeRay's file, not ours; docs/SCALE.md), whose conversion is tested here."""

import importlib
import json
import re
import sys
from pathlib import Path

import yaml

from slicerfm_backend.cluster.settings import ClusterSettings
from slicerfm_backend.settings import Settings

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "deploy" / "kubernetes" / "rayservice.yaml"
sys.path.insert(0, str(MANIFEST.parent))


def manifest():
    return yaml.safe_load(MANIFEST.read_text())


def serve_config():
    return yaml.safe_load(manifest()["spec"]["serveConfigV2"])


def test_the_rayservice_names_the_serve_application_and_its_deployment():
    application, = serve_config()["applications"]
    module, _, attribute = application["import_path"].partition(":")
    app = getattr(importlib.import_module(module), attribute)
    deployment, = application["deployments"]
    assert deployment["name"] == app._bound_deployment.name == "slicerfm-ingress"


def test_the_rayservice_runs_the_ray_version_the_extra_pins():
    pyproject = (REPO / "backend" / "pyproject.toml").read_text()
    pinned = re.search(r'"ray\[serve\]==([0-9.]+)"', pyproject).group(1)
    assert manifest()["spec"]["rayClusterConfig"]["rayVersion"] == pinned


def test_every_slicerfm_variable_of_the_rayservice_is_a_setting():
    head = manifest()["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    names = {variable["name"] for variable in head["env"] if variable["name"].startswith("SLICERFM_")}
    known = {f"SLICERFM_{field.upper()}" for field in Settings.model_fields}
    known |= {f"SLICERFM_RAY_{field.upper()}" for field in ClusterSettings.model_fields}
    known.add("SLICERFM_TOKEN_FILE")  # read by the Serve application (serve_app.py)
    assert names and names <= known, names - known
    workers = manifest()["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert str(workers["replicas"]) == next(v["value"] for v in head["env"] if v["name"] == "SLICERFM_RAY_WORKERS")


def pods():
    """``(group, pod spec, rayStartParams)`` of the head and each worker group."""
    cluster = manifest()["spec"]["rayClusterConfig"]
    yield "head", cluster["headGroupSpec"]["template"]["spec"], cluster["headGroupSpec"]["rayStartParams"]
    for group in cluster["workerGroupSpecs"]:
        yield group["groupName"], group["template"]["spec"], group["rayStartParams"]


def variables(container):
    return {variable["name"]: variable.get("value") for variable in container["env"]}


def test_every_pod_runs_the_ray_image_as_its_user_with_the_token_weights_and_state_the_server_reads():
    image_uid = re.search(r"ARG UID=(\d+)", (REPO / "deploy" / "container" / "Containerfile.cuda").read_text()).group(1)
    images = set()
    for group, spec, _ in pods():
        container, = spec["containers"]
        images.add(container["image"])
        assert "command" not in container and "args" not in container, group  # KubeRay runs `ray start`
        assert str(spec["securityContext"]["runAsUser"]) == image_uid, group
        env, volumes = variables(container), {volume["name"]: volume for volume in spec["volumes"]}
        mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
        token_dir = str(Path(env["SLICERFM_TOKEN_FILE"]).parent)
        assert volumes[mounts[token_dir]["name"]]["secret"]["secretName"] and mounts[token_dir]["readOnly"]
        weights = mounts[env["SLICERFM_WEIGHTS_DIR"]]
        assert weights["readOnly"] and volumes[weights["name"]]["persistentVolumeClaim"]["readOnly"]
        state = mounts[env["SLICERFM_STATE_DIR"]]
        assert not state.get("readOnly") and "persistentVolumeClaim" in volumes[state["name"]]
        assert volumes[mounts["/dev/shm"]["name"]]["emptyDir"]["medium"] == "Memory"  # Ray's object store
        assert container["resources"]["limits"]["memory"]
    assert len(images) == 1  # one image on every node: the workers and job tasks import the same code


def test_each_gpu_pod_holds_one_worker_and_one_job_and_the_head_none():
    for group, spec, params in pods():
        container, = spec["containers"]
        env = variables(container)
        if group == "head":
            assert params["num-cpus"] == "0" and params["num-gpus"] == "0"
            continue
        gpus = int(container["resources"]["limits"]["nvidia.com/gpu"])
        assert int(params["num-gpus"]) == gpus == 1
        assert float(env["SLICERFM_RAY_WORKER_GPUS"]) + float(env["SLICERFM_RAY_JOB_GPUS"]) <= gpus


def test_the_probes_need_no_tool_the_image_lacks():
    """Without probes of its own, KubeRay (up to 1.5 for every probe, up to 1.7 for a RayService
    worker's readiness) injects ``wget`` commands; the image is Python's slim image, without wget."""
    for group, spec, _ in pods():
        container, = spec["containers"]
        for probe in ("livenessProbe", "readinessProbe"):
            assert probe in container, (group, probe)
            assert "wget" not in json.dumps(container[probe])
            command = container[probe].get("exec", {}).get("command")
            if command:
                assert command[:2] == ["python", "-c"]
                compile(command[2], "probe", "exec")  # the one-line program parses


def a_crd(schema):
    return {"spec": {"group": "ray.io", "names": {"kind": "RayService"},
                     "versions": [{"name": "v1", "served": True, "schema": {"openAPIV3Schema": schema}}]}}


def test_the_crd_validator_reports_unknown_fields_and_wrong_types_as_the_api_server_would():
    from validate_rayservice import problems

    crd = a_crd({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["port"], "properties": {
            "port": {"x-kubernetes-int-or-string": True},
            "note": {"type": "string", "nullable": True},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}}}}}})
    good = {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "x"},
            "spec": {"port": "8000", "note": None, "free": {"anything": 1}}}
    assert problems(good, crd) == []
    assert problems({**good, "spec": {**good["spec"], "port": 8000}}, crd) == []
    bad = {**good, "spec": {"porrt": 1, "note": 3}}
    assert set(problems(bad, crd)) == {
        "spec: 'port' is a required property",
        "spec: Additional properties are not allowed ('porrt' was unexpected)",
        "spec.note: 3 is not valid under any of the given schemas"}
    assert problems({**good, "kind": "RayCluster"}, crd)
