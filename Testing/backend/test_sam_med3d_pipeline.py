"""SAM-Med3D engine geometry, prompts and caches, with a stand-in network.

The stand-in replaces only the network (``encode`` / ``decode``); crops, resampling, clicks,
logit feedback, extension crops and paste-back run through the engine's real code. Expected
masks are computed independently from SimpleITK's physical points of the image grid.
"""

import numpy as np
import pytest
import SimpleITK as sitk

from slicerfm_backend.engines.base import Prompt
from slicerfm_backend.engines.sam_med3d.engine import SamMed3DEngine
from slicerfm_backend.engine_core.lru import ByteLRU
from slicerfm_backend.engines.sam_med3d.pipeline import Crop, extract, to_sitk
from slicerfm_backend.evaluation.inprocess import InProcessSession

pytestmark = pytest.mark.torch  # the pipeline upsamples and resamples with torch

LPS = np.array([-1.0, -1.0, 1.0])
CUBE = 2  # the cube stand-in marks low-res blocks within 2 blocks of a positive click


class CubeNet:
    """Stand-in network: positive logits on the low-res blocks (4³ crop voxels each) within
    CUBE blocks (Chebyshev) of each positive click, negative elsewhere; records its calls."""

    def __init__(self):
        self.encoded = []
        self.decoded = []

    def encode(self, image):
        self.encoded.append(image)
        return np.zeros((1, 4, 2, 2, 2), np.float32)

    def decode(self, embedding, points, labels, logits):
        self.decoded.append((points.copy(), labels.copy(), None if logits is None else logits.copy()))
        out = np.full((32, 32, 32), -10.0, np.float32)
        for p, label in zip(points, labels):
            if label == 1:
                b = (np.asarray(p) // 4).astype(int)
                lo, hi = np.maximum(b - CUBE, 0), np.minimum(b + CUBE + 1, 32)
                out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = 10.0
        return out


class BrightNet:
    """Stand-in network: the object is wherever the z-normalised crop is above 0 (the crop,
    average-pooled to 32³, is the 'embedding' and the logits)."""

    def __init__(self):
        self.encoded = 0

    def encode(self, image):
        self.encoded += 1
        return image.reshape(32, 4, 32, 4, 32, 4).mean(axis=(1, 3, 5)).astype(np.float32)

    def decode(self, embedding, points, labels, logits):
        return 10.0 * embedding


def grid(shape_kji, spacing_kji, direction_lps=np.eye(3), origin_lps=(0.0, 0.0, 0.0)):
    """A SimpleITK image of ``shape_kji`` with the given LPS geometry, and its ijk_to_ras."""
    ref = sitk.Image([int(n) for n in reversed(shape_kji)], sitk.sitkUInt8)
    spacing_ijk = np.array(list(reversed(spacing_kji)), float)
    ref.SetSpacing(spacing_ijk.tolist())
    ref.SetDirection(np.asarray(direction_lps, float).ravel().tolist())
    ref.SetOrigin([float(v) for v in origin_lps])
    m = np.eye(4)
    m[:3, :3] = (LPS[:, None] * np.asarray(direction_lps, float)) * spacing_ijk
    m[:3, 3] = LPS * np.asarray(origin_lps, float)
    return ref, m


def ras_of(ref, kji):
    return LPS * np.array(ref.TransformContinuousIndexToPhysicalPoint([float(v) for v in reversed(kji)]))


def cube_profile():
    """The stand-in cube (low-res blocks 16 +- CUBE) upsampled to 128 along one axis,
    linearly with align_corners=False: source position (u + 0.5) / 4 - 0.5, clamped."""
    blocks = ((np.arange(32) >= 16 - CUBE) & (np.arange(32) <= 16 + CUBE)).astype(float)
    source = np.clip((np.arange(128) + 0.5) / 4 - 0.5, 0, 31)
    return np.interp(source, np.arange(32), blocks)


def expected_cube(ref, shape, click_kji):
    """Image voxels whose nearest voxel of the crop made for ``click_kji`` is foreground:
    the stand-in's logits are +-10 on a separable cube, so their trilinear upsampling is
    positive where the product of the three 1-D profiles exceeds 0.5."""
    origin = ras_of(ref, click_kji) - 64 * 1.5
    profile = cube_profile()
    out = np.zeros(shape, bool)
    for kji in np.ndindex(*shape):
        index = np.floor((ras_of(ref, kji) - origin) / 1.5 + 0.5).astype(int)
        if np.all((index >= 0) & (index < 128)):
            out[kji] = np.prod(profile[index]) > 0.5
    return out


def session(net, array, m, **options):
    engine = SamMed3DEngine("cpu", options)
    engine.network = net
    s = InProcessSession(engine, array, (1.0, 1.0, 1.0), "CT")
    s.image.ijk_to_ras = m
    return s


def full_mask(s):
    return s.mask.region(((0, 0, 0), s.image.array.shape))


def rotation(axis, degrees):
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    a, b = [n for n in range(3) if n != axis]
    r = np.eye(3)
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r


@pytest.mark.parametrize("direction,click", [
    (np.eye(3), (10, 30, 25)),
    (rotation(2, 25) @ rotation(0, 10), (12, 27, 31)),
], ids=["anisotropic", "oblique"])
def test_a_click_is_pasted_back_where_the_physical_geometry_says(direction, click):
    shape, spacing = (24, 60, 56), (3.0, 0.8, 0.7)
    ref, m = grid(shape, spacing, direction, (12.0, -30.0, 40.0))
    s = session(CubeNet(), np.full(shape, 100, np.int16), m)
    s.prompt(Prompt(kind="point", positive=True, point_kji=tuple(float(v) for v in click)))
    want = expected_cube(ref, shape, click)
    assert want.sum() > 500
    np.testing.assert_array_equal(full_mask(s), want)


def test_a_crop_at_the_image_border_is_clipped_to_the_image_and_padded_with_zero():
    shape, spacing = (20, 30, 30), (2.0, 1.0, 1.0)
    ref, m = grid(shape, spacing)
    net = CubeNet()
    s = session(net, np.full(shape, 100, np.int16), m)
    result = s.prompt(Prompt(kind="point", point_kji=(1.0, 2.0, 1.0)))
    np.testing.assert_array_equal(full_mask(s), expected_cube(ref, shape, (1, 2, 1)))
    assert result.bbox[0] == (0, 0, 0)
    crop = net.encoded[0]
    # The image (all 100) covers only part of the crop; the rest is padding (0), and after
    # z-normalisation over voxels > 0 the image part is 0 and the padding is below it.
    assert crop.max() == pytest.approx(0.0, abs=1e-4) and crop.min() < -1.0
    assert crop[64, 64, 64] == pytest.approx(0.0, abs=1e-4) and crop[0, 0, 0] < -1.0


def test_the_crop_is_resampled_in_ras_orientation_at_one_and_a_half_millimetres():
    shape = (30, 40, 50)
    ref, m = grid(shape, (2.0, 1.2, 0.9), rotation(1, 15), (5.0, 3.0, -7.0))
    coords = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    ras = coords[..., ::-1] @ m[:3, :3].T + m[:3, 3]
    weights = np.array([1.0, 2.0, 3.0])
    array = (ras @ weights + 1000.0).astype(np.float32)  # linear in RAS: interpolation is exact
    from slicerfm_backend.engines.base import ImageData

    image = ImageData("x", array, (2.0, 1.2, 0.9), m, "CT")
    centre = ras_of(ref, (15, 20, 25))
    crop = Crop.around(centre)
    values = extract(to_sitk(image), crop)
    for index in [(64, 64, 64), (60, 70, 66), (70, 58, 62)]:
        expected = crop.index_to_ras(np.array(index)) @ weights + 1000.0
        assert values[index] == pytest.approx(expected, abs=1e-2)
    assert values[0, 0, 0] == 0.0  # outside the image


def test_a_second_click_in_the_same_crop_reuses_the_embedding_and_feeds_back_the_logits():
    shape = (30, 50, 50)
    _, m = grid(shape, (2.0, 1.0, 1.0))
    net = CubeNet()
    s = session(net, np.full(shape, 100, np.int16), m)
    s.prompt(Prompt(kind="point", point_kji=(15.0, 25.0, 25.0)))
    s.prompt(Prompt(kind="point", positive=False, point_kji=(15.0, 25.0, 35.0)))
    store = s.cache["sam_med3d"]
    assert (store.embeddings.misses, store.embeddings.hits) == (1, 1)
    assert len(net.encoded) == 1
    (p1, l1, prev1), (p2, l2, prev2) = net.decoded
    assert prev1 is None and len(p1) == 1
    assert list(l2) == [1, 0] and np.array_equal(p2[0], p1[0])
    first = net.decode(None, p1, l1, None)
    np.testing.assert_array_equal(prev2, first)
    s.prompt(Prompt(kind="point", point_kji=(0.0, 0.0, 0.0)))  # ~45 mm away: same crop
    assert (store.embeddings.misses, store.embeddings.hits) == (1, 2) and len(net.encoded) == 1


def test_a_positive_click_outside_the_crop_opens_a_new_crop():
    shape = (40, 60, 200)
    _, m = grid(shape, (2.0, 1.0, 1.5))
    net = CubeNet()
    s = session(net, np.full(shape, 100, np.int16), m)
    s.prompt(Prompt(kind="point", point_kji=(20.0, 30.0, 20.0)))
    s.prompt(Prompt(kind="point", point_kji=(20.0, 30.0, 180.0)))  # 240 mm away
    assert s.cache["sam_med3d"].embeddings.misses == 2
    mask = full_mask(s)
    assert mask[20, 30, 20] and mask[20, 30, 180] and not mask[20, 30, 100]


def test_an_object_longer_than_one_crop_is_followed_by_further_crops():
    shape, spacing = (150, 40, 40), (2.0, 1.5, 1.5)  # 300 mm along S
    ref, m = grid(shape, spacing)
    array = np.full(shape, 100, np.int16)
    array[10:140, 12:28, 12:28] = 300  # a bar 260 mm long, 24 mm thick
    net = BrightNet()
    s = session(net, array, m)
    s.prompt(Prompt(kind="point", point_kji=(75.0, 20.0, 20.0)))
    mask = full_mask(s)
    bar = array == 300
    assert 2 <= net.encoded <= 8
    assert (mask & bar).sum() / bar.sum() > 0.95
    near = np.zeros(shape, bool)  # the bar grown by 6 mm, the stand-in's 4-voxel pooling
    near[7:143, 8:32, 8:32] = True
    assert not (mask & ~near).any()


def test_the_number_of_crops_is_bounded():
    shape, spacing = (150, 40, 40), (2.0, 1.5, 1.5)
    _, m = grid(shape, spacing)
    array = np.full(shape, 100, np.int16)
    array[10:140, 12:28, 12:28] = 300
    net = BrightNet()
    s = session(net, array, m, max_crops=1)
    s.prompt(Prompt(kind="point", point_kji=(75.0, 20.0, 20.0)))
    assert net.encoded == 1
    assert full_mask(s)[:, 20, 20].sum() < 0.9 * 130


def test_a_box_centres_the_crop_and_bounds_the_result():
    shape = (30, 50, 50)
    ref, m = grid(shape, (2.0, 1.0, 1.0))
    net = CubeNet()
    s = session(net, np.full(shape, 100, np.int16), m)
    s.prompt(Prompt(kind="box", box_kji=((12.0, 20.0, 22.0), (18.0, 30.0, 28.0))))
    points, labels, _ = net.decoded[0]
    np.testing.assert_array_equal(points, [[64.0, 64.0, 64.0]])
    assert list(labels) == [1]
    mask = full_mask(s)
    inside = np.zeros(shape, bool)
    inside[12:19, 20:31, 22:29] = True
    assert mask[15, 25, 25] and not (mask & ~inside).any()


def test_undo_replays_the_remaining_clicks_from_the_cached_state():
    shape = (30, 50, 50)
    _, m = grid(shape, (2.0, 1.0, 1.0))
    net = CubeNet()
    s = session(net, np.full(shape, 100, np.int16), m)
    a = Prompt(kind="point", point_kji=(15.0, 25.0, 25.0))
    b = Prompt(kind="point", positive=False, point_kji=(15.0, 25.0, 30.0))
    first = s.prompt(a)
    s.prompt(b)
    s.reset()
    again = s.prompt(a)  # the state after [a] is cached: no decoder pass
    assert len(net.decoded) == 2
    np.testing.assert_array_equal(again.mask, first.mask)


def test_the_embedding_cache_drops_the_least_recently_used_beyond_its_byte_cap():
    cache = ByteLRU(max_bytes=3000)
    calls = []
    for key in ["a", "b", "a", "c"]:
        cache.get_or_compute(key, lambda key=key: calls.append(key) or np.zeros(1000, np.uint8))
    assert calls == ["a", "b", "c"] and (cache.hits, cache.misses) == (1, 3)
    cache.get_or_compute("d", lambda: np.zeros(1000, np.uint8))
    assert "b" not in cache and "a" in cache and cache.bytes == 3000


def test_the_fast_paste_for_axis_aligned_images_equals_the_general_one(monkeypatch):
    """Flipped and permuted axes, anisotropic spacing, two overlapping crops: the separable
    paste (per-axis index tables) gives the same voxels as the general per-voxel paste."""
    from slicerfm_backend.engines.sam_med3d import pipeline
    from slicerfm_backend.engines.base import ImageData

    m = np.zeros((4, 4))
    m[:3, :3] = [[0.0, -0.9, 0.0], [0.0, 0.0, 1.7], [-3.1, 0.0, 0.0]]  # i -> -S, j -> -R, k -> +A
    m[:3, 3] = [40.0, -20.0, 100.0]
    m[3, 3] = 1.0
    image = ImageData(image_id="t", array=np.zeros((70, 150, 160), np.int16),
                      spacing_kji=(1.7, 0.9, 3.1), ijk_to_ras=m, modality="CT")
    rng = np.random.default_rng(3)
    centre = pipeline.kji_to_ras(image, np.array([35, 75, 80]))[0]
    crops = [pipeline.Crop.around(centre), pipeline.Crop.around(centre + [30.0, -20.0, 15.0])]
    masks = [rng.random((128, 128, 128)) > 0.5 for _ in crops]
    assert all(pipeline._axis_map(c, m) is not None for c in crops)
    fast = pipeline.paste(image, crops, masks)
    monkeypatch.setattr(pipeline, "_axis_map", lambda crop, matrix: None)
    general = pipeline.paste(image, crops, masks)
    assert fast[0] == general[0]
    np.testing.assert_array_equal(fast[2], general[2])
    np.testing.assert_array_equal(fast[1], general[1])
    assert fast[2].any() and not fast[2].all()


def test_a_refinement_click_repastes_only_its_crop_and_its_neighbours_with_the_same_result():
    shape, spacing = (150, 40, 40), (2.0, 1.5, 1.5)  # 300 mm along S
    ref, m = grid(shape, spacing)
    array = np.full(shape, 100, np.int16)
    array[10:140, 12:28, 12:28] = 300
    first = Prompt(kind="point", point_kji=(75.0, 20.0, 20.0))
    refine = Prompt(kind="point", point_kji=(130.0, 20.0, 20.0))  # in the top crop only
    s = session(BrightNet(), array, m)
    s.prompt(first)
    all_crops = s.results[-1].bbox
    s.prompt(refine)
    part = s.results[-1].bbox
    assert part[0][0] > all_crops[0][0], "the bottom crop was pasted again"
    replay = session(BrightNet(), array, m)  # a fresh engine pastes every crop
    replay.prompts = [first]
    replay.prompt(refine)
    np.testing.assert_array_equal(full_mask(s), full_mask(replay))


def test_a_refinement_click_upsamples_no_whole_crop_and_equals_a_full_replay(monkeypatch):
    """The whole 128³ mask of a crop is built only to seed an extension crop: a refinement
    inside the existing crops pastes through index tables alone; the answer equals a replay."""
    from slicerfm_backend.engines.sam_med3d import logits

    shape, spacing = (150, 40, 40), (2.0, 1.5, 1.5)
    _, m = grid(shape, spacing)
    array = np.full(shape, 100, np.int16)
    array[10:140, 12:28, 12:28] = 300
    real_upsample = logits.upsample
    calls = []
    monkeypatch.setattr(logits, "upsample", lambda values: calls.append(1) or real_upsample(values))
    first = Prompt(kind="point", point_kji=(75.0, 20.0, 20.0))
    refine = Prompt(kind="point", point_kji=(130.0, 20.0, 20.0))  # in the top crop only
    net = BrightNet()
    s = session(net, array, m)
    s.prompt(first)
    assert net.encoded >= 2 and 1 <= len(calls) < net.encoded, "whole masks only to seed extension crops"
    before = len(calls)
    s.prompt(refine)
    assert len(calls) == before, "the refinement upsampled a whole crop"
    replay = session(BrightNet(), array, m)
    replay.prompts = [first]
    replay.prompt(refine)
    np.testing.assert_array_equal(full_mask(s), full_mask(replay))
