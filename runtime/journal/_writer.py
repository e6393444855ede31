"""Appending records to a journal."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from zlib import crc32

from ..errors import JournalError
from ..membrane import dumps
from ._codec import (
    _ARRAY_CRC,
    _HEAD_1,
    _TAG24_MARK,
    _UINT_2,
    _UINT_4,
    encoded_uint,
    event_tree,
    record_head,
)
from ._events import EventBase, Header
from ._file import JournalFile, JournalSink
from ._reader import JournalContents, read_journal

__all__ = ["JournalWriter"]

_pack_uint2, _pack_uint4, _pack_head1 = _UINT_2.pack, _UINT_4.pack, _HEAD_1.pack


_AUTO_FLUSH = 1 << 20
"""Bytes buffered before the writing thread flushes them itself (a long call that nobody
flushes must not hold its whole journal in memory)."""


class JournalWriter:
    """Appends records to one service's journal.

    Records go into an in-memory ``bytearray`` without a lock: one call at a time writes a
    service's records (its call gate guarantees it), and appending to a ``bytearray`` is one
    step under the interpreter lock. ``flush`` hands them to the file — from the writing
    thread or another (a group commit's leader): it takes the buffer's first ``n`` bytes and
    deletes exactly those, so whatever is appended meanwhile stays for the next flush. A
    record's bytes are in the buffer before ``next_seq`` counts it, so a flush that reads
    ``next_seq`` first covers every record below it. ``sync`` also makes them durable
    (fdatasync).

    Of its file the writer uses ``write(bytes)``, ``flush()``, ``fileno()`` and ``close()``
    only, so any file-like layer with those (a preallocated journal file) can carry it.
    """

    def __init__(self, path: str | os.PathLike[str], file: JournalSink, next_seq: int) -> None:
        self.path = Path(path)
        self._file = file
        self.next_seq = next_seq
        self._buffer = bytearray()
        self._flushing = threading.Lock()  # between flushes only; writes never take it
        self._closed = False

    @property
    def dirty(self) -> bool:
        """Whether records wait in the buffer for a flush."""
        return bool(self._buffer)

    @classmethod
    def create(cls, path: str | os.PathLike[str], header: Header) -> JournalWriter:
        """Start a new journal at ``path`` (replacing any file there) with its header record."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer = cls(path, JournalFile.create(path), 0)
        writer.write(header)
        return writer

    @classmethod
    def append_to(cls, path: str | os.PathLike[str],
                  contents: JournalContents | None = None) -> JournalWriter:
        """Continue an existing journal (``contents``: as just read, if it was). A torn tail
        must be repaired first."""
        if contents is None:
            contents = read_journal(path)
        if contents.torn is not None:
            raise JournalError(
                f"{path} ends in a torn record ({contents.torn.reason}); run "
                f"`distdev journal repair {path}` before appending to it"
            )
        return cls(path, JournalFile.continue_at(path, contents.good_size),
                   len(contents.events) + contents.skipped)

    def write(self, event: EventBase) -> int:
        """Append one event; its ``seq`` must be ``next_seq``. Returns the seq."""
        return self.write_fields(event_tree(event))

    def write_fields(self, tree: list[Any]) -> int:
        """Append one event given as ``[kind, seq, ...fields]``, its seq set here (no Struct is
        built; nested Structs must already be lists)."""
        seq = tree[1] = self.next_seq
        payload = dumps(tree)
        buffer = self._buffer
        buffer += record_head(payload)
        buffer += payload
        self.next_seq = seq + 1
        if len(buffer) > _AUTO_FLUSH:
            self.flush()
        return seq

    def write_encoded(self, start: bytes, rest: bytes) -> int:
        """Append one event given as its CBOR payload split around the seq: ``start`` (the
        array's head and the kind) and ``rest`` (the fields after the seq), both already
        encoded. The bytes are those ``write_fields`` writes for the same event (the hot path:
        fields encoded once may go to two journals). Returns the seq.

        Written for speed (``benchmarks/bench_membrane.py`` says what a record costs): the
        payload is joined once, the common seq and head forms are packed by bound methods
        (a seq of a journal past its first 65536 records is 4 bytes), and the rest is
        ``encoded_uint``'s and ``record_head``'s."""
        seq = self.next_seq
        payload = b"".join((start, _pack_uint4(0x1A, seq) if 0xFFFF < seq < 0x100000000
                            else _pack_uint2(0x19, seq) if 0xFF < seq <= 0xFFFF
                            else encoded_uint(seq), rest))
        n = len(payload)
        buffer = self._buffer
        buffer += (_pack_head1(_ARRAY_CRC, crc32(payload), _TAG24_MARK, 0x58, n)
                   if 24 <= n < 0x100 else record_head(payload))
        buffer += payload
        self.next_seq = seq + 1
        if len(buffer) > _AUTO_FLUSH:
            self.flush()
        return seq

    def flush(self) -> None:
        with self._flushing:
            buffer = self._buffer
            if not buffer:
                return
            data = bytes(buffer)
            del buffer[: len(data)]  # only what was copied: a record appended meanwhile stays
            self._file.write(data)
            self._file.flush()

    def size(self) -> int:
        """Bytes written so far, buffered ones included."""
        return self._file.tell() + len(self._buffer)

    def fileno(self) -> int:
        return self._file.fileno()

    def sync(self) -> None:
        self.flush()
        os.fdatasync(self._file.fileno())

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True
            self._file.close()

