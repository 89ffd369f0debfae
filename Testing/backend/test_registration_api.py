"""Registration jobs through a real server and the client: result, convention, masks,
progress, cancel, and clear errors for bad requests."""

import numpy as np
import pytest

from registration_helpers import CENTRE, IJK_TO_RAS, SHAPE, GatedClassic, blob, box_mask, two_blobs, voxel_of
from slicerfm_backend.registration import registry as registration_registry
from slicerfm_backend.registration import service
from slicerfm_client import errors, protocol
from slicerfm_client.registration import register

SHIFT = np.array([3.0, -2.0, 2.0])


@pytest.fixture
def reg_server(a_server_factory, monkeypatch):
    monkeypatch.setitem(registration_registry.REGISTRATION_ENGINE_CLASSES, "gated-classic",
                        "registration_helpers:GatedClassic")
    monkeypatch.setitem(registration_registry.REGISTRATION_ENGINE_CLASSES, "missing-weights",
                        "registration_helpers:MissingWeightsEngine")
    GatedClassic.reached.clear()
    GatedClassic.gate.clear()
    return a_server_factory(engines=["sphere"],
                            registration_engines=["classic", "gated-classic", "missing-weights"])


@pytest.fixture
def reg_client(reg_server):
    with reg_server.client() as client:
        yield client


def test_a_registration_job_returns_the_field_the_warped_image_and_its_figures(reg_client):
    fixed, moving = blob(CENTRE), blob(CENTRE + SHIFT)
    seen = []
    out = register(reg_client, fixed, IJK_TO_RAS, moving, IJK_TO_RAS, fixed_modality="MR",
                   moving_modality="MR", want_warped=True, on_progress=seen.append, poll_s=0.05)
    vectors, ijk_to_ras, meta = out
    assert vectors.shape == SHAPE + (3,) and vectors.dtype == np.float32
    np.testing.assert_allclose(ijk_to_ras, IJK_TO_RAS)
    np.testing.assert_allclose(vectors[voxel_of(CENTRE)], SHIFT, atol=0.4)
    assert meta["neg_jacobian_fraction"] == 0.0 and meta["runtime_s"] > 0
    assert {"preprocess", "demons", "jacobian", "total"} <= set(meta["timings_s"])
    assert meta["details"]["engine"] == "classic" and "x + d(x)" in meta["convention"]
    assert out.warped.shape == SHAPE and out.warped.dtype == np.float32
    assert np.abs(out.warped - fixed).mean() < 0.2 * np.abs(moving - fixed).mean()
    assert seen[-1]["state"] == "done" and seen[-1]["kind"] == "registration"
    assert all(status["estimate_s"] > 0 for status in seen)  # said up front, kept to the end


def test_masks_travel_as_label_maps_and_choose_the_structure_followed(reg_client):
    fixed, moving, centre_a, centre_b = two_blobs([3.0, 0, 0], [-3.0, 0, 0])
    labels = (box_mask(centre_a, 9.0) * 1 + box_mask(centre_b, 9.0) * 2).astype(np.uint8)
    towards_b = register(reg_client, fixed, IJK_TO_RAS, moving, IJK_TO_RAS, fixed_mask=labels,
                         moving_mask=labels, fixed_mask_labels=[2], moving_mask_labels=[2], poll_s=0.05)
    assert towards_b.vectors_ras[voxel_of(centre_b)][0] == pytest.approx(-3.0, abs=0.4)
    assert towards_b.vectors_ras[voxel_of(centre_a)][0] < 0
    towards_a = register(reg_client, fixed, IJK_TO_RAS, moving, IJK_TO_RAS, fixed_mask=labels == 1,
                         moving_mask=labels == 1, poll_s=0.05)
    assert towards_a.vectors_ras[voxel_of(centre_a)][0] == pytest.approx(3.0, abs=0.4)
    assert towards_a.vectors_ras[voxel_of(centre_b)][0] > 0


def upload_pair(client, fixed=None, moving=None):
    fixed = blob(CENTRE) if fixed is None else fixed
    moving = blob(CENTRE + SHIFT) if moving is None else moving
    return client.upload_image(fixed, IJK_TO_RAS, "MR"), client.upload_image(moving, IJK_TO_RAS, "MR")


def test_a_running_job_reports_demons_progress_and_cancel_stops_it(reg_client):
    fixed_id, moving_id = upload_pair(reg_client)
    status = reg_client.submit_job(protocol.PATH_REGISTER, {
        "engine": "gated-classic", "fixed": {"image_id": fixed_id}, "moving": {"image_id": moving_id}})
    assert status["state"] in ("queued", "running") and status["kind"] == "registration"
    assert GatedClassic.reached.wait(30)
    running = reg_client.job_status(status["job_id"])
    assert running["state"] == "running" and running["stage"] == "demons"
    assert running["done"] == 2 and running["total"] > 2 and 0 < running["progress"] < 1
    reg_client.cancel_job(status["job_id"])
    GatedClassic.gate.set()
    with pytest.raises(errors.JobCancelledError):
        reg_client.wait_job(status["job_id"], poll_s=0.05, timeout_s=30)
    assert reg_client.job_status(status["job_id"])["state"] == "cancelled"
    with pytest.raises(errors.SlicerFMError):
        reg_client.job_array(status["job_id"], "displacement")


def test_an_engine_refusal_fails_the_job_with_its_message(reg_client):
    with pytest.raises(errors.JobFailedError, match="nothing to do"):
        register(reg_client, blob(CENTRE), IJK_TO_RAS, blob(CENTRE + SHIFT), IJK_TO_RAS, io_steps=0,
                 poll_s=0.05)


def test_engines_endpoint_lists_the_registration_engines(reg_client):
    with reg_client._lock:
        listing = reg_client._request("GET", protocol.PATH_ENGINES, session=False).json()
    names = {row["name"]: row for row in listing["registration_engines"]}
    assert set(names) == {"classic", "gated-classic", "missing-weights"}
    assert names["classic"]["needs_weights"] is False and names["classic"]["similarities"] == ["ssd"]
    assert names["classic"]["kind"] == "registration" and names["classic"]["device"] == "cpu"


def bad(client, body, error_class, word):
    with pytest.raises(error_class) as caught:
        client.submit_job(protocol.PATH_REGISTER, body)
    assert word in str(caught.value), str(caught.value)
    return caught.value


def test_bad_requests_get_clear_errors(reg_client, monkeypatch):
    fixed_id, moving_id = upload_pair(reg_client)
    pair = {"fixed": {"image_id": fixed_id}, "moving": {"image_id": moving_id}}
    constant_id = reg_client.upload_image(np.full(SHAPE, 5, np.int16), IJK_TO_RAS, "CT")
    thin_id = reg_client.upload_image(np.arange(2 * 30 * 30, dtype=np.int16).reshape(2, 30, 30), IJK_TO_RAS, "CT")
    mask = box_mask(CENTRE, 8.0).astype(np.uint8)
    mask_id = reg_client.upload_image(mask, IJK_TO_RAS, "unknown")
    moved = IJK_TO_RAS.copy()
    moved[0, 3] += 2.0
    shifted_mask_id = reg_client.upload_image(mask, moved, "unknown")
    small_mask_id = reg_client.upload_image(mask[:10], IJK_TO_RAS, "unknown")
    float_mask_id = reg_client.upload_image(mask.astype(np.float32), IJK_TO_RAS, "unknown")
    with_mask = lambda mid, **extra: {**pair, "fixed": {"image_id": fixed_id, "mask_id": mid, **extra}}  # noqa: E731
    cases = [
        ({**pair, "engine": "nope"}, errors.EngineUnavailableError, "unknown"),
        ({**pair, "engine": "unigradicon"}, errors.EngineUnavailableError, "not served"),
        ({**pair, "engine": "missing-weights"}, errors.EngineUnavailableError, "weights fetch missing-weights"),
        ({"moving": pair["moving"]}, errors.InvalidInputError, "'fixed'"),
        ({**pair, "moving": {"image_id": "ab" * 32}}, errors.ImageNotFoundError, "upload it first"),
        ({**pair, "fixed": {"image_id": constant_id}}, errors.InvalidInputError, "empty"),
        ({**pair, "moving": {"image_id": thin_id}}, errors.InvalidInputError, "at least 4"),
        (with_mask(shifted_mask_id), errors.InvalidInputError, "geometry"),
        (with_mask(small_mask_id), errors.InvalidInputError, "shape"),
        (with_mask(float_mask_id), errors.InvalidInputError, "integer label map"),
        (with_mask(mask_id, mask_labels=[7]), errors.InvalidInputError, "empty for labels [7]"),
        ({**pair, "fixed": {"image_id": fixed_id, "mask_labels": [1]}}, errors.InvalidInputError, "needs"),
        ({**pair, "fixed": {"image_id": fixed_id, "modality": "PET"}}, errors.InvalidInputError, "modality"),
        ({**pair, "similarity": "mind"}, errors.InvalidInputError, "similarity"),
        ({**pair, "io_steps": "ten"}, errors.InvalidInputError, "io_steps"),
        ({**pair, "io_steps": True}, errors.InvalidInputError, "io_steps"),
        ({**pair, "output_grid": "moving"}, errors.InvalidInputError, "output_grid"),
        ({**pair, "want_warped": "yes"}, errors.InvalidInputError, "want_warped"),
        ({**pair, "colour": 1}, errors.InvalidInputError, "unknown field"),
    ]
    for body, error_class, word in cases:
        bad(reg_client, body, error_class, word)
    monkeypatch.setattr(service, "MAX_VOXELS", 1000)
    error = bad(reg_client, pair, errors.TooLargeError, "at most 1,000")
    assert error.status == 413


def test_nan_images_never_reach_a_registration(reg_client):
    image = blob(CENTRE)
    image[3, 4, 5] = np.nan
    with pytest.raises(errors.InvalidInputError, match="NaN"):
        register(reg_client, image, IJK_TO_RAS, blob(CENTRE + SHIFT), IJK_TO_RAS)


def test_the_registration_engines_setting_flag_and_unknown_names(monkeypatch):
    from slicerfm_backend.app import make_app
    from slicerfm_backend.cli import build_parser
    from slicerfm_backend.settings import settings_from_args
    from slicerfm_backend.settings import Settings

    monkeypatch.setenv("SLICERFM_REGISTRATION_ENGINES", "classic, unigradicon")
    assert Settings().registration_engines == ["classic", "unigradicon"]
    args = build_parser().parse_args(["serve", "--registration-engines", "classic"])
    assert settings_from_args(args).registration_engines == ["classic"]
    with pytest.raises(ValueError, match="unknown registration engine 'nope'"):
        make_app(Settings(registration_engines=["classic", "nope"]))
