"""The classic registration engine on synthetic pairs: convention, masks, cancel, errors."""

import numpy as np
import pytest

from registration_helpers import CENTRE, IJK_TO_RAS, SHAPE, blob, box_mask, two_blobs, voxel_of
from slicerfm_backend.errors import EngineError
from slicerfm_backend.registration.base import DisplacementField, RegistrationImage, RegistrationRequest
from slicerfm_backend.registration.classic.engine import (ClassicRegistrationEngine, affine_to_ras, compose_affine,
                                                   demons_levels)
from slicerfm_backend.registration.field import jacobian_determinant, warp
from slicerfm_backend.registration.registry import REGISTRATION, REGISTRATION_ENGINE_CLASSES

SHIFT = np.array([3.0, -2.0, 2.0])  # RAS mm: where the blob went in the moving image


def quiet(stage, done=0, total=0):
    pass


def run(fixed, moving, fixed_mask=None, moving_mask=None, progress=quiet, **options):
    request = RegistrationRequest(RegistrationImage(fixed, IJK_TO_RAS, "other", fixed_mask),
                                  RegistrationImage(moving, IJK_TO_RAS, "other", moving_mask), **options)
    return ClassicRegistrationEngine().register(request, progress)


@pytest.mark.parametrize("options", [{}, {"affine_prealign": True}, {"affine_prealign": True, "io_steps": 0}],
                         ids=["demons", "affine+demons", "affine-only"])
def test_a_shifted_blob_gives_the_fixed_to_moving_shift_in_ras(options):
    result = run(blob(CENTRE), blob(CENTRE + SHIFT), **options)
    field = result.field
    assert field.vectors_ras.shape == SHAPE + (3,) and field.vectors_ras.dtype == np.float32
    np.testing.assert_allclose(field.ijk_to_ras, IJK_TO_RAS)
    np.testing.assert_allclose(field.vectors_ras[voxel_of(CENTRE)], SHIFT, atol=0.4)
    assert result.neg_jacobian_fraction == 0.0
    assert result.timings_s["total"] > 0 and result.details["engine"] == "classic"


def test_the_warped_moving_image_lands_on_the_fixed_one():
    fixed, moving = blob(CENTRE), blob(CENTRE + SHIFT)
    field = run(fixed, moving).field
    warped = warp(moving, IJK_TO_RAS, field)
    before = np.abs(moving - fixed).mean()
    assert np.abs(warped - fixed).mean() < 0.2 * before


def test_the_affine_is_reported_in_ras_and_composes_with_the_grid():
    result = run(blob(CENTRE), blob(CENTRE + SHIFT), affine_prealign=True, io_steps=0)
    matrix = np.asarray(result.details["affine_ras"])
    np.testing.assert_allclose(matrix[:3, :3] @ CENTRE + matrix[:3, 3], CENTRE + SHIFT, atol=0.4)


def test_affine_to_ras_and_compose_agree_with_simpleitk_on_a_known_transform():
    import SimpleITK as sitk

    transform = sitk.AffineTransform(3)
    transform.SetMatrix([1.1, 0.05, 0.0, -0.02, 0.95, 0.1, 0.0, 0.03, 1.0])
    transform.SetCenter([4.0, -3.0, 2.0])
    transform.SetTranslation([1.0, 2.0, -3.0])
    matrix = affine_to_ras(transform)
    point_ras = np.array([10.0, -20.0, 5.0])
    moved_lps = np.array(transform.TransformPoint(tuple(point_ras * [-1, -1, 1])))
    np.testing.assert_allclose(matrix[:3, :3] @ point_ras + matrix[:3, 3], moved_lps * [-1, -1, 1], atol=1e-9)
    vectors = compose_affine(np.zeros(SHAPE + (3,), np.float32), IJK_TO_RAS, matrix)
    k, j, i = 5, 7, 9
    x = (IJK_TO_RAS @ [i, j, k, 1])[:3]
    np.testing.assert_allclose(vectors[k, j, i], matrix[:3, :3] @ x + matrix[:3, 3] - x, atol=1e-4)


def test_masks_limit_the_similarity_to_one_of_two_structures_moving_apart():
    fixed, moving, centre_a, centre_b = two_blobs([3.0, 0, 0], [-3.0, 0, 0])
    free = run(fixed, moving).field.vectors_ras
    assert free[voxel_of(centre_a)][0] > 1.5 and free[voxel_of(centre_b)][0] < -1.5
    mask_a = box_mask(centre_a, 9.0)
    only_a = run(fixed, moving, mask_a, mask_a).field.vectors_ras
    assert only_a[voxel_of(centre_a)][0] == pytest.approx(3.0, abs=0.4)
    assert only_a[voxel_of(centre_b)][0] > 0  # B no longer pulls its way
    mask_b = box_mask(centre_b, 9.0)
    only_b = run(fixed, moving, mask_b, mask_b).field.vectors_ras
    assert only_b[voxel_of(centre_b)][0] == pytest.approx(-3.0, abs=0.4)
    assert only_b[voxel_of(centre_a)][0] < 0


def test_masks_limit_the_affine_metric():
    fixed, moving, centre_a, centre_b = two_blobs([3.0, 0, 0], [-3.0, 0, 0])
    mask_a, mask_b = box_mask(centre_a, 9.0), box_mask(centre_b, 9.0)
    towards_a = run(fixed, moving, mask_a, mask_a, affine_prealign=True, io_steps=0).field.vectors_ras
    towards_b = run(fixed, moving, mask_b, mask_b, affine_prealign=True, io_steps=0).field.vectors_ras
    assert towards_a[voxel_of(centre_a)][0] > 2.0
    assert towards_b[voxel_of(centre_b)][0] < -2.0


def test_folding_is_measured_inside_the_fixed_mask_only():
    result = run(blob(CENTRE), blob(CENTRE + SHIFT), box_mask(CENTRE, 6.0), None)
    assert result.neg_jacobian_fraction == 0.0


class Cancelled(Exception):
    pass


def test_progress_reports_iterations_and_an_exception_from_it_stops_the_run():
    seen = []

    def progress(stage, done=0, total=0):
        seen.append((stage, done, total))
        if stage == "demons" and done == 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        run(blob(CENTRE), blob(CENTRE + SHIFT), progress=progress)
    demons = [s for s in seen if s[0] == "demons"]
    assert [d for _, d, _ in demons] == [0, 1, 2, 3]
    assert demons[0][2] == sum(level.iterations for level in demons_levels(
        ClassicRegistrationEngine.capabilities.default_io_steps))


def test_an_exception_from_progress_during_the_affine_stops_it():
    def progress(stage, done=0, total=0):
        if stage == "affine" and done == 2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        run(blob(CENTRE), blob(CENTRE + SHIFT), progress=progress, affine_prealign=True)


@pytest.mark.parametrize("change, message", [
    (dict(io_steps=-1), "io_steps"),
    (dict(io_steps=2.5), "io_steps"),
    (dict(similarity="mind"), "similarity"),
    (dict(output_grid="moving"), "output_grid"),
    (dict(io_steps=0), "nothing to do"),
])
def test_bad_options_are_refused_with_a_clear_message(change, message):
    with pytest.raises(EngineError, match=message):
        run(blob(CENTRE), blob(CENTRE + SHIFT), **change)


def test_bad_masks_and_constant_images_are_refused():
    fixed, moving = blob(CENTRE), blob(CENTRE + SHIFT)
    with pytest.raises(EngineError, match="mask has shape"):
        run(fixed, moving, np.ones((3, 3, 3), bool))
    with pytest.raises(EngineError, match="mask is empty"):
        run(fixed, moving, None, np.zeros(SHAPE, bool))
    with pytest.raises(EngineError, match="constant"):
        run(np.full(SHAPE, 7.0, np.float32), moving)


def test_the_registry_knows_the_engines_and_serving_classic_does_not_import_gradicon():
    import subprocess
    import sys

    assert set(REGISTRATION_ENGINE_CLASSES) == {"classic", "unigradicon", "multigradicon"}
    assert REGISTRATION.engine_class("classic") is ClassicRegistrationEngine
    with pytest.raises(ValueError, match="unknown registration engine"):
        REGISTRATION.engine_class("nope")
    script = ("import sys; from slicerfm_backend.app import make_app; "
              "state = make_app().state.slicerfm; state.registration.describe(); "
              "state.registration.get('classic'); "
              "print('slicerfm_backend.registration.gradicon' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unfold_smooths_only_around_folds_and_keeps_the_determinant_up_to_date():
    from slicerfm_backend.registration.classic.unfold import unfold

    ijk_to_ras = np.diag([1.0, 1.0, 1.0, 1.0])
    k, j, i = np.indices((30, 30, 30), dtype=np.float32)
    vectors = np.zeros((30, 30, 30, 3), np.float32)
    bump = np.exp(-((i - 10) ** 2 + (j - 15) ** 2 + (k - 15) ** 2) / (2 * 1.2 ** 2))
    vectors[..., 0] = -4.0 * (i - 10) * bump  # pulls hard towards i = 10: folds around it
    vectors[..., 1] = 0.5 * np.sin(k / 4.0)  # a smooth, fold-free motion elsewhere
    original = vectors.copy()
    det = jacobian_determinant(DisplacementField(vectors, ijk_to_ras))
    assert (det <= 0).sum() > 0
    info = unfold(vectors, ijk_to_ras, det)
    assert info["folded_before"] == int((jacobian_determinant(DisplacementField(original, ijk_to_ras)) <= 0).sum())
    assert info["folded_after"] == 0 and info["voxels_smoothed"] > 0
    np.testing.assert_allclose(det, jacobian_determinant(DisplacementField(vectors, ijk_to_ras)), atol=1e-5)
    np.testing.assert_array_equal(vectors[:, :, 20:], original[:, :, 20:])  # far from the fold
