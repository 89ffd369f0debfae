"""One engine core for both families: devices, plugins, options, load errors, defaults
that fit the device, and the time estimate a job shows up front."""

import numpy as np
import pytest

from registration_helpers import IJK_TO_RAS, SHAPE, blob
from slicerfm_backend.engine_core import devices
from slicerfm_backend.engine_core.manager import EngineManager, split_options
from slicerfm_backend.engine_core.registry import parse_plugins
from slicerfm_backend.engine_core.served import FAMILIES, engine_managers
from slicerfm_backend.engines.registry import SEGMENTATION
from slicerfm_backend.errors import DomainError
from slicerfm_backend.registration.base import RegistrationImage, RegistrationRequest
from slicerfm_backend.registration.classic import ClassicRegistrationEngine
from slicerfm_backend.registration.gradicon import UniGradICONEngine
from slicerfm_backend.registration.registry import REGISTRATION
from slicerfm_backend.settings import Settings
from slicerfm_client import protocol


def test_an_engine_runs_on_the_server_device_when_it_can_else_on_the_cpu():
    assert devices.engine_device(("cuda", "cpu"), "cuda:1") == "cuda:1"
    assert devices.engine_device(("cuda", "cpu"), "mps") == "cpu"
    assert devices.engine_device(("cuda", "mps", "cpu"), "mps") == "mps"
    assert devices.engine_device(("cpu",), "cuda") == "cpu"
    assert devices.engine_device(("cuda",), "cpu") == "cuda"


@pytest.mark.parametrize("family, name, word", [
    (SEGMENTATION, "nope", "segmentation engine 'nope' is unknown"),
    (SEGMENTATION, "vista3d", "segmentation engine 'vista3d' is not served here"),
    (REGISTRATION, "nope", "registration engine 'nope' is unknown"),
    (REGISTRATION, "unigradicon", "registration engine 'unigradicon' is not served here"),
])
def test_an_unknown_or_unserved_engine_answers_the_same_from_both_families(family, name, word):
    manager = EngineManager(family, ["classic"], "cpu")
    with pytest.raises(DomainError, match=word) as refused:
        manager.get(name)
    assert refused.value.code == protocol.ERROR_ENGINE_UNAVAILABLE
    assert "this server offers classic" in refused.value.message


def test_plugins_join_the_family_of_their_class_and_never_replace_a_built_in(monkeypatch):
    monkeypatch.setenv("SLICERFM_ENGINE_PLUGINS", "lab-sphere=toy_engines:SphereEngine,"
                       "lab-demons=registration_helpers:GatedClassic,classic=toy_engines:FloodEngine")
    assert SEGMENTATION.knows("lab-sphere") and not REGISTRATION.knows("lab-sphere")
    assert REGISTRATION.knows("lab-demons") and not SEGMENTATION.knows("lab-demons")
    assert SEGMENTATION.engine_class("classic").__name__ == "ClassicEngine"
    assert "lab-sphere" in SEGMENTATION.names() and "lab-demons" in REGISTRATION.names()
    segmentation, registration = engine_managers(Settings(engines=["lab-sphere"], registration_engines=["lab-demons"]))
    assert segmentation.get("lab-sphere").name == "sphere" and registration.describe()[0]["kind"] == "registration"


@pytest.mark.parametrize("spec", ["lab", "lab=module", "=m:C", "lab=:C", "lab=m:"])
def test_a_malformed_plugin_is_refused_with_the_expected_form(spec):
    with pytest.raises(ValueError, match="name=module:Class"):
        parse_plugins(spec)


def test_engine_options_go_to_the_family_whose_engine_declares_them():
    split = split_options({"classic": {"unfold": "off"}, "sam-med3d": {"max_crops": "2"},
                           "unigradicon": {"network_shape": "96,96,96"}}, FAMILIES)
    assert split == {"segmentation": {"sam-med3d": {"max_crops": "2"}},
                     "registration": {"classic": {"unfold": "off"}, "unigradicon": {"network_shape": "96,96,96"}}}
    with pytest.raises(ValueError, match=r"engine 'classic' has no option 'radius' \(its options: "
                                         r"segmentation: refine; registration: unfold\)"):
        split_options({"classic": {"radius": "3"}}, FAMILIES)
    with pytest.raises(ValueError, match="unknown engine 'nope'"):
        split_options({"nope": {"x": "1"}}, FAMILIES)


def test_registration_options_reach_the_engine_as_typed_values():
    settings = Settings(engine_options={"classic": {"unfold": "off"}, "unigradicon": {"network_shape": "96x96x96"}})
    _, registration = engine_managers(settings, registration=["classic", "unigradicon"])
    assert registration.get("classic").options["unfold"] is False
    assert registration.instance("unigradicon").network_shape == (96, 96, 96)
    with pytest.raises(ValueError, match="unigradicon.network_shape: must be three whole numbers"):
        engine_managers(Settings(engine_options={"unigradicon": {"network_shape": "96"}}))


def test_on_the_cpu_unigradicon_defaults_to_no_instance_optimisation():
    assert UniGradICONEngine("cpu").default_io_steps == 0
    assert UniGradICONEngine("cuda").default_io_steps == 50
    _, registration = engine_managers(Settings(), registration=["unigradicon"], device="cpu")
    assert registration.describe()[0]["default_io_steps"] == 0


def a_request(io_steps=None, affine=False):
    image = RegistrationImage(blob([0.0, 0.0, 0.0]), IJK_TO_RAS, "MR")
    return RegistrationRequest(image, image, io_steps=io_steps, affine_prealign=affine)


def test_engines_estimate_their_running_time_from_measured_figures():
    gradicon = UniGradICONEngine("cpu")
    network_alone = gradicon.estimate_s(a_request())
    assert 10 < network_alone < 60  # the 175³ forward pass on 2 cores
    assert gradicon.estimate_s(a_request(io_steps=50)) > 3600  # IO on the CPU: hours, said up front
    assert UniGradICONEngine("cuda").estimate_s(a_request()) is None  # no GPU figures measured yet
    classic = ClassicRegistrationEngine()
    small = classic.estimate_s(a_request())
    assert 0 < small < 1 and classic.estimate_s(a_request(affine=True)) > small  # SHAPE is 21,504 voxels
    assert np.prod(SHAPE) < 30_000


def test_the_automatic_seam_is_declared_and_listed_without_loading():
    from slicerfm_backend.engines.base import AutoSegmentation
    from slicerfm_backend.engines.classic import ClassicEngine
    from slicerfm_backend.engines.vista3d import Vista3DEngine

    assert issubclass(Vista3DEngine, AutoSegmentation) and not issubclass(ClassicEngine, AutoSegmentation)
    assert Vista3DEngine("cpu").describe()["automatic"] and not ClassicEngine().describe()["automatic"]
    classes = Vista3DEngine.classes()
    assert {"id", "name", "group", "color"} <= set(classes[0])
    assert Vista3DEngine.class_ids(["kidney"]) == [14, 5] and len(Vista3DEngine.class_ids(None, everything=True)) == 117
    with pytest.raises(ValueError):
        Vista3DEngine.class_ids(["no such organ"])


def test_the_class_list_route_asks_the_engine_and_refuses_engines_without_the_seam(a_server):
    import requests

    answer = requests.get(a_server.url + protocol.PATH_SEGMENT_AUTO_CLASSES, params={"engine": "sphere"}, timeout=10)
    assert answer.status_code == 422 and "has no automatic segmentation" in answer.json()["message"]
    answer = requests.get(a_server.url + protocol.PATH_SEGMENT_AUTO_CLASSES, params={"engine": "vista3d"}, timeout=10)
    assert answer.status_code == 503 and answer.json()["error"] == protocol.ERROR_ENGINE_UNAVAILABLE
