"""Appending records to a journal."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import JournalError
from ..membrane import dumps
from ._codec import FastRecordBuffer, event_tree
from ._events import EventBase, Header
from ._file import JournalFile, JournalSink, sync_data
from ._reader import JournalContents, read_journal

__all__ = ["JournalWriter"]

_AUTO_FLUSH = 1 << 20
"""Bytes buffered before the writing thread flushes them itself (a long call that nobody
flushes must not hold its whole journal in memory)."""


class JournalWriter:
    """Appends records to one service's journal.

    Records go into an in-memory buffer (``RecordBuffer``: the framed records and the next
    seq) without a lock: one call at a time writes a service's records (its call gate
    guarantees it), and a record's append is one step under the interpreter lock. ``flush``
    hands them to the file — from the writing thread or another (a group commit's leader): it
    takes every record held in one step too, so whatever is appended meanwhile stays for the
    next flush. A record's bytes are in the buffer before ``next_seq`` counts
    it, so a flush that reads ``next_seq`` first covers every record below it. ``sync`` also
    makes them durable (fdatasync).

    Of its file the writer uses ``write(bytes)``, ``flush()``, ``fileno()`` and ``close()``
    only, so any file-like layer with those (a preallocated journal file) can carry it.
    """

    write_encoded: Callable[..., int]
    """``write_encoded(start, *rest) -> seq``: append one event given as its CBOR payload split
    around the seq: ``start`` (the array's head and the kind) and ``rest`` (the encodings of
    the fields after the seq, in order). The bytes are those ``write_fields`` writes for the
    same event (the hot path: fields encoded once may go to two journals). It is the buffer's
    own ``append``, so the hot path calls C directly where the package was built with a
    compiler (``benchmarks/bench_membrane.py`` says what a record costs)."""

    def __init__(self, path: str | os.PathLike[str], file: JournalSink, next_seq: int) -> None:
        self.path = Path(path)
        self._file = file
        self._records = records = FastRecordBuffer(next_seq, _AUTO_FLUSH, self.flush)
        self.write_encoded = records.append
        self._flushing = threading.Lock()  # between flushes only; writes never take it
        self._closed = False

    @property
    def next_seq(self) -> int:
        """The seq of the next record."""
        return self._records.next_seq

    @property
    def dirty(self) -> bool:
        """Whether records wait in the buffer for a flush."""
        return bool(len(self._records))

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
        records = self._records
        tree[1] = records.next_seq
        return records.append_payload(dumps(tree))

    def flush(self) -> None:
        if not len(self._records):
            return  # nothing was appended before this call (the common flush after a call)
        with self._flushing:
            data = self._records.take()  # a record appended from now on stays for the next
            if not data:
                return
            self._file.write(data)
            self._file.flush()

    def size(self) -> int:
        """Bytes written so far, buffered ones included."""
        return self._file.tell() + len(self._records)

    def fileno(self) -> int:
        return self._file.fileno()

    def sync(self) -> None:
        self.flush()
        sync_data(self._file.fileno())

    def close(self) -> None:
        if not self._closed:
            self.flush()
            self._closed = True
            self._file.close()

