"""Boolean blocks kept compressed: undo steps in memory and segments on disk.

A step of a segment's history is the old and new values inside a box; kept as ``bool``
arrays they cost one byte per voxel (416 full-image seeds of the sample CT held 1 GB). A
:class:`PackedMask` holds the block bit-shuffled (8 voxels per byte) and LZ4-compressed
with blosc2: a typical organ's step costs a few kB, a random one at most about 1/8 of its
voxels. ``nbytes`` is what it costs in memory; ``data`` is also what is written to disk.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from slicerfm_client import wire

PIECE_BYTES = 1 << 30  # blosc2 compresses at most ~2 GB at once


def _blosc2():
    wire.load_codec()
    import blosc2

    return blosc2


class PackedMask:
    """A compressed boolean array of ``shape`` (k, j, i); immutable."""

    __slots__ = ("shape", "pieces")

    def __init__(self, shape: Sequence[int], pieces: Sequence[bytes]):
        self.shape = tuple(int(s) for s in shape)
        self.pieces = tuple(pieces)

    @classmethod
    def pack(cls, values: np.ndarray) -> "PackedMask":
        blosc2 = _blosc2()
        raw = np.ascontiguousarray(values, dtype=bool).reshape(-1).view(np.uint8)
        pieces = [blosc2.compress2(raw[start:start + PIECE_BYTES], typesize=1, codec=blosc2.Codec.LZ4,
                                   clevel=1, filters=[blosc2.Filter.BITSHUFFLE])
                  for start in range(0, raw.size, PIECE_BYTES)]
        return cls(values.shape, pieces)

    def unpack(self) -> np.ndarray:
        blosc2 = _blosc2()
        out = np.empty(self.shape, dtype=bool)
        flat = out.reshape(-1).view(np.uint8)
        offset = 0
        for piece in self.pieces:
            size = blosc2.get_cbuffer_sizes(piece)[0]
            if offset + size > flat.size:
                raise ValueError("a packed mask holds more voxels than its shape")
            blosc2.decompress2(piece, dst=flat[offset:offset + size])
            offset += size
        if offset != flat.size:
            raise ValueError("a packed mask holds fewer voxels than its shape")
        return out

    @property
    def nbytes(self) -> int:
        return sum(len(piece) for piece in self.pieces) + 64

    @property
    def data(self) -> bytes:
        """The pieces as one byte string: ``u32 count, (u32 length, bytes)*``."""
        parts = [len(self.pieces).to_bytes(4, "little")]
        for piece in self.pieces:
            parts += [len(piece).to_bytes(4, "little"), piece]
        return b"".join(parts)

    @classmethod
    def from_data(cls, shape: Sequence[int], data: bytes) -> "PackedMask":
        count = int.from_bytes(data[:4], "little")
        offset, pieces = 4, []
        for _ in range(count):
            size = int.from_bytes(data[offset:offset + 4], "little")
            pieces.append(bytes(data[offset + 4:offset + 4 + size]))
            offset += 4 + size
        if offset != len(data):
            raise ValueError("a packed mask's data has the wrong length")
        return cls(shape, pieces)
