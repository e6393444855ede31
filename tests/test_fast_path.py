"""The in-process fast path and the lock-free journal writer.

The fast path (``distdev.service._fast``) writes a common service-to-service call's four records
from bytes encoded once; the general path builds and encodes each record on its own. They must
write the same journals byte for byte: a randomized workload runs once with the fast path and
once without it (its internal switch), and the two runs' journals are compared, then replayed.

The writer's buffer is appended to without a lock while a group commit flushes it from another
thread: a stress test writes from one thread and flushes from another, and checks that every
record reached the file, whole and in order.
"""

from __future__ import annotations

import random
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from distdev.journal import FORMAT_NAME, FORMAT_VERSION, Header, JournalWriter, read_journal

# -- the writer ---------------------------------------------------------------------------------


def _header() -> Header:
    return Header(0, FORMAT_NAME, FORMAT_VERSION, "stress", "0.1.0", "3.11", "0", "/app",
                  "stress.py", [])


def test_writer_flush_from_another_thread_loses_nothing(tmp_path: Path) -> None:
    """One thread appends records of varied sizes while another flushes as fast as it can (a
    group commit's leader): the file holds every record, whole and in order."""
    path = tmp_path / "journal.cbor"
    writer = JournalWriter.create(path, _header())
    count = 20_000
    sizes = random.Random(18).choices([0, 5, 30, 300, 70_000], weights=[5, 5, 5, 3, 1], k=count)
    done = threading.Event()
    flushes = 0

    def flush_until_done() -> None:
        nonlocal flushes
        while not done.is_set():
            writer.flush()
            flushes += 1

    flusher = threading.Thread(target=flush_until_done)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    flusher.start()
    try:
        for i, size in enumerate(sizes):
            writer.write_fields(["output", 0, "stdout", f"{i}:" + "x" * size])
    finally:
        done.set()
        flusher.join()
        sys.setswitchinterval(interval)
    writer.close()
    events = read_journal(path).events
    texts = [e.text for e in events[1:]]  # type: ignore[attr-defined]
    assert texts == [f"{i}:" + "x" * size for i, size in enumerate(sizes)]
    assert [e.seq for e in events] == list(range(count + 1))
    assert flushes > 1  # the flusher did run while records were written


def test_writer_encoded_record_matches_fields(tmp_path: Path) -> None:
    """A record written from pre-encoded parts is the record ``write_fields`` writes."""
    import cbor2

    from distdev.membrane import dumps

    for seq in (1, 23, 24, 255, 256, 65_536):
        a = JournalWriter(tmp_path / "a", _Sink(), seq)
        b = JournalWriter(tmp_path / "b", _Sink(), seq)
        fields: list[Any] = ["app/worker", "add", [1, -0.0, 2**70, "s"], {"k": None}]
        a.write_fields(["call-out", 0, *fields])
        b.write_encoded(b"\x86" + cbor2.dumps("call-out"), b"".join(dumps(f) for f in fields))
        a.flush()
        b.flush()
        assert a._file.data == b._file.data  # type: ignore[attr-defined]


class _Sink:
    """A file that keeps what it is given (the writer's whole interface to its file)."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError("no file")

    def close(self) -> None:
        pass
