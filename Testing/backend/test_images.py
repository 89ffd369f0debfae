"""Image upload: once per content id, and every kind of bad upload refused with a clear error."""

from pathlib import Path

import numpy as np
import pytest
import requests

from slicerfm_backend import image_store
from slicerfm_client import errors, geometry, protocol, wire

FORMAT1_FIXTURE = Path(__file__).resolve().parents[1] / "client" / "data" / "wire_format1.npz"


def _put(server, array, meta=None, image_id=None, body=None):
    """PUT an image message as the client would, with full control over what is sent."""
    matrix = (meta or {}).get("ijk_to_ras", np.eye(4).tolist())
    meta = {"ijk_to_ras": matrix, "modality": "CT", **(meta or {})}
    if image_id is None:
        try:
            image_id = geometry.image_id(array.dtype.name, array.shape, matrix, wire.array_sha256(array))
        except geometry.GeometryError:
            image_id = "e" * 64  # the server refuses the geometry before it checks the id
    if body is None:
        body = wire.encode(array, meta, chunk_bytes=4096)
    return requests.put(server.url + protocol.image_path(image_id), data=body,
                        headers={protocol.HEADER_PROTOCOL: protocol.PROTOCOL_VERSION})


def _assert_error(response, status, code, words):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert words in body["message"], body["message"]


def test_an_image_is_uploaded_once_and_reused_by_another_session(a_server, a_ct_like_volume):
    array, matrix = a_ct_like_volume
    first = a_server.client()
    first.connect(heartbeat=False)
    image_id = first.upload_image(array, matrix, "CT")
    assert a_server.client().has_image(image_id)
    second = a_server.client()
    second.connect(heartbeat=False)
    sent = []
    original = second._request
    second._request = lambda method, path, **kw: (sent.append(method), original(method, path, **kw))[1]
    assert second.set_image(array, matrix, "CT") == image_id
    assert "PUT" not in sent  # attaching an image the server holds costs no upload


def test_the_stored_image_keeps_voxels_and_geometry_exactly(a_server, a_ct_like_volume):
    array, matrix = a_ct_like_volume
    client = a_server.client()
    image_id = client.upload_image(array, matrix, "CT")
    stored = a_server.state.images.get(image_id)
    np.testing.assert_array_equal(stored.array, array)
    np.testing.assert_allclose(stored.ijk_to_ras, matrix)
    assert not stored.array.flags.writeable


def test_an_upload_from_a_protocol_1_0_client_is_stored_exactly(a_server):
    # Bytes written by the protocol-1.0 encoder (format 1, Testing/client/data).
    stored = np.load(FORMAT1_FIXTURE)
    message, array = stored["ct_image_upload.message"].tobytes(), stored["ct_image_upload.array"]
    header = wire.decode(message)[0]
    image_id = geometry.image_id(header.dtype, header.shape, header.meta["ijk_to_ras"], header.sha256)
    response = requests.put(a_server.url + protocol.image_path(image_id), data=message,
                            headers={protocol.HEADER_PROTOCOL: "1.0"})
    assert response.status_code == 201, response.text
    assert a_server.state.images.get(image_id).array.tobytes() == array.tobytes()


@pytest.mark.parametrize("server_version, codec", [(protocol.PROTOCOL_VERSION, wire.CODEC_SLICE_DELTA),
                                                   ("1.0", wire.CODEC_BLOSC2)])
def test_the_client_sends_integer_images_in_the_newest_format_the_server_reads(
        a_server, a_ct_like_volume, server_version, codec):
    array, matrix = a_ct_like_volume
    client = a_server.client()
    client.connect(heartbeat=False)
    client.server_info["protocol_version"] = server_version  # as a protocol-1.0 server answers
    bodies = []
    original = client._request

    def recording(method, path, **kwargs):
        if method == "PUT":
            kwargs["data"] = b"".join(kwargs["data"])
            bodies.append(kwargs["data"])
        return original(method, path, **kwargs)

    client._request = recording
    image_id = client.upload_image(array, matrix, "CT")
    assert wire.decode(bodies[0])[0].codec == codec
    np.testing.assert_array_equal(a_server.state.images.get(image_id).array, array)


def test_attaching_an_image_the_server_lacks_answers_404(a_server):
    client = a_server.client()
    client.connect(heartbeat=False)
    with pytest.raises(errors.ImageNotFoundError, match="upload it first"):
        client.attach_image("ab" * 32)


def test_a_truncated_upload_is_refused_as_corrupted_and_the_server_keeps_serving(a_server, a_ct_like_volume):
    array, _ = a_ct_like_volume
    message = wire.encode(array, {"ijk_to_ras": np.eye(4).tolist(), "modality": "CT"}, chunk_bytes=4096)
    response = _put(a_server, array, body=message[: len(message) // 2])
    _assert_error(response, 400, protocol.ERROR_CORRUPTED, "truncated")
    assert _put(a_server, array).status_code == 201


def test_an_upload_corrupted_in_transit_fails_its_checksum(a_server, a_ct_like_volume):
    array, _ = a_ct_like_volume
    message = bytearray(wire.encode(array, {"ijk_to_ras": np.eye(4).tolist()}, codec="raw", chunk_bytes=4096))
    message[-100] ^= 0xFF
    _assert_error(_put(a_server, array, body=bytes(message)), 400, protocol.ERROR_CORRUPTED, "checksum")


def test_an_upload_whose_content_does_not_match_its_id_is_refused(a_server, a_ct_like_volume):
    array, _ = a_ct_like_volume
    _assert_error(_put(a_server, array, image_id="0" * 64), 400, protocol.ERROR_CORRUPTED, "does not match")


def test_a_malformed_image_id_is_refused(a_server, a_ct_like_volume):
    array, _ = a_ct_like_volume
    _assert_error(_put(a_server, array, image_id="not-a-hash"), 422, protocol.ERROR_INVALID, "hex")


def test_garbage_instead_of_a_message_is_refused(a_server, a_ct_like_volume):
    array, _ = a_ct_like_volume
    _assert_error(_put(a_server, array, body=b"this is not an image" * 10), 400, protocol.ERROR_CORRUPTED, "magic")


def test_nan_voxels_are_refused_with_the_first_bad_voxel(a_server):
    array = np.zeros((4, 5, 6), np.float32)
    array[2, 3, 4] = np.nan
    _assert_error(_put(a_server, array), 422, protocol.ERROR_INVALID, "k=2, j=3, i=4")
    array[2, 3, 4] = np.inf
    _assert_error(_put(a_server, array), 422, protocol.ERROR_INVALID, "infinite")


@pytest.mark.parametrize("dtype", ["int64", "uint64", "float16"])
def test_unsupported_voxel_types_are_refused_naming_the_supported_ones(a_server, dtype):
    _assert_error(_put(a_server, np.zeros((2, 2, 2), dtype)), 422, protocol.ERROR_INVALID, "int16")


def test_two_dimensional_and_empty_images_are_refused(a_server):
    _assert_error(_put(a_server, np.zeros((4, 4), np.int16)), 422, protocol.ERROR_INVALID, "3-D")
    _assert_error(_put(a_server, np.zeros((0, 4, 4), np.int16)), 422, protocol.ERROR_INVALID, "empty")


def test_images_over_the_size_limits_are_refused_before_their_voxels_arrive(a_server_factory):
    server = a_server_factory(max_dimension=64, max_voxels=40_000)
    _assert_error(_put(server, np.zeros((2, 2, 65), np.uint8)), 413, protocol.ERROR_TOO_LARGE, "MAX_DIMENSION")
    _assert_error(_put(server, np.zeros((40, 40, 40), np.uint8)), 413, protocol.ERROR_TOO_LARGE, "MAX_VOXELS")


def test_an_upload_larger_than_the_byte_limit_is_refused(a_server_factory):
    server = a_server_factory(max_upload_bytes=10_000)
    array = np.random.default_rng(0).integers(0, 1 << 15, (10, 30, 40)).astype(np.int16)
    _assert_error(_put(server, array), 413, protocol.ERROR_TOO_LARGE, "MAX_UPLOAD_BYTES")


@pytest.mark.parametrize("matrix, words", [
    ([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "not orthogonal"),
    ([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "singular"),
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], "4x4"),
])
def test_unusable_geometries_are_refused(a_server, matrix, words):
    _assert_error(_put(a_server, np.zeros((2, 2, 2), np.int16), {"ijk_to_ras": matrix}),
                  422, protocol.ERROR_INVALID, words)


def test_an_unknown_modality_is_refused(a_server):
    _assert_error(_put(a_server, np.zeros((2, 2, 2), np.int16), {"modality": "PET"}),
                  422, protocol.ERROR_INVALID, "modality")


def test_the_client_checks_geometry_before_uploading():
    from slicerfm_client.client import SlicerFMClient

    with pytest.raises(geometry.GeometryError):
        SlicerFMClient("http://127.0.0.1:1").upload_image(np.zeros((2, 2, 2), np.int16), np.zeros((4, 4)))


def test_least_recently_used_images_are_evicted_but_not_those_in_use(a_server_factory, monkeypatch):
    monkeypatch.setattr(image_store, "UPLOAD_GRACE_S", 0.0)  # no fresh uploads to protect here
    server = a_server_factory(image_cache_bytes=30_000)
    holder = server.client()
    holder.connect(heartbeat=False)
    kept = holder.set_image(np.ones((10, 20, 30), np.int16), np.eye(4))  # 12 kB, in use
    other = server.client()
    first = other.upload_image(np.full((10, 20, 30), 2, np.int16), np.eye(4))
    second = other.upload_image(np.full((10, 20, 30), 3, np.int16), np.eye(4))
    assert other.has_image(kept) and other.has_image(second)
    assert not other.has_image(first)


def test_the_client_refuses_an_image_over_the_server_limits_before_sending_it(a_server_factory):
    server = a_server_factory(max_dimension=64)
    client = server.client()
    client.connect(heartbeat=False)
    with pytest.raises(errors.TooLargeError, match="64 voxels per axis"):
        client.upload_image(np.zeros((2, 2, 65), np.uint8), np.eye(4))
