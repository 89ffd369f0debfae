"""Binary wire format for arrays (images, masks, label maps): chunked, compressed, checksummed.

A message is::

    MAGIC     4 bytes   b"SFM1"
    HLEN      uint32    little-endian length of HEADER in bytes (at most 1 MiB)
    HEADER    HLEN      UTF-8 JSON object, see below
    CHUNK*              one per chunk of the raw array bytes, in order:
      CLEN    uint32    little-endian length of DATA
      DATA    CLEN      the chunk compressed with blosc2 (ZSTD, bit-shuffle) or, when
                        the header's "codec" is "raw", the raw bytes themselves

HEADER fields:

    dtype        numpy dtype name, little-endian ("int16", "uint8", ...)
    shape        array shape in numpy (k, j, i) order; any dimension may be 0 (empty array)
    codec        "blosc2" or "raw"
    chunk_bytes  raw bytes per chunk (the last chunk may be shorter); a multiple of the
                 item size
    sha256       hex SHA-256 of the raw C-order array bytes: the receiver recomputes it while
                 decoding and rejects the message when it differs (corrupted upload)
    meta         JSON object that depends on the message kind (image geometry, bounding box,
                 timings, segment names, ...), documented in docs/PROTOCOL.md

The number of chunks follows from ``shape``, ``dtype`` and ``chunk_bytes``; a stream that
ends early, has bytes after the last chunk, or whose chunk does not decompress to the
expected length is rejected. The receiver decodes chunk by chunk straight into the
destination array, so a large volume is held once (plus one chunk), never three times.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

MAGIC = b"SFM1"
MAX_HEADER_BYTES = 1 << 20
DEFAULT_CHUNK_BYTES = 4 << 20
CODEC_BLOSC2 = "blosc2"
CODEC_RAW = "raw"
_U32 = struct.Struct("<I")


class WireFormatError(ValueError):
    """The bytes are not a well-formed message (bad magic, header, truncation, checksum)."""


class ChecksumMismatchError(WireFormatError):
    """The decoded array does not have the SHA-256 the header announced."""


def load_codec() -> None:
    """Import the compression library now (the server does it at start-up, not mid-upload)."""
    _blosc2()


def _blosc2():
    try:
        import blosc2
    except ImportError as error:  # pragma: no cover - exercised only without blosc2
        raise ImportError(
            "the 'blosc2' package is required for SlicerFM transfers: pip install blosc2"
        ) from error
    return blosc2


def byte_view(array: np.ndarray) -> memoryview:
    """Flat writable-if-possible byte view of a C-contiguous array (works for empty arrays)."""
    return memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def array_sha256(array: np.ndarray) -> str:
    """Hex SHA-256 of the C-order bytes of ``array`` (no copy when already contiguous)."""
    return hashlib.sha256(byte_view(array)).hexdigest()


@dataclass
class Header:
    """Parsed message header; ``meta`` is kind-specific (see module docstring)."""

    dtype: str
    shape: tuple
    codec: str
    chunk_bytes: int
    sha256: str
    meta: dict = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def n_chunks(self) -> int:
        return -(-self.nbytes // self.chunk_bytes) if self.nbytes else 0

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "dtype": self.dtype,
                "shape": list(self.shape),
                "codec": self.codec,
                "chunk_bytes": self.chunk_bytes,
                "sha256": self.sha256,
                "meta": self.meta,
            },
            separators=(",", ":"),
        ).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> "Header":
        try:
            obj = json.loads(raw.decode("utf-8"))
            dtype = np.dtype(str(obj["dtype"]))
            shape = tuple(int(s) for s in obj["shape"])
            header = cls(
                dtype=dtype.name,
                shape=shape,
                codec=str(obj["codec"]),
                chunk_bytes=int(obj["chunk_bytes"]),
                sha256=str(obj["sha256"]),
                meta=dict(obj.get("meta") or {}),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise WireFormatError(f"malformed message header: {error}") from error
        if dtype.byteorder == ">" or dtype.kind not in "biuf":
            raise WireFormatError(f"unsupported dtype {obj['dtype']!r}")
        if any(s < 0 for s in shape):
            raise WireFormatError(f"negative dimension in shape {list(shape)}")
        if header.codec not in (CODEC_BLOSC2, CODEC_RAW):
            raise WireFormatError(f"unknown codec {header.codec!r}; expected blosc2 or raw")
        if header.chunk_bytes <= 0 or header.chunk_bytes % dtype.itemsize:
            raise WireFormatError("chunk_bytes must be a positive multiple of the item size")
        return header


def _compress(raw: memoryview, typesize: int, codec: str) -> bytes:
    if codec == CODEC_RAW:
        return bytes(raw)
    blosc2 = _blosc2()
    return blosc2.compress2(
        raw,
        typesize=typesize,
        codec=blosc2.Codec.ZSTD,
        clevel=1,
        filters=[blosc2.Filter.BITSHUFFLE],
    )


def encode_iter(
    array: np.ndarray,
    meta: Optional[dict] = None,
    codec: str = CODEC_BLOSC2,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    sha256: Optional[str] = None,
) -> Iterator[bytes]:
    """Yield the message for ``array`` piece by piece (preamble, then one piece per chunk).

    Suitable as a streaming HTTP request body: only one compressed chunk exists at a time.
    ``sha256`` may be passed when the caller already hashed the array.
    """
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    itemsize = array.dtype.itemsize
    chunk_bytes = max(itemsize, chunk_bytes - chunk_bytes % itemsize)
    header = Header(
        dtype=array.dtype.name,
        shape=tuple(int(s) for s in array.shape),
        codec=codec,
        chunk_bytes=chunk_bytes,
        sha256=sha256 or array_sha256(array),
        meta=meta or {},
    )
    header_bytes = header.to_json()
    yield MAGIC + _U32.pack(len(header_bytes)) + header_bytes
    raw = byte_view(array)
    for offset in range(0, len(raw), chunk_bytes):
        data = _compress(raw[offset : offset + chunk_bytes], itemsize, codec)
        yield _U32.pack(len(data)) + data


def encode(array: np.ndarray, meta: Optional[dict] = None, **kwargs: Any) -> bytes:
    """The whole message for ``array`` as one bytes object (for small arrays: masks)."""
    return b"".join(encode_iter(array, meta, **kwargs))


def _check_blosc2_chunk(data: bytes, expected: int, index: int) -> None:
    """Validate a blosc2 chunk's own header before decompressing it.

    blosc2 trusts the sizes in its header: a chunk announcing more bytes than the
    destination holds, or a buffer shorter than its header says, can crash the process.
    """
    if len(data) < 32:
        raise WireFormatError(f"chunk {index} is too short to be a blosc2 chunk")
    try:
        nbytes, cbytes, _ = _blosc2().get_cbuffer_sizes(data)
    except (RuntimeError, ValueError, TypeError) as error:
        raise WireFormatError(f"chunk {index} has no valid blosc2 header: {error}") from error
    if nbytes != expected or cbytes != len(data):
        raise WireFormatError(
            f"chunk {index} announces {nbytes} raw / {cbytes} compressed bytes, "
            f"expected {expected} raw / {len(data)} compressed"
        )


class MessageDecoder:
    """Push parser: feed bytes as they arrive, get the array when the message is complete.

    ``on_header(header)`` is called as soon as the header is parsed, before any array memory
    is allocated, so the receiver can validate dtype, shape and meta (and refuse absurd
    sizes) early. It may raise to abort. The destination array is allocated once and each
    chunk is decompressed into it directly.
    """

    def __init__(self, on_header: Optional[Callable[[Header], None]] = None):
        self._on_header = on_header
        self._buffer = bytearray()
        self.header: Optional[Header] = None
        self.array: Optional[np.ndarray] = None
        self._flat: Optional[memoryview] = None
        self._written = 0
        self._chunks_done = 0
        self._hash = hashlib.sha256()
        self.bytes_received = 0

    def feed(self, data: bytes) -> None:
        self.bytes_received += len(data)
        self._buffer += data
        if self.header is None:
            self._try_header()
        if self.header is not None:
            self._drain_chunks()

    def _try_header(self) -> None:
        if len(self._buffer) < 8:
            return
        if bytes(self._buffer[:4]) != MAGIC:
            raise WireFormatError("not a SlicerFM message (bad magic bytes)")
        (header_len,) = _U32.unpack_from(self._buffer, 4)
        if header_len > MAX_HEADER_BYTES:
            raise WireFormatError(f"message header too large ({header_len} bytes)")
        if len(self._buffer) < 8 + header_len:
            return
        header = Header.from_json(bytes(self._buffer[8 : 8 + header_len]))
        del self._buffer[: 8 + header_len]
        if self._on_header is not None:
            self._on_header(header)
        self.header = header
        self.array = np.empty(header.shape, dtype=np.dtype(header.dtype))
        self._flat = byte_view(self.array)

    def _drain_chunks(self) -> None:
        header = self.header
        while len(self._buffer) >= 4:
            if self._chunks_done >= header.n_chunks:
                raise WireFormatError("unexpected bytes after the last chunk")
            (clen,) = _U32.unpack_from(self._buffer, 0)
            if clen > header.chunk_bytes + 4096 + header.chunk_bytes // 8:
                raise WireFormatError(f"chunk length {clen} exceeds the announced chunk size")
            if len(self._buffer) < 4 + clen:
                return
            data = bytes(self._buffer[4 : 4 + clen])
            del self._buffer[: 4 + clen]
            self._decode_chunk(data)

    def _decode_chunk(self, data: bytes) -> None:
        header = self.header
        expected = min(header.chunk_bytes, header.nbytes - self._written)
        target = self._flat[self._written : self._written + expected]
        if header.codec == CODEC_RAW:
            if len(data) != expected:
                raise WireFormatError("raw chunk has the wrong length")
            target[:] = data
        else:
            _check_blosc2_chunk(data, expected, self._chunks_done)
            try:
                _blosc2().decompress2(data, dst=target)
            except (RuntimeError, ValueError, TypeError) as error:
                raise WireFormatError(
                    f"chunk {self._chunks_done} does not decompress: {error}"
                ) from error
        self._hash.update(target)
        self._written += expected
        self._chunks_done += 1

    @property
    def complete(self) -> bool:
        return self.header is not None and self._chunks_done == self.header.n_chunks

    def finish(self) -> tuple:
        """Check that the message ended cleanly; return ``(header, array)``."""
        if self.header is None:
            raise WireFormatError(
                f"message truncated: the stream ended after {self.bytes_received} bytes, "
                "before the header was complete"
            )
        if self._buffer:
            raise WireFormatError("message truncated: the stream ended inside a chunk")
        if not self.complete:
            raise WireFormatError(
                f"message truncated: {self._chunks_done} of {self.header.n_chunks} chunks arrived"
            )
        digest = self._hash.hexdigest()
        if digest != self.header.sha256:
            raise ChecksumMismatchError(
                "checksum mismatch: the data arrived corrupted (SHA-256 differs from the header)"
            )
        return self.header, self.array


def decode(data: bytes, on_header: Optional[Callable[[Header], None]] = None) -> tuple:
    """Decode a whole message held in memory; returns ``(header, array)``."""
    decoder = MessageDecoder(on_header)
    decoder.feed(data)
    return decoder.finish()


def decode_stream(chunks: Iterable[bytes], on_header=None) -> tuple:
    """Decode a message from an iterable of byte pieces (e.g. an HTTP response stream)."""
    decoder = MessageDecoder(on_header)
    for piece in chunks:
        if piece:
            decoder.feed(piece)
    return decoder.finish()
