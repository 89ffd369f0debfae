"""deploy/kubernetes/rayservice.yaml agrees with the code: it names the Serve application
that exists, the Ray version the ``ray`` extra pins, and settings the server reads."""

import importlib
import re
from pathlib import Path

import yaml

from slicerfm_backend.cluster.settings import ClusterSettings
from slicerfm_backend.settings import Settings

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "deploy" / "kubernetes" / "rayservice.yaml"


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
