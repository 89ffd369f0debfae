"""Binary wire format for arrays (images, masks, label maps): chunked, compressed, checksummed.

A message is::

    MAGIC     4 bytes   b"SFM1"
    HLEN      uint32    little-endian length of HEADER in bytes (at most 1 MiB)
    HEADER    HLEN      UTF-8 JSON object, see below
    CHUNK*              one per chunk of the raw array bytes, in order:
      CLEN    uint32    little-endian length of DATA
      DATA    CLEN      the chunk, as the header's "codec" says

HEADER fields:

    format       message format version: absent = 1; 2 when the codec needs it (below)
    dtype        numpy dtype name, little-endian ("int16", "uint8", ...)
    shape        array shape in numpy (k, j, i) order; any dimension may be 0 (empty array)
    codec        "raw" (format 1): the raw bytes themselves;
                 "blosc2" (format 1): one blosc2 chunk of the raw bytes (ZSTD level 1; the
                 filters -- shuffle, bit-shuffle, bytedelta -- are recorded in the blosc2
                 chunk itself, so readers need not know which the writer chose);
                 "blosc2-slicedelta" (format 2): one blosc2 chunk of the zigzag-coded
                 difference of each item from the item one slice before
                 (:mod:`slicerfm_client.slice_delta`), lossless for every dtype
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

Versions: this module reads formats 1 and 2 and rejects newer ones with a message saying
to update. Writers put the lowest format the codec needs, so a format-1 message is byte for
byte what older writers produced and older readers decode it; ``best_codec`` picks the
codec for a reader known to take a given format (servers of protocol 1.1 take format 2).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from . import slice_delta

MAGIC = b"SFM1"
MAX_HEADER_BYTES = 1 << 20
DEFAULT_CHUNK_BYTES = 4 << 20
FORMAT_VERSION = 2
"""The newest message format this module reads and writes."""
CODEC_BLOSC2 = "blosc2"
CODEC_RAW = "raw"
CODEC_SLICE_DELTA = "blosc2-slicedelta"
CODEC_FORMAT = {CODEC_RAW: 1, CODEC_BLOSC2: 1, CODEC_SLICE_DELTA: 2}
"""Each codec and the message format that introduced it."""
_U32 = struct.Struct("<I")
MIN_BLOSC2 = (2, 5)
"""Oldest python-blosc2 used (same floor as the backend; has the fixed bytedelta filter)."""
_blosc2_checked = False
# Floats and label maps compress better bit-shuffled or not depending on the data (e.g. 8-bit
# quantised floats or few labels: bit-shuffle); a sample of this size from the middle decides.
_SAMPLE_BYTES = 1 << 20


class WireFormatError(ValueError):
    """The bytes are not a well-formed message (bad magic, header, truncation, checksum)."""


class ChecksumMismatchError(WireFormatError):
    """The decoded array does not have the SHA-256 the header announced."""


def load_codec() -> None:
    """Import the compression library now (the server does it at start-up, not mid-upload)."""
    _blosc2()


def _blosc2():
    global _blosc2_checked
    try:
        import blosc2
    except ImportError as error:  # pragma: no cover - exercised only without blosc2
        raise ImportError(
            "the 'blosc2' package is required for SlicerFM transfers: pip install blosc2"
        ) from error
    if not _blosc2_checked:
        check_blosc2_version(blosc2.__version__)
        _blosc2_checked = True
    return blosc2


def check_blosc2_version(version: str) -> None:
    """Raise ImportError, saying how to fix it, when ``version`` predates ``MIN_BLOSC2``."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return  # a development build: let it try
    if found < MIN_BLOSC2:
        raise ImportError(
            f"blosc2 {version} is too old for SlicerFM transfers (they use its bytedelta filter, "
            f"fixed in 2.2.5): pip install -U 'blosc2>={MIN_BLOSC2[0]}.{MIN_BLOSC2[1]}'"
        )


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
    format: int = 1

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def n_chunks(self) -> int:
        return -(-self.nbytes // self.chunk_bytes) if self.nbytes else 0

    def to_json(self) -> bytes:
        fields = {} if self.format == 1 else {"format": self.format}  # format 1: as older writers
        fields.update(
            dtype=self.dtype,
            shape=list(self.shape),
            codec=self.codec,
            chunk_bytes=self.chunk_bytes,
            sha256=self.sha256,
            meta=self.meta,
        )
        return json.dumps(fields, separators=(",", ":")).encode("utf-8")

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
                format=obj.get("format", 1),
            )
            if type(header.format) is not int:  # not bool, float or str either
                raise ValueError(f"format must be an integer, got {header.format!r}")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise WireFormatError(f"malformed message header: {error}") from error
        if header.format > FORMAT_VERSION:
            raise WireFormatError(
                f"message format {header.format} is newer than this reader (formats 1 to "
                f"{FORMAT_VERSION}): update slicerfm-client (and slicerfm-backend on the server)"
            )
        if header.format < 1:
            raise WireFormatError(f"invalid message format {header.format}")
        if dtype.byteorder == ">" or dtype.kind not in "biuf":
            raise WireFormatError(f"unsupported dtype {obj['dtype']!r}")
        if any(s < 0 for s in shape):
            raise WireFormatError(f"negative dimension in shape {list(shape)}")
        if header.codec not in CODEC_FORMAT:
            raise WireFormatError(
                f"unknown codec {header.codec!r}; expected one of {', '.join(CODEC_FORMAT)}"
            )
        if CODEC_FORMAT[header.codec] > header.format:
            raise WireFormatError(
                f"codec {header.codec!r} needs message format {CODEC_FORMAT[header.codec]}, "
                f"the header says {header.format}"
            )
        if header.chunk_bytes <= 0 or header.chunk_bytes % dtype.itemsize:
            raise WireFormatError("chunk_bytes must be a positive multiple of the item size")
        return header


def best_codec(dtype, reader_format: int = FORMAT_VERSION) -> str:
    """The codec that sends ``dtype`` smallest to a reader of ``reader_format``.

    Integer images: slice delta when the reader takes format 2 (0.78-0.91 of the bytes
    protocol 1.0 sent, on the three CTs of docs/BENCHMARKS.md), else blosc2. Floats: blosc2
    (a slice difference of float bit patterns is not reliably smaller).
    """
    if np.dtype(dtype).kind in "iu" and reader_format >= CODEC_FORMAT[CODEC_SLICE_DELTA]:
        return CODEC_SLICE_DELTA
    return CODEC_BLOSC2


def _blosc2_compress(data, typesize: int, filters: list) -> bytes:
    blosc2 = _blosc2()
    return blosc2.compress2(data, typesize=typesize, codec=blosc2.Codec.ZSTD, clevel=1, filters=filters)


def _blosc2_filters(array: np.ndarray, codec: str) -> list:
    """The blosc2 filter pipeline for a message (recorded in each chunk; readers need not know).

    Measured on CT, MR, label maps and masks (``benchmarks/wire_codecs.py``):
    slice residuals and multi-byte integers compress best byte-shuffled (with bytedelta for
    the latter), 0/1 masks bit-shuffled; for floats and multi-valued bytes (label maps) it
    depends on the data -- bit-shuffle wins for few distinct values -- so a sample decides.
    """
    Filter = _blosc2().Filter
    itemsize = array.dtype.itemsize
    if codec == CODEC_SLICE_DELTA:
        return [Filter.SHUFFLE] if itemsize > 1 else [Filter.NOFILTER]
    if array.dtype.kind == "f":
        return _smallest_on_a_sample(array, ([Filter.BITSHUFFLE], [Filter.SHUFFLE]))
    if itemsize == 1:
        if array.size == 0 or int(array.view(np.uint8).max()) <= 1:
            return [Filter.BITSHUFFLE]
        return _smallest_on_a_sample(array, ([Filter.BITSHUFFLE], [Filter.NOFILTER]))
    return [Filter.SHUFFLE, Filter.BYTEDELTA]


def _smallest_on_a_sample(array: np.ndarray, candidates: tuple) -> list:
    """The candidate pipeline that compresses a sample from the middle of the array smallest."""
    itemsize = array.dtype.itemsize
    raw = byte_view(array)
    sample_bytes = min(len(raw), _SAMPLE_BYTES)
    sample_bytes -= sample_bytes % itemsize
    start = (len(raw) - sample_bytes) // 2
    start -= start % itemsize
    sample = raw[start : start + sample_bytes]
    return min(candidates, key=lambda filters: len(_blosc2_compress(sample, itemsize, filters)))


def encode_iter(
    array: np.ndarray,
    meta: Optional[dict] = None,
    codec: str = CODEC_BLOSC2,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    sha256: Optional[str] = None,
) -> Iterator[bytes]:
    """Yield the message for ``array`` piece by piece (preamble, then one piece per chunk).

    Suitable as a streaming HTTP request body: only one compressed chunk exists at a time.
    ``codec`` is one of ``CODEC_FORMAT`` (see :func:`best_codec`); the message says the
    lowest format that codec needs. ``sha256`` may be passed when the caller already hashed
    the array.
    """
    if codec not in CODEC_FORMAT:
        raise ValueError(f"unknown codec {codec!r}; expected one of {', '.join(CODEC_FORMAT)}")
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
        format=CODEC_FORMAT[codec],
    )
    header_bytes = header.to_json()
    yield MAGIC + _U32.pack(len(header_bytes)) + header_bytes
    if codec == CODEC_RAW:
        raw = byte_view(array)
        for offset in range(0, len(raw), chunk_bytes):
            yield _U32.pack(min(chunk_bytes, len(raw) - offset)) + bytes(raw[offset : offset + chunk_bytes])
        return
    filters = _blosc2_filters(array, codec)
    for data in _blosc2_chunks(array, codec, chunk_bytes, filters):
        yield _U32.pack(len(data)) + data


def _blosc2_chunks(array: np.ndarray, codec: str, chunk_bytes: int, filters: list) -> Iterator[bytes]:
    """The compressed chunks of ``array`` (C-contiguous, little-endian), in order."""
    itemsize = array.dtype.itemsize
    if codec == CODEC_BLOSC2:
        raw = byte_view(array)
        for offset in range(0, len(raw), chunk_bytes):
            yield _blosc2_compress(raw[offset : offset + chunk_bytes], itemsize, filters)
        return
    items = slice_delta.unsigned_view(array.reshape(-1))
    stride = slice_delta.slice_stride(array.shape)
    chunk_items = chunk_bytes // itemsize
    scratch = np.empty(min(chunk_items, items.size), items.dtype)
    for start in range(0, items.size, chunk_items):
        stop = min(start + chunk_items, items.size)
        residuals = slice_delta.encode_range(items, start, stop, stride, scratch)
        yield _blosc2_compress(residuals, itemsize, filters)


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
        self._items: Optional[np.ndarray] = None  # the same memory as unsigned items
        self._stride = 1  # items per slice (slice delta)
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
        self._items = slice_delta.unsigned_view(self.array.reshape(-1))
        self._stride = slice_delta.slice_stride(header.shape)

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
            if header.codec == CODEC_SLICE_DELTA:
                itemsize = self.array.dtype.itemsize
                slice_delta.decode_range_in_place(
                    self._items, self._written // itemsize, (self._written + expected) // itemsize,
                    self._stride,
                )
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
