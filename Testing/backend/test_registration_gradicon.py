"""uniGradICON / multiGradICON engines against the package's own pipeline on random weights.

The full network (≈70.7 M parameters) runs once, at the smallest shape it accepts (66³),
without instance optimisation; everything involving IO uses a small network made of the
package's own classes (see ``gradicon_helpers.small_network``) so the suite stays fast.
"""

import numpy as np
import pytest
import torch

from gradicon_helpers import (SMALL_SHAPE, a_pair, blob_image, field_points, map_points,
                              random_voxels, randomise, reference_transform, same_state,
                              save_checkpoint, small_network, state_copy, use_small_network)
from slicerfm_backend.errors import CheckpointError, EngineError, WeightsMissingError
from slicerfm_backend.registration.gradicon import model as gradicon_model
from slicerfm_backend.registration.gradicon import network_field as gradicon_field
from slicerfm_backend.registration.gradicon import run as gradicon_run
from slicerfm_backend.registration.base import RegistrationImage, RegistrationRequest
from slicerfm_backend.registration.field import resample_field, to_sitk_transform, warp
from slicerfm_backend.registration.gradicon.engine import MultiGradICONEngine, UniGradICONEngine

pytestmark = pytest.mark.torch

FULL_SHAPE = (66, 66, 66)  # gradicon_model.MIN_SIDE: the smallest the released network accepts


def no_progress(stage, done, total):
    pass


def request_for(fixed, fixed_geometry, moving, moving_geometry, modality="MR", **kwargs):
    masks = {key: kwargs.pop(key) for key in ("fixed_mask", "moving_mask") if key in kwargs}
    return RegistrationRequest(
        RegistrationImage(fixed, fixed_geometry, modality, masks.get("fixed_mask")),
        RegistrationImage(moving, moving_geometry, modality, masks.get("moving_mask")), **kwargs)


# --- the released network (random weights) through the real loading path ------------------

@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Our engine and the package's register_pair on one pair with the same random weights."""
    torch.manual_seed(0)
    network = randomise(gradicon_model.build_network(FULL_SHAPE), last_std=8e-2)
    checkpoint = save_checkpoint(network, tmp_path_factory.mktemp("gradicon") / "Step_2_final.trch")
    engine = UniGradICONEngine("cpu", {"checkpoint": str(checkpoint), "network_shape": FULL_SHAPE})
    engine.load()
    fixed, fixed_geometry, moving, moving_geometry = a_pair()
    result = engine.register(request_for(fixed, fixed_geometry, moving, moving_geometry, io_steps=0),
                             no_progress)
    network.eval()
    reference = reference_transform(network, fixed, fixed_geometry, moving, moving_geometry, "mri")
    return engine, result, reference, (fixed, fixed_geometry, moving, moving_geometry)


def test_full_network_matches_the_package_pipeline(full_run):
    engine, result, reference, (fixed, fixed_geometry, moving, moving_geometry) = full_run
    assert result.field.shape == fixed.shape
    np.testing.assert_allclose(result.field.ijk_to_ras, fixed_geometry)
    points, ours = field_points(result.field, random_voxels(fixed.shape, 400))
    np.testing.assert_allclose(ours, map_points(reference, points), atol=1e-3)
    # The network's own displacement is not trivial: without it the points land elsewhere.
    identity = gradicon_field.field_from_network(torch.zeros(3, *FULL_SHAPE), fixed.shape, fixed_geometry,
                                                 moving.shape, moving_geometry)
    _, without_network = field_points(identity, random_voxels(fixed.shape, 400))
    assert np.median(np.linalg.norm(ours - without_network, axis=1)) > 1.0  # mm
    assert set(result.timings_s) >= {"preprocess", "model", "field", "jacobian", "total"}
    assert 0 < result.timings_s["model"] < result.timings_s["total"]
    assert 0.0 <= result.neg_jacobian_fraction <= 1.0
    assert result.details["network_shape"] == list(FULL_SHAPE) and result.details["device"] == "cpu"


def test_field_as_sitk_transform_maps_points_like_the_package_itk_transform(full_run):
    # Convention end to end: fixed RAS point -> (our field through field.to_sitk_transform, LPS)
    # is the package's phi_AB (ITK, LPS) applied to the same point.
    engine, result, reference, (fixed, *_rest) = full_run
    points, _ = field_points(result.field, random_voxels(fixed.shape, 100, seed=3))
    ours = map_points(to_sitk_transform(result.field), points)
    np.testing.assert_allclose(ours, map_points(reference, points), atol=1e-3)


def test_released_layout_loads_strictly_and_bad_files_fail_clearly(full_run, tmp_path):
    engine = full_run[0]
    state = engine.network.regis_net.state_dict()
    good = tmp_path / "good.trch"
    torch.save(state, str(good))
    truncated = tmp_path / "truncated.trch"
    truncated.write_bytes(good.read_bytes()[: 1 << 20])
    nested = tmp_path / "nested.trch"
    torch.save({"model_state_dict": dict(state)}, str(nested))
    missing = tmp_path / "missing_key.trch"
    torch.save({k: v for i, (k, v) in enumerate(state.items()) if i != 3}, str(missing))
    reshaped = tmp_path / "reshaped.trch"
    first = next(iter(state))
    torch.save({**state, first: torch.zeros(2, 2)}, str(reshaped))
    cases = [(truncated, "unreadable"), (nested, "not a state dict of tensors"),
             (missing, "1 missing key"), (reshaped, "shape mismatch")]
    for path, message in cases:
        with pytest.raises(CheckpointError, match=message) as caught:
            gradicon_model.load_regis_net(engine.network, path, "FIX")
        assert str(path) in str(caught.value) and "FIX" in str(caught.value)
    assert isinstance(CheckpointError("x"), EngineError)


# --- a small network of the same classes: IO, masks, modalities, errors --------------------

@pytest.fixture
def small(monkeypatch, tmp_path):
    """``(engine, checkpoint, network_factory)`` with a random small network loaded through
    the engine's loading path (build_network swapped for the small one)."""
    checkpoint = use_small_network(monkeypatch, tmp_path)

    def reference_network(similarity="lncc"):
        network = small_network(SMALL_SHAPE, similarity)
        network.regis_net.load_state_dict(torch.load(str(checkpoint), weights_only=True))
        return network.eval()

    engine = UniGradICONEngine("cpu", {"checkpoint": str(checkpoint), "network_shape": SMALL_SHAPE})
    engine.load()
    return engine, checkpoint, reference_network


@pytest.mark.parametrize("similarity", ["lncc", "lncc2", "mind"])
def test_instance_optimisation_matches_the_package_and_keeps_the_cached_weights(small, similarity):
    engine, _, reference_network = small
    fixed, fixed_geometry, moving, moving_geometry = a_pair()
    before = state_copy(engine.network)
    stages = []
    torch.manual_seed(7)
    result = engine.register(request_for(fixed, fixed_geometry, moving, moving_geometry, io_steps=2,
                                         similarity=similarity),
                             lambda stage, done, total: stages.append((stage, done, total)))
    network = reference_network(similarity)  # built before seeding: building draws random numbers
    torch.manual_seed(7)  # the same draws for the inverse-consistency samples of each IO step
    reference = reference_transform(network, fixed, fixed_geometry, moving, moving_geometry, "mri",
                                    io_steps=2)
    points, ours = field_points(result.field, random_voxels(fixed.shape, 300))
    np.testing.assert_allclose(ours, map_points(reference, points), atol=1e-3)
    assert same_state(engine.network, before)  # bit-identical cached weights
    assert [s for s in stages if s[0] == "instance optimisation"] == [
        ("instance optimisation", i, 2) for i in range(3)]
    assert [s[0] for s in stages if s[0] != "instance optimisation"] == [
        "preprocess", "network", "field", "jacobian"]
    assert result.details["io_steps"] == 2 and result.details["similarity"] == similarity
    # IO changed the answer (so the comparison above is not the no-IO map twice).
    plain = engine.register(request_for(fixed, fixed_geometry, moving, moving_geometry, io_steps=0),
                            no_progress)
    assert np.abs(plain.field.vectors_ras - result.field.vectors_ras).max() > 1e-4
    reference_plain = reference_transform(reference_network(), fixed, fixed_geometry, moving,
                                          moving_geometry, "mri")
    np.testing.assert_allclose(field_points(plain.field, random_voxels(fixed.shape, 300))[1],
                               map_points(reference_plain, points), atol=1e-3)


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_masks_and_modalities_match_the_package_preprocessing(small, modality):
    engine, _, reference_network = small
    fixed, fixed_geometry, moving, moving_geometry = a_pair()
    if modality == "CT":  # HU-like values reaching past the [-1000, 1000] window
        fixed, moving = fixed * 30 - 1200, moving * 30 - 1200
    fixed_mask = np.zeros(fixed.shape, bool)
    fixed_mask[4:26, 5:30, 3:25] = True
    moving_mask = np.zeros(moving.shape, bool)
    moving_mask[6:30, 2:27, 8:36] = True
    result = engine.register(request_for(fixed, fixed_geometry, moving, moving_geometry, modality,
                                         fixed_mask=fixed_mask, moving_mask=moving_mask, io_steps=0),
                             no_progress)
    reference = reference_transform(reference_network(), fixed, fixed_geometry, moving, moving_geometry,
                                    {"CT": "ct", "MR": "mri"}[modality], fixed_mask=fixed_mask,
                                    moving_mask=moving_mask)
    points, ours = field_points(result.field, random_voxels(fixed.shape, 300))
    np.testing.assert_allclose(ours, map_points(reference, points), atol=1e-3)
    unmasked = engine.register(request_for(fixed, fixed_geometry, moving, moving_geometry, modality,
                                           io_steps=0), no_progress)
    assert np.abs(unmasked.field.vectors_ras - result.field.vectors_ras).max() > 1e-3


def test_native_grid_is_the_same_map(small):
    engine, _, _ = small
    fixed, fixed_geometry, moving, moving_geometry = a_pair()
    on_fixed = engine.register(request_for(fixed, fixed_geometry, moving, moving_geometry, io_steps=0),
                               no_progress)
    native = engine.register(request_for(fixed, fixed_geometry, moving, moving_geometry, io_steps=0,
                                         output_grid="native"), no_progress)
    assert native.field.shape == SMALL_SHAPE
    # The native grid covers the fixed image's extent: its corner voxel centres lie inside it.
    fixed_index = np.linalg.inv(fixed_geometry) @ native.field.ijk_to_ras @ [0, 0, 0, 1]
    np.testing.assert_allclose(fixed_index[:3], 0.5 * np.array(fixed.shape[::-1]) / SMALL_SHAPE[0] - 0.5)
    resampled = resample_field(native.field, fixed_geometry, fixed.shape)
    inner = (slice(2, -2),) * 3  # away from the border, where the native grid ends earlier
    np.testing.assert_allclose(resampled.vectors_ras[inner], on_fixed.field.vectors_ras[inner], atol=1e-3)


def test_cached_weights_survive_cancel_and_out_of_memory(small, monkeypatch):
    engine, _, _ = small
    fixed, fixed_geometry, moving, moving_geometry = a_pair()
    before = state_copy(engine.network)
    request = request_for(fixed, fixed_geometry, moving, moving_geometry, io_steps=3)

    class Cancelled(Exception):
        pass

    def cancel_at_step_one(stage, done, total):
        if stage == "instance optimisation" and done == 1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        engine.register(request, cancel_at_step_one)
    assert same_state(engine.network, before)

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with monkeypatch.context() as patch:
        patch.setattr(torch.optim.Adam, "step", out_of_memory)
        with pytest.raises(EngineError, match=r"ran out of CPU memory .*instance optimisation, 3 steps"
                                              r".*Tried to allocate 20.00 GiB.*fewer"):
            engine.register(request, no_progress)
    assert same_state(engine.network, before)
    request.io_steps = 0
    with monkeypatch.context() as patch:
        patch.setattr(gradicon_run, "network_displacement", lambda *a: out_of_memory(None))
        with pytest.raises(EngineError, match=r"ran out of CPU memory on cpu \(forward pass\)"):
            engine.register(request, no_progress)
    with monkeypatch.context() as patch:
        patch.setattr(gradicon_field, "field_from_network", lambda *a: out_of_memory(None))
        with pytest.raises(EngineError, match=r"ran out of CPU memory on cpu \(field conversion\)"):
            engine.register(request, no_progress)
    with monkeypatch.context() as patch:  # the host cannot hold IO: refused before it starts
        patch.setattr(gradicon_run, "available_host_memory", lambda: 1 << 20)
        request.io_steps = 2
        with pytest.raises(EngineError, match=r"instance optimisation \(2 steps\) on the CPU needs about .*io_steps=0"):
            engine.register(request, no_progress)
        request.io_steps = 0
        with pytest.raises(EngineError, match=r"the forward pass on the CPU needs about .*more free memory"):
            engine.register(request, no_progress)
    assert same_state(engine.network, before)
    assert engine.register(request, no_progress).field.shape == fixed.shape  # still serves


def test_bad_requests_fail_clearly(small):
    engine, _, _ = small
    fixed, fixed_geometry, moving, moving_geometry = a_pair()
    nan = fixed.copy()
    nan[3, 4, 5] = np.nan
    cases = [
        (dict(fixed=nan), "NaN or infinite"),
        (dict(fixed=np.full(fixed.shape, 7.0, np.float32)), "no intensity range"),
        (dict(fixed=np.zeros((0, 4, 4), np.float32)), "non-empty 3-D image"),
        (dict(fixed_mask=np.ones((3, 3, 3), bool)), "fixed mask has shape"),
        (dict(moving_mask=np.zeros(moving.shape, bool)), "masked image is empty"),
        (dict(similarity="ssd"), "similarity 'ssd' unknown"),
        (dict(io_steps=-1), "io_steps must be between"),
        (dict(output_grid="moving"), "output_grid must be"),
        (dict(modality="PET"), "modality 'PET' unknown"),
    ]
    for change, message in cases:
        arrays = {"fixed": change.pop("fixed", fixed), "moving": moving}
        with pytest.raises(EngineError, match=message):
            engine.register(request_for(arrays["fixed"], fixed_geometry, arrays["moving"], moving_geometry,
                                        **{"io_steps": 0, **change}), no_progress)
    with pytest.raises(EngineError, match="network_shape must be three"):
        UniGradICONEngine("cpu", {"network_shape": (24, 24)})


def test_missing_weights_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("SLICERFM_CHECKPOINTS", raising=False)
    for cls in (UniGradICONEngine, MultiGradICONEngine):
        engine = cls("cpu", {"weights_dir": str(tmp_path)})
        present, detail = engine.weights_status()
        assert not present and f"weights fetch {cls.name}" in detail
        with pytest.raises(WeightsMissingError, match=f"weights fetch {cls.name}"):
            engine.load()


def test_affine_prealignment_recovers_a_shift(small, monkeypatch):
    # A network that outputs no displacement (the package's zero-initialised last layers):
    # the whole mapping is the affine step. The moving image is the fixed one moved by +shift.
    engine, _, _ = small
    with torch.no_grad():
        engine.network.regis_net.net.lastConv.weight.zero_()
        engine.network.regis_net.net.lastConv.bias.zero_()
    fixed = blob_image((36, 40, 32), (18, 20, 16), 7.0, seed=4)
    fixed_geometry = np.diag([1.5, 1.5, 1.5, 1.0])
    shift = np.array([4.0, -3.0, 2.5])
    moving_geometry = fixed_geometry.copy()
    moving_geometry[:3, 3] += shift
    result = engine.register(request_for(fixed, fixed_geometry, fixed.copy(), moving_geometry, io_steps=0,
                                         affine_prealign=True), no_progress)
    assert "affine" in result.timings_s and result.details["affine_prealign"]
    centre = result.field.vectors_ras[10:26, 10:30, 8:24].reshape(-1, 3)
    np.testing.assert_allclose(np.median(centre, axis=0), shift, atol=0.3)
    warped = warp(fixed, moving_geometry, result.field)
    inside = (slice(6, -6),) * 3
    assert np.corrcoef(warped[inside].ravel(), fixed[inside].ravel())[0, 1] > 0.99
    assert result.neg_jacobian_fraction == 0.0


# --- field conversion pieces (no network) ---------------------------------------------------

def test_slabwise_field_conversion_equals_the_whole_volume_one(monkeypatch):
    fixed, fixed_geometry, moving, moving_geometry = a_pair()
    u = torch.randn(3, 17, 13, 19, generator=torch.Generator().manual_seed(5)) * 2.0
    whole = gradicon_field.field_from_network(u, fixed.shape, fixed_geometry, moving.shape, moving_geometry)
    monkeypatch.setattr(gradicon_field, "SLAB_VOXELS", 3 * fixed.shape[1] * fixed.shape[2])  # 3 planes a slab
    slabs = gradicon_field.field_from_network(u, fixed.shape, fixed_geometry, moving.shape, moving_geometry)
    np.testing.assert_allclose(slabs.vectors_ras, whole.vectors_ras, atol=1e-4)
    # Both are the trilinear map of u: check a few voxels against an explicit interpolation.
    from scipy.ndimage import map_coordinates

    index = random_voxels(fixed.shape, 50, seed=9)
    q = (index + 0.5) * np.array(u.shape[1:]) / np.array(fixed.shape) - 0.5
    inside = np.clip(q, 0, np.array(u.shape[1:]) - 1)  # u is clamped at the border, q is not
    u_at = np.stack([map_coordinates(u[c].numpy().astype(np.float64), inside.T, order=1)
                     for c in range(3)], 1)
    moving_index = (q + u_at + 0.5) * np.array(moving.shape) / np.array(u.shape[1:]) - 0.5
    expected = (moving_geometry @ np.c_[moving_index[:, ::-1], np.ones(50)].T).T[:, :3]
    np.testing.assert_allclose(field_points(whole, index)[1], expected, atol=1e-3)


