"""Length-prefixed, checksummed records: the journal and snapshot file format.

A record is ``MAGIC (2 bytes) | u32 payload length | u32 CRC-32 of the payload | payload``;
the payload is ``u32 JSON length | JSON object | blobs``, the JSON's ``"_blobs"`` listing
each blob's length. A file is a sequence of records; a reader stops at the first
incomplete or damaged one (a write cut short by a crash), which is then ignored.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import BinaryIO, Iterator, List, Sequence, Tuple

MAGIC = b"SJ"
_HEAD = struct.Struct("<2sII")
_U32 = struct.Struct("<I")
MAX_PAYLOAD = 1 << 34


def encode(kind: str, fields: dict, blobs: Sequence[bytes] = ()) -> bytes:
    header = json.dumps({"kind": kind, **fields, "_blobs": [len(b) for b in blobs]},
                        separators=(",", ":")).encode("utf-8")
    payload = b"".join([_U32.pack(len(header)), header, *blobs])
    return _HEAD.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes) -> Tuple[str, dict, List[bytes]]:
    (size,) = _U32.unpack_from(payload, 0)
    fields = json.loads(payload[4:4 + size].decode("utf-8"))
    offset = 4 + size
    blobs = []
    for length in fields.pop("_blobs"):
        blobs.append(payload[offset:offset + length])
        offset += length
    if offset != len(payload):
        raise ValueError("record blobs do not add up to the payload")
    return fields.pop("kind"), fields, blobs


def read(handle: BinaryIO) -> Iterator[Tuple[str, dict, List[bytes]]]:
    """The complete, intact records of an open file, in order; afterwards the file
    position is at the end of the last of them."""
    while True:
        start = handle.tell()
        head = handle.read(_HEAD.size)
        if len(head) < _HEAD.size:
            handle.seek(start)
            return
        magic, size, crc = _HEAD.unpack(head)
        payload = handle.read(size) if magic == MAGIC and size <= MAX_PAYLOAD else b""
        if magic != MAGIC or len(payload) < size or zlib.crc32(payload) != crc:
            handle.seek(start)
            return
        yield decode_payload(payload)
