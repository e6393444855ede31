"""A journal record's bytes: ``[crc32, 24(payload)]``, framed and checked.

Each record is the CBOR array ``[crc32, 24(payload)]``: the payload is the event's own CBOR
encoding wrapped in tag 24 (embedded CBOR data item), and the CRC-32 covers the payload bytes.
CBOR itself has no checksum, so a torn or flipped write could otherwise decode as a valid, wrong
event. The CRC is always written as a 4-byte unsigned integer (``0x1a``), which keeps every
record's prefix the same shape and lets a reader find record boundaries without decoding.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import msgspec

from ..membrane import dumps
from ._events import Checkpoint, Header

__all__ = ["encode_record", "event_tree", "frame_at", "BadRecord", "CRC_PREFIX"]

CRC_PREFIX = b"\x82\x1a"  # array(2), then a uint32 CRC
_TAG24 = b"\xd8\x18"
_PREFIX_LEN = 2 + 4 + 2  # up to the byte string's initial byte


def encode_record(tree: list[Any]) -> bytes:
    """Frame one event (already in CBOR-ready list form) as a journal record."""
    payload = dumps(tree)
    n = len(payload)
    if n < 24:
        length = _BSTR_HEADS[n]
    elif n < 0x100:
        length = bytes((0x58, n))
    elif n < 0x10000:
        length = b"\x59" + n.to_bytes(2, "big")
    elif n < 0x100000000:
        length = b"\x5a" + n.to_bytes(4, "big")
    else:
        length = b"\x5b" + n.to_bytes(8, "big")
    return CRC_PREFIX + zlib.crc32(payload).to_bytes(4, "big") + _TAG24 + length + payload


_BSTR_HEADS = [bytes((0x40 + n,)) for n in range(24)]


class BadRecord(Exception):
    """A record that cannot be used. ``tail_like``: the damage a crash mid-write leaves (cut
    short, or bytes that fail their checksum); a record whose checksum holds but whose content
    is invalid was written that way, and is never taken for a torn tail."""

    def __init__(self, reason: str, *, tail_like: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tail_like = tail_like


_HEAD = struct.Struct(">2sI2sB")  # array(2) + uint32 marker, CRC, tag 24, bstr initial byte
_WHERE_NOT_BOUNDARY = (
    (0, b"\x82"), (1, b"\x1a"), (6, b"\xd8"), (7, b"\x18"),
)


def frame_at(data: bytes, offset: int) -> tuple[bytes, int]:
    """The payload of the record at ``offset`` and the offset after it, or ``BadRecord``."""
    end = len(data)
    if offset + _HEAD.size > end:
        head = data[offset:]
        for i, byte in _WHERE_NOT_BOUNDARY:
            if i < len(head) and head[i : i + 1] != byte:
                raise BadRecord(f"byte {offset + i} is not a record boundary")
        raise BadRecord("the record is cut short")
    array_crc, crc, tag, initial = _HEAD.unpack_from(data, offset)
    if array_crc != CRC_PREFIX or tag != _TAG24:
        for i, byte in _WHERE_NOT_BOUNDARY:
            if data[offset + i : offset + i + 1] != byte:
                raise BadRecord(f"byte {offset + i} is not a record boundary")
    pos = offset + _HEAD.size
    if 0x40 <= initial < 0x58:
        n = initial - 0x40
    elif 0x58 <= initial <= 0x5B:
        width = 1 << (initial - 0x58)
        if pos + width > end:
            raise BadRecord("the record is cut short")
        n = int.from_bytes(data[pos : pos + width], "big")
        pos += width
    else:
        raise BadRecord(f"byte {offset + _PREFIX_LEN} is not a byte-string length")
    if pos + n > end:
        raise BadRecord("the record is cut short")
    payload = data[pos : pos + n]
    if zlib.crc32(payload) != crc:
        raise BadRecord("its checksum does not match its contents")
    return payload, pos + n


_BUNDLE = Header.__struct_fields__.index("bundle")
_SOURCES = Checkpoint.__struct_fields__.index("sources")


def event_tree(event: msgspec.Struct) -> list[Any]:
    fields = [
        event_tree(f) if isinstance(f, msgspec.Struct) else f
        for f in msgspec.structs.astuple(event)
    ]
    tag = event.__struct_config__.tag
    if isinstance(event, Header):
        fields[_BUNDLE] = [list(msgspec.structs.astuple(b)) for b in event.bundle]
    elif isinstance(event, Checkpoint):
        fields[_SOURCES] = [list(msgspec.structs.astuple(b)) for b in event.sources]
    return fields if tag is None else [tag, *fields]


