"""Appending records to a journal."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from ..errors import JournalError
from ._codec import encode_record, event_tree
from ._events import EventBase, Header
from ._file import JournalFile, JournalSink
from ._reader import JournalContents, read_journal

__all__ = ["JournalWriter"]


class JournalWriter:
    """Appends records to one service's journal.

    ``flush`` hands buffered records to the OS; ``sync`` also makes them durable (fdatasync).
    """

    def __init__(self, path: str | os.PathLike[str], file: JournalSink, next_seq: int) -> None:
        self.path = Path(path)
        self._file = file
        self.next_seq = next_seq
        self.dirty = False
        # Writes come from one call at a time, but a group commit flushes from another thread:
        # the lock keeps a flush from losing the dirty mark of a record written during it.
        self._lock = threading.Lock()

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
        """Append one event given as ``[kind, seq, ...fields]``, its seq set here (the hot
        path: no Struct is built; nested Structs must already be lists)."""
        with self._lock:
            tree[1] = self.next_seq
            self._file.write(encode_record(tree))
            self.next_seq += 1
            self.dirty = True
            return self.next_seq - 1

    def flush(self) -> None:
        with self._lock:
            if self.dirty:
                self._file.flush()
                self.dirty = False

    def size(self) -> int:
        """Bytes written so far, buffered ones included."""
        return self._file.tell()

    def fileno(self) -> int:
        return self._file.fileno()

    def sync(self) -> None:
        self.flush()
        os.fdatasync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()
