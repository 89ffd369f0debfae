"""Every codec returns exactly the bytes it was given: property tests over dtypes, values,
shapes and chunk sizes, with the slice-delta transform checked on its own as well."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from slicerfm_client import slice_delta, wire

DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64"]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def any_bit_patterns(draw, max_dims=4, max_side=9):
    """An array of a random dtype and shape whose items are arbitrary bit patterns: for floats
    that includes NaNs with payloads, both infinities, signed zeros and subnormals."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=0, max_side=max_side))
    bits = draw(hnp.arrays(np.dtype(f"u{dtype.itemsize}"), shape))
    return bits.view(dtype)


@st.composite
def chunk_bytes_for(draw, array):
    """A chunk size in bytes, any multiple of the item size, from one item to past the array."""
    items = draw(st.integers(min_value=1, max_value=max(1, array.size) + 3))
    return items * array.dtype.itemsize


def _round_trip_bytes(array, codec, chunk_bytes):
    header, decoded = wire.decode(wire.encode(array, {"k": 1}, codec=codec, chunk_bytes=chunk_bytes))
    assert header.codec == codec and header.format == wire.CODEC_FORMAT[codec]
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    return decoded.tobytes()


@PROPERTY
@given(data=st.data(), codec=st.sampled_from(sorted(wire.CODEC_FORMAT)))
def test_every_codec_returns_the_exact_bytes_of_any_array(data, codec):
    array = data.draw(any_bit_patterns())
    chunk_bytes = data.draw(chunk_bytes_for(array))
    assert _round_trip_bytes(array, codec, chunk_bytes) == array.tobytes()


@PROPERTY
@given(data=st.data())
def test_the_best_codec_of_each_dtype_returns_the_exact_bytes(data):
    array = data.draw(any_bit_patterns(max_dims=3, max_side=12))
    codec = wire.best_codec(array.dtype)
    assert _round_trip_bytes(array, codec, data.draw(chunk_bytes_for(array))) == array.tobytes()


@PROPERTY
@given(data=st.data())
def test_a_slice_delta_message_decodes_the_same_fed_in_arbitrary_pieces(data):
    array = data.draw(any_bit_patterns(max_dims=3))
    message = wire.encode(array, codec=wire.CODEC_SLICE_DELTA, chunk_bytes=data.draw(chunk_bytes_for(array)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(message)), max_size=8)))
    decoder = wire.MessageDecoder()
    for begin, end in zip([0] + cuts, cuts + [len(message)]):
        decoder.feed(message[begin:end])
    assert decoder.finish()[1].tobytes() == array.tobytes()


@PROPERTY
@given(data=st.data())
def test_the_slice_delta_transform_inverts_on_any_range_split(data):
    array = data.draw(any_bit_patterns(max_dims=3, max_side=12))
    items = slice_delta.unsigned_view(array.reshape(-1))
    stride = data.draw(st.sampled_from([1, 2, 3, slice_delta.slice_stride(array.shape), max(1, items.size)]))
    cuts = sorted(set(data.draw(st.lists(st.integers(0, items.size), max_size=6))) | {0, items.size})
    restored = np.zeros_like(items)
    scratch = np.empty(max(1, items.size), items.dtype)
    for start, stop in zip(cuts, cuts[1:]):
        restored[start:stop] = slice_delta.encode_range(items, start, stop, stride, scratch)
        slice_delta.decode_range_in_place(restored, start, stop, stride)
    assert restored.tobytes() == items.tobytes()


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"])
def test_slices_that_jump_between_the_extremes_of_the_type_round_trip(dtype):
    info = np.iinfo(dtype)
    array = np.empty((6, 5, 7), dtype)
    array[0::2] = info.min
    array[1::2] = info.max
    array[3, 2, 1] = info.min + 1
    array[4, 0, 0] = 0
    for chunk_bytes in (array.itemsize, 3 * array.itemsize, 35 * array.itemsize, 1 << 20):
        assert _round_trip_bytes(array, wire.CODEC_SLICE_DELTA, chunk_bytes) == array.tobytes()


# (unsigned view, exponent bits all set = infinity, sign bit)
FLOAT_BITS = {"float32": (np.uint32, 0x7F800000, 1 << 31), "float64": (np.uint64, 0x7FF0000000000000, 1 << 63)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_payloads_signed_zeros_and_infinities_survive_every_codec(dtype):
    uint, infinity, sign = FLOAT_BITS[dtype]
    patterns = np.array([infinity | 1, infinity | 0x1234, sign | infinity | 0x7, infinity, sign | infinity,
                         sign, 0, 1, sign | 1], uint)  # NaNs with payloads, +-inf, -0, +0, subnormals
    array = np.resize(patterns, (3, 4, 5)).view(dtype)
    assert np.isnan(array).any() and np.isinf(array).any() and np.signbit(array[array == 0]).any()
    for codec in wire.CODEC_FORMAT:
        assert _round_trip_bytes(array, codec, 24) == array.tobytes()


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 512, 3), (97, 1, 1), (3, 1, 1025), (2, 3, 5, 7), (4000,)])
def test_odd_shapes_round_trip_with_chunks_cutting_through_slices(shape):
    rng = np.random.default_rng(3)
    array = rng.integers(-3000, 3000, shape).astype(np.int16)
    for chunk_bytes in (2, 14, 2050, 1 << 22):
        assert _round_trip_bytes(array, wire.CODEC_SLICE_DELTA, chunk_bytes) == array.tobytes()


def test_many_thin_slices_take_the_column_accumulation_path_and_round_trip():
    # (20000, 3, 5): stride 15 items and thousands of slices per chunk
    array = np.random.default_rng(4).integers(0, 4096, (20000, 3, 5)).astype(np.uint16)
    assert _round_trip_bytes(array, wire.CODEC_SLICE_DELTA, 1 << 16) == array.tobytes()
