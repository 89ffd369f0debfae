"""The binary wire format: round trips and every way a message can arrive broken."""

import json
import struct

import numpy as np
import pytest

from slicerfm_client import wire


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"])
def test_every_image_dtype_round_trips_exactly(dtype):
    rng = np.random.default_rng(1)
    array = (rng.normal(0, 100, (7, 11, 13))).astype(dtype)
    header, decoded = wire.decode(wire.encode(array, {"x": [1, 2]}, chunk_bytes=256))
    assert decoded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(decoded, array)
    assert header.meta == {"x": [1, 2]}
    assert header.shape == (7, 11, 13)


@pytest.mark.parametrize("codec", ["blosc2", "raw"])
def test_chunk_boundaries_that_do_not_divide_the_array_round_trip(codec):
    array = np.arange(1001, dtype=np.int16).reshape(7, 11, 13)
    for chunk in (2, 6, 1000, 2002, 4096):
        np.testing.assert_array_equal(wire.decode(wire.encode(array, codec=codec, chunk_bytes=chunk))[1], array)


def test_an_empty_mask_round_trips_with_no_chunks():
    message = wire.encode(np.zeros((0, 0, 0), np.uint8), {"bbox_kji": None})
    header, decoded = wire.decode(message)
    assert decoded.shape == (0, 0, 0) and header.n_chunks == 0


def test_big_endian_input_is_sent_little_endian_with_the_same_values():
    array = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    header, decoded = wire.decode(wire.encode(array))
    assert header.dtype == "int16"
    np.testing.assert_array_equal(decoded, array)


def test_a_non_contiguous_array_is_sent_in_c_order():
    array = np.arange(60, dtype=np.int32).reshape(3, 4, 5)[:, ::2, ::-1]
    np.testing.assert_array_equal(wire.decode(wire.encode(array))[1], array)


def test_decoding_fed_one_byte_at_a_time_gives_the_same_array():
    array = np.arange(500, dtype=np.uint16).reshape(5, 10, 10)
    message = wire.encode(array, chunk_bytes=128)
    decoder = wire.MessageDecoder()
    for index in range(len(message)):
        decoder.feed(message[index : index + 1])
    np.testing.assert_array_equal(decoder.finish()[1], array)


def test_a_binary_mask_compresses_to_a_small_fraction_of_its_raw_size():
    mask = np.zeros((64, 64, 64), np.uint8)
    k, j, i = np.ogrid[:64, :64, :64]
    mask[(k - 32) ** 2 + (j - 32) ** 2 + (i - 32) ** 2 < 400] = 1
    assert len(wire.encode(mask)) < mask.nbytes * 0.05


@pytest.fixture
def a_message():
    return wire.encode(np.arange(3000, dtype=np.int16).reshape(10, 10, 30), chunk_bytes=1000)


def test_a_truncated_message_is_rejected_as_truncated(a_message):
    for cut in (3, 10, len(a_message) // 2, len(a_message) - 1):
        with pytest.raises(wire.WireFormatError, match="truncated"):
            wire.decode(a_message[:cut])


def test_bytes_after_the_last_chunk_are_rejected(a_message):
    with pytest.raises(wire.WireFormatError):
        wire.decode(a_message + b"\x00" * 64)


def test_a_flipped_data_byte_is_caught(a_message):
    broken = bytearray(a_message)
    broken[-20] ^= 0x5A
    with pytest.raises(wire.WireFormatError):
        wire.decode(bytes(broken))


def test_a_checksum_that_does_not_match_the_data_is_a_checksum_error():
    array = np.arange(100, dtype=np.uint8).reshape(1, 10, 10)
    message = wire.encode(array, sha256="0" * 64)
    with pytest.raises(wire.ChecksumMismatchError):
        wire.decode(message)


def test_wrong_magic_bytes_are_rejected(a_message):
    with pytest.raises(wire.WireFormatError, match="magic"):
        wire.decode(b"XXXX" + a_message[4:])


def test_an_oversized_header_length_is_rejected_before_reading_it():
    with pytest.raises(wire.WireFormatError, match="header too large"):
        wire.decode(wire.MAGIC + struct.pack("<I", 1 << 30))


def _message_with_header(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    return wire.MAGIC + struct.pack("<I", len(raw)) + raw


@pytest.mark.parametrize("header", [
    {"dtype": "complex64", "shape": [1, 1, 1], "codec": "raw", "chunk_bytes": 8, "sha256": ""},
    {"dtype": ">i2", "shape": [1, 1, 1], "codec": "raw", "chunk_bytes": 2, "sha256": ""},
    {"dtype": "int16", "shape": [-1, 1, 1], "codec": "raw", "chunk_bytes": 2, "sha256": ""},
    {"dtype": "int16", "shape": [1, 1, 1], "codec": "lzma", "chunk_bytes": 2, "sha256": ""},
    {"dtype": "int16", "shape": [1, 1, 1], "codec": "raw", "chunk_bytes": 3, "sha256": ""},
    {"dtype": "int16", "shape": [1, 1, 1], "codec": "raw", "chunk_bytes": 2},
    {"dtype": "nonsense", "shape": [1], "codec": "raw", "chunk_bytes": 2, "sha256": ""},
])
def test_malformed_headers_are_rejected_with_a_reason(header):
    with pytest.raises(wire.WireFormatError):
        wire.decode(_message_with_header(header))


def test_a_blosc2_chunk_that_lies_about_its_size_is_rejected_without_crashing():
    array = np.arange(4000, dtype=np.int16).reshape(4, 10, 100)
    good = wire.encode(array, chunk_bytes=8000)
    # Replace the payload with a chunk compressed from a larger buffer: its own header then
    # announces more bytes than the destination holds (blosc2 would overrun it).
    import blosc2

    header_len = struct.unpack_from("<I", good, 4)[0]
    preamble = good[: 8 + header_len]
    liar = blosc2.compress2(np.zeros(8000, np.int16).tobytes(), typesize=2)
    with pytest.raises(wire.WireFormatError, match="announces"):
        wire.decode(preamble + struct.pack("<I", len(liar)) + liar)
    with pytest.raises(wire.WireFormatError, match="too short"):
        wire.decode(preamble + struct.pack("<I", 8) + b"garbage!")


def _compressed_size(array, codec):
    return len(wire.encode(array, codec=codec))


def test_slice_delta_sends_a_real_ct_in_fewer_bytes_than_format_1(a_data_dir):
    import SimpleITK as sitk

    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(a_data_dir / "abdomen_ct" / "example_ct_sm.nii.gz")))
    assert ct.dtype == np.int16
    old = _compressed_size(ct, wire.CODEC_BLOSC2)
    new = _compressed_size(ct, wire.CODEC_SLICE_DELTA)
    assert new < 0.9 * old, (new, old, ct.nbytes)


def _payload_bytes(message: bytes) -> int:
    """Bytes of the chunks' data alone (no preamble, header or chunk lengths)."""
    header_len = struct.unpack_from("<I", message, 4)[0]
    return len(message) - 8 - header_len - 4 * wire.decode(message)[0].n_chunks


def _blosc2_bytes(array, filters) -> int:
    import blosc2

    return len(blosc2.compress2(array, typesize=array.itemsize, codec=blosc2.Codec.ZSTD, clevel=1, filters=filters))


def test_label_maps_get_the_smaller_of_bit_shuffle_and_no_filter(a_data_dir):
    import SimpleITK as sitk
    import blosc2

    few = np.zeros((40, 64, 64), np.uint8)
    k, j, i = np.ogrid[:40, :64, :64]
    for label, centre in enumerate(((20, 20, 20), (20, 40, 40), (10, 30, 50)), start=1):
        few[(k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2 < 120] = label
    many = sitk.GetArrayFromImage(sitk.ReadImage(str(a_data_dir / "abdomen_ct" / "example_seg.nii.gz")))
    many = many.astype(np.uint8)  # 41 structures, < 1 MiB: the whole map is the sample
    sizes = {}
    for name, labels in (("few", few), ("many", many)):
        bit, none = (_blosc2_bytes(labels, [f]) for f in (blosc2.Filter.BITSHUFFLE, blosc2.Filter.NOFILTER))
        sizes[name] = (bit, none)
        assert _payload_bytes(wire.encode(labels, codec=wire.CODEC_BLOSC2)) == min(bit, none)
    assert sizes["few"][0] < sizes["few"][1] and sizes["many"][1] < sizes["many"][0]  # both cases occur
