"""Group commit: a reply leaves only after its events are on disk, and concurrent calls share
one fdatasync.

The first caller to need durability becomes the leader: it flushes and syncs everything written
so far, outside the lock, while later callers wait for the next round. Under load one sync covers
many calls; alone, a call pays for exactly one, and the leader is the thread that will send its
reply: no other thread is woken for the sync (a wake-up each way costs tens of µs across vCPUs,
and the thread then works cold). The journal's file is allocated ahead (``JournalFile``), so
the sync writes the records alone, never a new file size (``tests/test_journal_free_space.py``).
"""

from __future__ import annotations

import threading

from ..journal import JournalWriter, sync_data


class GroupCommit:
    def __init__(self, writer: JournalWriter, *, enabled: bool = True) -> None:
        self.writer = writer
        self.enabled = enabled
        self._cond = threading.Condition()
        self._durable = writer.next_seq  # records below this seq are on disk
        self._syncing = False
        self.syncs = 0

    def wait_durable(self) -> None:
        """Return once every record written so far is on disk."""
        if not self.enabled:
            self.writer.flush()
            return
        target = self.writer.next_seq
        with self._cond:
            while self._durable < target:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                self._cond.release()
                try:
                    covered = self.writer.next_seq
                    self.writer.flush()
                    sync_data(self.writer.fileno())
                finally:
                    self._cond.acquire()
                    self._syncing = False
                self._durable = max(self._durable, covered)
                self.syncs += 1
                self._cond.notify_all()
