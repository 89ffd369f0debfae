"""Wire format versions: older peers' messages still decode, and each peer gets a format it reads."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from slicerfm_client import protocol, wire

FORMAT1_FIXTURE = Path(__file__).resolve().parent / "data" / "wire_format1.npz"


def _format1_messages() -> dict:
    """name -> (message bytes, the array it encodes), as the protocol-1.0 encoder wrote them."""
    stored = np.load(FORMAT1_FIXTURE)
    names = sorted({key.rsplit(".", 1)[0] for key in stored.files})
    return {name: (stored[f"{name}.message"].tobytes(), stored[f"{name}.array"]) for name in names}


def _header_of(message: bytes) -> dict:
    (length,) = struct.unpack_from("<I", message, 4)
    return json.loads(message[8 : 8 + length])


@pytest.mark.parametrize("name", sorted(_format1_messages()))
def test_messages_written_by_the_protocol_1_0_encoder_still_decode_exactly(name):
    message, array = _format1_messages()[name]
    header, decoded = wire.decode(message)
    assert header.format == 1 and "format" not in _header_of(message)
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    assert decoded.tobytes() == array.tobytes()


def test_the_fixture_covers_both_format_1_codecs_and_several_chunks():
    messages = _format1_messages()
    assert {_header_of(message)["codec"] for message, _ in messages.values()} == {"blosc2", "raw"}
    assert wire.decode(messages["ct_image_upload"][0])[0].n_chunks > 1


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "float32"])
def test_a_format_1_message_has_the_fields_and_chunks_an_older_reader_expects(dtype):
    # The protocol-1.0 reader took codec "blosc2"/"raw" and exactly these header fields; its
    # chunks are plain blosc2 chunks (whatever their filters), so it decodes these messages.
    import blosc2

    array = (np.arange(2 * 3 * 500) % 7).astype(dtype).reshape(2, 3, 500)
    message = wire.encode(array, {"m": 1}, codec=wire.CODEC_BLOSC2, chunk_bytes=1000)
    header = _header_of(message)
    assert set(header) == {"dtype", "shape", "codec", "chunk_bytes", "sha256", "meta"}
    offset, raw = 8 + struct.unpack_from("<I", message, 4)[0], b""
    while offset < len(message):
        (length,) = struct.unpack_from("<I", message, offset)
        raw += blosc2.decompress2(message[offset + 4 : offset + 4 + length])
        offset += 4 + length
    assert raw == array.tobytes()


def test_a_slice_delta_message_announces_format_2():
    message = wire.encode(np.zeros((2, 3, 4), np.int16), codec=wire.CODEC_SLICE_DELTA)
    assert _header_of(message)["format"] == 2 and _header_of(message)["codec"] == "blosc2-slicedelta"


def _with_header(message: bytes, **changes) -> bytes:
    header = _header_of(message)
    header.update(changes)
    raw = json.dumps(header).encode()
    old_length = struct.unpack_from("<I", message, 4)[0]
    return message[:4] + struct.pack("<I", len(raw)) + raw + message[8 + old_length :]


def test_a_message_of_a_newer_format_is_refused_with_a_request_to_update():
    message = wire.encode(np.zeros((2, 3, 4), np.int16), codec=wire.CODEC_SLICE_DELTA)
    with pytest.raises(wire.WireFormatError, match="newer than this reader.*update slicerfm-client"):
        wire.decode(_with_header(message, format=3))


@pytest.mark.parametrize("changes, words", [
    ({"format": 1}, "needs message format 2"),
    ({"format": 0}, "invalid message format"),
    ({"format": "two"}, "malformed"),
    ({"format": "2"}, "malformed"),
    ({"format": 2.0}, "malformed"),
    ({"format": True}, "malformed"),
])
def test_a_slice_delta_message_with_a_wrong_format_number_is_refused(changes, words):
    message = wire.encode(np.zeros((2, 3, 4), np.int16), codec=wire.CODEC_SLICE_DELTA)
    with pytest.raises(wire.WireFormatError, match=words):
        wire.decode(_with_header(message, **changes))


def test_an_unknown_codec_is_refused_when_encoding():
    with pytest.raises(ValueError, match="unknown codec"):
        wire.encode(np.zeros(3, np.int16), codec="lzma")


@pytest.mark.parametrize("dtype, reader_format, codec", [
    ("int16", 2, "blosc2-slicedelta"), ("uint16", 2, "blosc2-slicedelta"), ("uint8", 2, "blosc2-slicedelta"),
    ("int32", 2, "blosc2-slicedelta"), ("float32", 2, "blosc2"), ("float64", 2, "blosc2"),
    ("int16", 1, "blosc2"), ("uint8", 1, "blosc2"),
])
def test_the_best_codec_depends_on_the_dtype_and_what_the_reader_decodes(dtype, reader_format, codec):
    assert wire.best_codec(dtype, reader_format) == codec


@pytest.mark.parametrize("server_version, wire_format", [
    ("1.0", 1), ("1.1", 2), ("1.7", 2), ("garbage", 1), ("1", 1), (None, 1),
])
def test_servers_from_protocol_1_1_on_are_sent_format_2(server_version, wire_format):
    assert protocol.wire_format_for(server_version) == wire_format


def test_this_protocol_version_decodes_format_2():
    assert protocol.wire_format_for(protocol.PROTOCOL_VERSION) == wire.FORMAT_VERSION == 2


@pytest.mark.parametrize("version, too_old", [("2.0.0", True), ("2.2.4", True), ("2.5.1", False),
                                              ("3.0.0", False), ("4.14.1", False), ("dev", False)])
def test_a_blosc2_too_old_for_bytedelta_is_refused_with_the_fix(version, too_old):
    if too_old:
        with pytest.raises(ImportError, match="pip install -U 'blosc2>=2.5'"):
            wire.check_blosc2_version(version)
    else:
        wire.check_blosc2_version(version)
