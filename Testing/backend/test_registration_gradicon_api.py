"""The unigradicon engine served by a real server: a job's field equals the engine's own,
IO progress reaches the client, and cancelling IO leaves the served network's weights as
they were (small network of the package's classes, random weights, checkpoint override)."""

import threading

import numpy as np
import pytest

from gradicon_helpers import a_pair, same_state, state_copy, use_small_network
from slicerfm_backend.registration.base import RegistrationImage, RegistrationRequest
from slicerfm_backend.registration.gradicon.engine import UniGradICONEngine
from slicerfm_client import errors
from slicerfm_client.registration import register

pytestmark = pytest.mark.torch


@pytest.fixture
def served(monkeypatch, tmp_path, a_server_factory):
    checkpoint = use_small_network(monkeypatch, tmp_path)
    server = a_server_factory(engines=["sphere"], registration_engines=["unigradicon"],
                              checkpoints={"unigradicon": str(checkpoint)})
    with server.client() as client:
        yield server, client, checkpoint


def test_a_job_returns_the_engines_field_and_figures(served):
    server, client, checkpoint = served
    fixed, fixed_geometry, moving, moving_geometry = a_pair()
    out = register(client, fixed, fixed_geometry, moving, moving_geometry, engine="unigradicon",
                   fixed_modality="MR", moving_modality="MR", io_steps=0, poll_s=0.05, timeout_s=120)
    engine = UniGradICONEngine("cpu", {"checkpoint": str(checkpoint)})
    engine.load()
    direct = engine.register(RegistrationRequest(RegistrationImage(fixed, fixed_geometry, "MR"),
                                                 RegistrationImage(moving, moving_geometry, "MR"), io_steps=0),
                             lambda *args: None)
    np.testing.assert_allclose(out.vectors_ras, direct.field.vectors_ras, atol=1e-5)
    np.testing.assert_allclose(out.ijk_to_ras, fixed_geometry)
    meta = out.meta
    assert meta["engine"] == "unigradicon" and meta["details"]["io_steps"] == 0
    assert {"preprocess", "model", "field", "jacobian", "total"} <= set(meta["timings_s"])
    assert meta["neg_jacobian_fraction"] == direct.neg_jacobian_fraction


def test_io_progress_reaches_the_client_and_cancel_keeps_the_served_weights(served):
    server, client, _ = served
    fixed, fixed_geometry, moving, moving_geometry = a_pair()
    seen = []
    register(client, fixed, fixed_geometry, moving, moving_geometry, engine="unigradicon",
             fixed_modality="MR", moving_modality="MR", io_steps=3, on_progress=seen.append,
             poll_s=0.02, timeout_s=120)
    steps = {(s["stage"], s["done"], s["total"]) for s in seen if s["stage"] == "instance optimisation"}
    assert steps and all(total == 3 and 0 <= done <= 3 for _, done, total in steps)
    network = server.state.registration.get("unigradicon").network
    before = state_copy(network)
    cancel = threading.Event()

    def cancel_during_io(status):
        if status["stage"] == "instance optimisation" and status["done"] >= 1:
            cancel.set()

    with pytest.raises(errors.JobCancelledError):
        register(client, fixed, fixed_geometry, moving, moving_geometry, engine="unigradicon",
                 fixed_modality="MR", moving_modality="MR", io_steps=1000, on_progress=cancel_during_io,
                 cancel_event=cancel, poll_s=0.02, timeout_s=300)
    assert same_state(network, before)
