"""A journal's file on disk: appends that overwrite space allocated ahead of them.

A durable record costs an ``fdatasync``. When the write grew the file, that sync also writes the
file's new size (a metadata update through the filesystem's journal); when the write lands in
space the file already has, it writes the data alone, measured about 30% faster. So the file is
extended in chunks (``fallocate``, which reads back as zeros), and records overwrite the zeros
in front of them. Closing the file cuts it back to its last record, so a journal at rest is
exactly its records; a process that dies leaves the zeros it had not reached yet after them,
which the reader takes for free space (``docs/journal-format.md`` §5: a record never starts
with a zero byte).

Each ``write`` hands its bytes to the OS at once (the writer buffers records, not its file);
a lock keeps writes from two threads (the writing one and a group commit's leader) one at a
time.

The file's system calls are ``posix``'s own functions: the compartment interposes ``os``'s
names (a service's code that calls ``os.pwrite`` is refused or journaled), and the journal,
which writes for every service, must not pay a service's guard on each flush.
"""

from __future__ import annotations

import errno
import os
import posix
import threading
from pathlib import Path
from typing import Protocol

__all__ = ["JournalFile", "JournalSink", "sync_data"]

sync_data = posix.fdatasync
"""``fdatasync``, uninterposed: what makes a journal's records durable."""


class JournalSink(Protocol):
    """What a ``JournalWriter`` writes its records to: a ``JournalFile``, or any binary file."""

    @property
    def closed(self) -> bool: ...

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...

    def fileno(self) -> int: ...

    def tell(self) -> int: ...

    def close(self) -> None: ...

_MIN_CHUNK = 256 * 1024
_MAX_CHUNK = 16 * 1024 * 1024
_BLOCK = 4096
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.ENODEV}


class JournalFile:
    """The file object of a ``JournalWriter``: ``write``, ``flush``, ``fileno``, ``close``."""

    def __init__(self, path: str | os.PathLike[str], fd: int, end: int) -> None:
        self.path = Path(path)
        self._fd = fd
        self.end = end
        """Where the next record goes: the end of the last one written out."""
        self.allocated = posix.fstat(fd).st_size
        """The file's size: the bytes from ``end`` up to it are free space (zeros)."""
        self._writing = threading.Lock()
        self._preallocate = True
        self.closed = False

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> JournalFile:
        """A new, empty journal file at ``path`` (replacing any file there)."""
        return cls(path, posix.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666), 0)

    @classmethod
    def continue_at(cls, path: str | os.PathLike[str], end: int) -> JournalFile:
        """An existing journal file, written on from ``end``, the end of its last record
        (anything after it must be free space)."""
        return cls(path, posix.open(path, os.O_RDWR), end)

    def write(self, data: bytes) -> int:
        """Hand ``data`` to the OS at the journal's end: nothing waits here, since the writer
        keeps its records until it flushes them (``RecordBuffer``), and one copy of them is
        enough."""
        with self._writing:
            n = len(data)
            if self.end + n > self.allocated:
                self._extend(self.end + n)
            done = posix.pwrite(self._fd, data, self.end)
            while done < n:  # a short write: the rest, from where it stopped
                done += posix.pwrite(self._fd, memoryview(data)[done:], self.end + done)
            self.end += n
            self.allocated = max(self.allocated, self.end)
        return n

    def flush(self) -> None:
        """Nothing to do: ``write`` has handed every record to the OS."""

    def _extend(self, needed: int) -> None:
        """Allocate space up to at least ``needed`` bytes, and a chunk beyond: a quarter of
        the journal's size, within bounds, so that few syncs ever write a new size."""
        if not self._preallocate:
            return
        chunk = min(_MAX_CHUNK, max(_MIN_CHUNK, needed // 4))
        size = -(-(needed + chunk) // _BLOCK) * _BLOCK
        try:
            posix.posix_fallocate(self._fd, self.allocated, size - self.allocated)
        except OSError as exc:
            # A filesystem that cannot allocate ahead (from now on), or a disk too full for a
            # chunk (this time): the records grow the file as they are written, as appends do.
            if exc.errno in _UNSUPPORTED:
                self._preallocate = False
            elif exc.errno != errno.ENOSPC:
                raise
            return
        self.allocated = size

    def fileno(self) -> int:
        return self._fd

    def tell(self) -> int:
        """The journal's size: where the next record goes."""
        return self.end

    def close(self) -> None:
        """Write out what is pending and cut the free space off: the file at rest holds its
        records only."""
        if self.closed:
            return
        try:
            self.flush()
            if self.allocated > self.end:
                posix.ftruncate(self._fd, self.end)
        finally:
            self.closed = True
            posix.close(self._fd)
