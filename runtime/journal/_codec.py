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
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from ..membrane import dumps
from ._events import Checkpoint, Header

__all__ = ["encode_record", "record_head", "RecordBuffer", "Records", "FastRecordBuffer", "NATIVE_FRAMING",
           "encoded_uint", "event_tree", "frame_at", "BadRecord", "CRC_PREFIX"]

CRC_PREFIX = b"\x82\x1a"  # array(2), then a uint32 CRC
_TAG24 = b"\xd8\x18"
_PREFIX_LEN = 2 + 4 + 2  # up to the byte string's initial byte


def encode_record(tree: list[Any]) -> bytes:
    """Frame one event (already in CBOR-ready list form) as a journal record."""
    payload = dumps(tree)
    return record_head(payload) + payload


def record_head(payload: bytes) -> bytes:
    """The bytes that precede ``payload`` in its record (array, CRC, tag 24, the byte string's
    length), packed in one call: a writer appends them and then the payload to its buffer, so
    the payload is copied once, never concatenated into a record first."""
    n = len(payload)
    crc = zlib.crc32(payload)
    if n < 24:
        return _HEAD_TINY.pack(_ARRAY_CRC, crc, _TAG24_MARK, 0x40 + n)
    if n < 0x100:
        return _HEAD_1.pack(_ARRAY_CRC, crc, _TAG24_MARK, 0x58, n)
    if n < 0x10000:
        return _HEAD_2.pack(_ARRAY_CRC, crc, _TAG24_MARK, 0x59, n)
    if n < 0x100000000:
        return _HEAD_4.pack(_ARRAY_CRC, crc, _TAG24_MARK, 0x5A, n)
    return _HEAD_8.pack(_ARRAY_CRC, crc, _TAG24_MARK, 0x5B, n)


class RecordBuffer:
    """A journal's records not yet flushed, framed as they are appended (``JournalWriter``'s
    buffer), and the seq of the next one, ``next_seq``. ``take`` hands a flush every record
    held and empties the buffer, in one step under the interpreter lock.

    The reference for ``_framing.RecordBuffer``, the same in C, which the package uses where
    it was built with a compiler (``FastRecordBuffer``): a membrane call writes four records,
    and in C each costs a fifth of what it does here (``benchmarks/bench_membrane.py``)."""

    __slots__ = ("_data", "next_seq", "_flush_at", "_on_full")

    def __init__(self, next_seq: int, flush_at: int, on_full: Callable[[], object]) -> None:
        self._data = bytearray()
        self.next_seq = next_seq
        self._flush_at = flush_at
        self._on_full = on_full

    def append(self, start: bytes, *rest: bytes) -> int:
        """Frame the record whose payload is ``start`` (the array's head and the kind), the
        seq and ``rest`` (the encodings of the fields after it), joined; append it and count
        it. Returns its seq (a call's fields encoded once may go to two journals, so a record
        arrives in pieces)."""
        return self.append_payload(b"".join((start, encoded_uint(self.next_seq), *rest)))

    def append_payload(self, payload: bytes) -> int:
        """Frame the record whose payload (its seq inside) is given; append it and count it.
        Returns its seq. ``on_full`` is called once the buffer holds more than ``flush_at``
        bytes."""
        data = self._data
        data += record_head(payload)
        data += payload
        seq = self.next_seq
        self.next_seq = seq + 1
        if len(data) > self._flush_at:
            self._on_full()
        return seq

    def take(self) -> bytes:
        """Every record held, which the buffer then no longer holds."""
        taken = bytes(self._data)
        self._data = bytearray()
        return taken

    def peek(self) -> bytes:
        """Every record held, kept."""
        return bytes(self._data)

    def __len__(self) -> int:
        return len(self._data)


class Records(Protocol):
    """What a writer uses of its record buffer: ``RecordBuffer`` or its C twin."""

    next_seq: int

    def append(self, start: bytes, /, *rest: bytes) -> int: ...

    def append_payload(self, payload: bytes, /) -> int: ...

    def take(self) -> bytes: ...

    def peek(self) -> bytes: ...

    def __len__(self) -> int: ...


MakeRecords = Callable[[int, int, Callable[[], object]], Records]
"""``(next_seq, flush_at, on_full) -> Records``."""


def _fast_record_buffer() -> tuple[MakeRecords, bool]:
    """``RecordBuffer`` in C (``_framing.c``), built with the package where a compiler is;
    without one, the reference, which writes the same bytes, slower."""
    try:
        from ._framing import RecordBuffer as NativeRecordBuffer
    except ImportError:
        return RecordBuffer, False
    return NativeRecordBuffer, True


FastRecordBuffer, NATIVE_FRAMING = _fast_record_buffer()
"""The record buffer writers use, and whether it is the C module's
(``tests/test_journal_framing.py`` checks that its bytes are the reference's)."""


def encoded_uint(n: int) -> bytes:
    """The CBOR encoding of the unsigned integer ``n`` (a seq), as ``dumps(n)`` gives it."""
    if n < 24:
        return _TINY_UINTS[n]
    if n < 0x100:
        return _UINT_1.pack(0x18, n)
    if n < 0x10000:
        return _UINT_2.pack(0x19, n)
    if n < 0x100000000:
        return _UINT_4.pack(0x1A, n)
    return _UINT_8.pack(0x1B, n)


_TINY_UINTS = [bytes((n,)) for n in range(24)]
_UINT_1, _UINT_2 = struct.Struct(">BB"), struct.Struct(">BH")
_UINT_4, _UINT_8 = struct.Struct(">BI"), struct.Struct(">BQ")
_ARRAY_CRC = int.from_bytes(CRC_PREFIX, "big")
_TAG24_MARK = int.from_bytes(_TAG24, "big")
_HEAD_TINY = struct.Struct(">HIHB")  # a payload under 24 bytes: its length is in the marker
_HEAD_1 = struct.Struct(">HIHBB")
_HEAD_2 = struct.Struct(">HIHBH")
_HEAD_4 = struct.Struct(">HIHBI")
_HEAD_8 = struct.Struct(">HIHBQ")


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


