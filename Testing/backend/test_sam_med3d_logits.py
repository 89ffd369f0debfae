"""SAM-Med3D logits to masks without the whole 128³ upsampling: the boundary planes give the
touched faces, per-axis index tables give the pasted voxels; both agree with upsampling
everything (torch's trilinear interpolation) and pasting by the general per-voxel rule."""

import numpy as np
import pytest
import torch

from slicerfm_backend.engines.base import ImageData
from slicerfm_backend.engines.sam_med3d import logits, pipeline


def a_logits(seed, offset=0.0):
    """Smooth random logits (32³) whose signs change inside the crop."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(5, 5, 5)).astype(np.float32)
    smooth = torch.nn.functional.interpolate(torch.from_numpy(coarse)[None, None], size=(32,) * 3,
                                             mode="trilinear", align_corners=True)[0, 0]
    return (smooth + offset).numpy()


def faces_of(mask):
    """Faces of a 128³ boolean mask holding any voxel, as (axis, direction)."""
    return [(axis, direction) for axis in range(3) for direction, index in ((-1, 0), (1, 127))
            if np.take(mask, index, axis=axis).any()]


@pytest.mark.parametrize("seed", range(6))
def test_the_touched_faces_come_from_the_boundary_planes(seed):
    values = a_logits(seed, offset=0.8 if seed % 2 else -0.8)
    assert logits.border_faces(values) == faces_of(logits.upsample(values))


def test_upsampling_at_index_tables_equals_indexing_the_whole_upsampled_mask():
    values = a_logits(1)
    whole = logits.upsample(values)
    rng = np.random.default_rng(2)
    tables = [np.sort(rng.integers(0, 128, n)) for n in (40, 77, 128)]
    got = logits.upsample_at(values, tables)
    np.testing.assert_array_equal(got, whole[np.ix_(*tables)])


def an_image(matrix, shape=(70, 150, 160)):
    return ImageData(image_id="t", array=np.zeros(shape, np.int16), spacing_kji=(1.0, 1.0, 1.0),
                     ijk_to_ras=matrix, modality="CT")


def flipped_permuted():
    m = np.eye(4)
    m[:3, :3] = [[0.0, -0.9, 0.0], [0.0, 0.0, 1.7], [-3.1, 0.0, 0.0]]  # i -> -S, j -> -R, k -> +A
    m[:3, 3] = [40.0, -20.0, 100.0]
    return m


@pytest.mark.parametrize("matrix", [np.diag([0.7, 0.8, 3.0, 1.0]), flipped_permuted()], ids=["fine", "permuted"])
def test_the_index_table_paste_equals_the_general_paste_of_the_whole_masks(matrix):
    image = an_image(matrix)
    centre = pipeline.kji_to_ras(image, np.array([35, 75, 80]))[0]
    crops = [pipeline.Crop.around(centre), pipeline.Crop.around(centre + [30.0, -20.0, 15.0])]
    values = [a_logits(3), a_logits(4, 0.3)]
    fast = logits.paste(image, crops, values)
    general = pipeline.paste(image, crops, [logits.upsample(v) for v in values])
    assert fast[0] == general[0]
    np.testing.assert_array_equal(fast[2], general[2])
    np.testing.assert_array_equal(fast[1], general[1])
    assert fast[1].any() and not fast[1].all()


def test_logits_on_the_torch_side_paste_like_numpy_logits():
    image = an_image(np.diag([1.2, 1.2, 2.5, 1.0]), (40, 90, 90))
    crop = pipeline.Crop.around(pipeline.kji_to_ras(image, np.array([20, 45, 45]))[0])
    values = a_logits(5)
    from_numpy = logits.paste(image, [crop], [values])
    from_tensor = logits.paste(image, [crop], [torch.from_numpy(values)])
    np.testing.assert_array_equal(from_numpy[1], from_tensor[1])
    assert isinstance(from_tensor[1], np.ndarray) and from_tensor[1].dtype == bool


def test_the_accelerator_path_pastes_like_the_cpu_path(monkeypatch):
    """The torch operations used for logits on a GPU, run here on CPU tensors."""
    image = an_image(flipped_permuted())
    centre = pipeline.kji_to_ras(image, np.array([35, 75, 80]))[0]
    crops = [pipeline.Crop.around(centre), pipeline.Crop.around(centre + [30.0, -20.0, 15.0])]
    values = [a_logits(3), a_logits(4, 0.3)]
    on_cpu = logits.paste(image, crops, values)
    real_init = logits._Ops.__init__

    def as_accelerator(self, first):
        real_init(self, first)
        self.torch, self.device = True, torch.device("cpu")

    monkeypatch.setattr(logits._Ops, "__init__", as_accelerator)
    on_device = logits.paste(image, crops, [torch.from_numpy(v) for v in values])
    assert on_device[0] == on_cpu[0]
    np.testing.assert_array_equal(on_device[1], on_cpu[1])
    np.testing.assert_array_equal(on_device[2], on_cpu[2])
    assert logits.border_faces(torch.from_numpy(values[1])) == logits.border_faces(values[1])
