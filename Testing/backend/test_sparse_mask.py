"""SparseMask: a segment stored as its bounding block must behave like a dense volume."""

import numpy as np

from slicerfm_backend.sparse_mask import SparseMask


def test_random_edits_match_a_dense_volume_and_storage_stays_bounded():
    rng = np.random.default_rng(3)
    shape = (30, 40, 50)
    dense = np.zeros(shape, bool)
    sparse = SparseMask(shape)
    for _ in range(200):
        start = rng.integers(-5, [30, 40, 50])
        size = rng.integers(1, 12, 3)
        box = (tuple(int(v) for v in start), tuple(int(v) for v in start + size))
        values = rng.random(tuple(size)) < (0.7 if rng.random() < 0.6 else 0.0)
        sparse.set_region(box, values)
        lo = np.maximum(start, 0)
        hi = np.minimum(start + size, shape)
        if (hi > lo).all():
            dense[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = values[
                lo[0] - start[0]:hi[0] - start[0], lo[1] - start[1]:hi[1] - start[1], lo[2] - start[2]:hi[2] - start[2]]
        probe = ((int(rng.integers(-3, 25)), int(rng.integers(-3, 35)), int(rng.integers(-3, 45))),)
        probe = (probe[0], tuple(p + 8 for p in probe[0]))
        expected = np.zeros((8, 8, 8), bool)
        plo, phi = np.maximum(probe[0], 0), np.minimum(probe[1], shape)
        if (phi > plo).all():
            expected[tuple(slice(a - p, b - p) for a, b, p in zip(plo, phi, probe[0]))] = \
                dense[tuple(slice(a, b) for a, b in zip(plo, phi))]
        np.testing.assert_array_equal(sparse.region(probe), expected)
    np.testing.assert_array_equal(sparse.to_dense(), dense)
    assert sparse.count() == dense.sum()
    sparse.compact()
    np.testing.assert_array_equal(sparse.to_dense(), dense)


def test_an_empty_mask_stores_nothing_and_has_no_box():
    sparse = SparseMask((100, 100, 100))
    sparse.set_region(((0, 0, 0), (100, 100, 100)), np.zeros((100, 100, 100), bool))
    assert sparse.bbox() is None and sparse.nbytes == 0


def test_a_small_object_in_a_large_volume_costs_only_its_block():
    sparse = SparseMask((300, 512, 512))
    sparse.set_region(((100, 200, 200), (110, 220, 230)), np.ones((10, 20, 30), bool))
    assert sparse.nbytes == 10 * 20 * 30
    assert sparse.bbox() == ((100, 200, 200), (110, 220, 230))
