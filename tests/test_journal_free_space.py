"""Journals allocated ahead: the zeros after the last record are free space, never a record.

A journal's file is extended in chunks of zeros that records then overwrite (``JournalFile``),
so a process that dies leaves zeros after its last record. The rule (docs/journal-format.md §5):
a run of zero bytes from a record boundary to the end of the file is free space; a record cut
short is torn whatever follows it, zeros included. Checked here against a journal recorded by a
real two-service application, torn at every byte of its last record, through ``read_journal``,
``distdev journal repair``, ``JournalWriter.append_to`` and a service killed with ``kill -9``
under ``distdev up`` (real processes, real sockets). And the syncs a group commit makes over
such a file, with real fdatasyncs: a call alone is synced once, by its own thread, and the sync
never writes a new file size; concurrent calls each return only once their record is durable.
"""

from __future__ import annotations

import posix
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import write_files
from support.engines import counting_build, running, tally_seen_by_replay

import distdev
from distdev.cli import run as run_cli
from distdev.engines import GroupCommit, _durable
from distdev.errors import JournalCorruptError, JournalFormatError
from distdev.journal import parse_journal
from distdev.journal._file import JournalFile
from distdev.testing import load_app

APP_FILES = {
    "app.py": """
        from distdev import import_service

        child = import_service("./child.py")


        def ping(n: int) -> int:
            return child.double(n)
    """,
    "child.py": """
        calls = []


        def double(n: int) -> int:
            calls.append(n)
            return 2 * n
    """,
}
FREE = 4096  # zeros a chunk leaves after the records


@pytest.fixture(scope="module", autouse=True)
def bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Replays materialize bundles under XDG_CACHE_HOME: keep them out of the user's home."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        yield cache


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The child's journal after three calls, recorded once and closed (at rest: no zeros)."""
    root = write_files(tmp_path_factory.mktemp("app"), APP_FILES)
    app = load_app(root / "app.py", out=root / "out", state=root / "state")
    try:
        for i in range(3):
            assert app.service("app").ping(i) == 2 * i
        path = app.journal("app/child")
    finally:
        app.close()
    return path.read_bytes()


def write(folder: Path, data: bytes) -> Path:
    path = folder / "journal.cbor"
    path.write_bytes(data)
    return path


def side_files(journal: Path) -> list[Path]:
    return sorted(journal.parent.glob(f"{journal.name}.cut-at-*"))


def test_a_journal_at_rest_has_no_free_space(journal: bytes) -> None:
    contents = parse_journal(journal)
    assert contents.torn is None and contents.free == 0
    assert contents.good_size == contents.size == len(journal)


@pytest.mark.parametrize("zeros", [1, 7, FREE])
def test_zeros_after_the_last_record_are_free_space(journal: bytes, tmp_path: Path,
                                                    zeros: int) -> None:
    full = parse_journal(journal)
    contents = distdev.read_journal(write(tmp_path, journal + bytes(zeros)))
    assert contents.torn is None
    assert (contents.free, contents.good_size, contents.size) == (
        zeros, len(journal), len(journal) + zeros)
    assert contents.events == full.events and contents.offsets == full.offsets
    assert distdev.replay(contents).state() == {"calls": [0, 1, 2]}


def test_a_last_record_torn_at_every_byte_is_torn_whatever_zeros_follow(
    journal: bytes, tmp_path: Path
) -> None:
    """The record's first bytes reached the disk and the rest are still the allocation's
    zeros (or the file ends there): torn at the record, every record before it kept."""
    full = parse_journal(journal)
    last = full.offsets[-1]
    for cut in range(last + 1, len(journal)):
        for after in (0, len(journal) - cut, len(journal) - cut + FREE):
            contents = parse_journal(journal[:cut] + bytes(after))
            assert contents.torn is not None, f"cut at {cut}, {after} zeros after"
            assert (contents.torn.offset, contents.torn.seq) == (last, len(full.events) - 1)
            assert contents.events == full.events[:-1]
            assert contents.good_size == last


def test_a_last_record_whose_front_is_missing_is_torn_and_one_never_written_is_free(
    journal: bytes,
) -> None:
    """Its later bytes reached the disk but its first ``k`` did not (zeros there): no record
    starts with a zero byte, so that is a torn record; with none of it written, free space."""
    full = parse_journal(journal)
    last = full.offsets[-1]
    for k in range(1, len(journal) - last):
        contents = parse_journal(journal[:last] + bytes(k) + journal[last + k:] + bytes(FREE))
        assert contents.torn is not None, f"first {k} bytes missing"
        assert contents.torn.offset == last
        assert contents.events == full.events[:-1]
    never = parse_journal(journal[:last] + bytes(len(journal) - last + FREE))
    assert never.torn is None
    assert never.events == full.events[:-1]
    assert never.free == len(journal) - last + FREE


def test_zeros_between_records_are_corruption_not_free_space(journal: bytes) -> None:
    """A run of zeros is free space only up to the end of the file: intact records after it
    would be lost by dropping it."""
    offsets = parse_journal(journal).offsets
    middle = offsets[len(offsets) // 2]
    hole = journal[:middle] + bytes(offsets[len(offsets) // 2 + 1] - middle) + journal[
        offsets[len(offsets) // 2 + 1]:]
    with pytest.raises(JournalCorruptError) as raised:
        parse_journal(hole)
    assert raised.value.offset == middle


def test_a_file_of_zeros_is_not_a_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalFormatError, match="only zero bytes"):
        distdev.read_journal(write(tmp_path, bytes(FREE)))


def test_journal_repair_leaves_free_space_alone_and_keeps_it_out_of_side_files(
    journal: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    intact = write(tmp_path, journal + bytes(FREE))
    assert run_cli(["journal", "repair", str(intact)]) == 0
    assert "nothing to repair" in capsys.readouterr().out
    assert intact.read_bytes() == journal + bytes(FREE) and side_files(intact) == []

    last = parse_journal(journal).offsets[-1]
    initial = journal[last + 8]  # the payload's byte-string head: 40+n, or 58..5b and a length
    head = last + 9 + (0 if initial < 0x58 else 1 << (initial - 0x58))
    for cut in range(last + 1, len(journal)):
        torn = journal[:cut] + bytes(FREE)
        path = write(tmp_path, torn)
        assert run_cli(["journal", "repair", str(path)]) == 0
        (side,) = side_files(path)
        kept = side.read_bytes()
        # Every byte written is kept, in order; with the record's head whole, exactly the
        # bytes it claims (zeros where it was not written), the allocation's zeros dropped.
        assert kept == torn[last:last + len(kept)] and len(kept) >= cut - last, f"cut at {cut}"
        if cut >= head:
            assert len(kept) == len(journal) - last, f"cut at {cut}"
        assert path.read_bytes() == journal[:last]
        side.unlink()


def test_append_to_continues_a_preallocated_journal_where_its_records_end(
    journal: bytes, tmp_path: Path
) -> None:
    full = parse_journal(journal)
    last = full.offsets[-1]
    path = write(tmp_path, journal[:last] + bytes(FREE))
    writer = distdev.JournalWriter.append_to(path)
    assert writer.write(full.events[-1]) == len(full.events) - 1
    writer.flush()
    live = distdev.read_journal(path)
    assert live.events == full.events and live.torn is None
    assert live.free == len(journal[:last]) + FREE - len(journal)  # written over the zeros
    writer.close()
    assert path.read_bytes() == journal  # at rest: the records and nothing else


def test_a_journal_file_allocates_ahead_and_is_cut_back_when_closed(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    file = JournalFile.create(path)
    record = b"\x82" + bytes(range(1, 100))
    for _ in range(10):
        file.write(record)  # handed to the OS at once: the writer buffers, not its file
    assert file.end == 10 * len(record) < path.stat().st_size == file.allocated
    assert path.read_bytes()[file.end:] == bytes(file.allocated - file.end)
    file.write(record)
    file.close()
    assert path.read_bytes() == record * 11
    reopened = JournalFile.continue_at(path, len(record) * 11)
    reopened.write(record)
    reopened.close()
    assert path.read_bytes() == record * 12


def test_a_journal_file_lands_a_write_from_another_thread_after_the_one_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that another thread starts while one is under way (a group commit's leader
    flushing beside the writing thread) waits for it and lands after it, each whole."""
    path = tmp_path / "j.bin"
    file = JournalFile.create(path)
    real_pwrite = posix.pwrite  # what the file calls (os.pwrite is a service's, interposed)
    during = b"\x82during"
    appender = threading.Thread(target=file.write, args=(during,))

    def pwrite_then_append(fd: int, data: bytes, offset: int) -> int:
        if data == b"\x82first":
            appender.start()  # it waits for this write to finish
            assert appender.is_alive()
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(posix, "pwrite", pwrite_then_append)
    file.write(b"\x82first")
    appender.join(10)
    monkeypatch.undo()
    assert not appender.is_alive()
    file.close()
    assert path.read_bytes() == b"\x82first" + during


@pytest.mark.slow
def test_a_service_killed_with_free_space_in_its_journal_restarts_where_its_records_end(
    tmp_path: Path,
) -> None:
    """``kill -9`` leaves the allocation's zeros after the tally's last durable record: the
    restarted process reads them as free space (no torn record is cut), writes on over them,
    and at rest the journal is its records alone and replays to every acknowledged call."""
    _, out = counting_build(tmp_path)
    with running(out, tmp_path / "state") as deployment:
        for n in range(1, 4):
            assert deployment.call("app", "add", n) == n
        tally = deployment.journal("app/tally")
        before = distdev.read_journal(tally)
        assert before.torn is None and before.free > 0, "the journal is allocated ahead"
        deployment.kill_and_wait_for_restart("app/tally")
        assert "torn" not in deployment.log("app/tally")
        for n in range(4, 7):
            assert deployment.call("app", "add", n) == n
        after = distdev.read_journal(tally)
        assert after.events[:len(before.events)] == before.events
        assert after.torn is None and after.free > 0
    at_rest = distdev.read_journal(tally)
    assert at_rest.free == 0 and at_rest.size == tally.stat().st_size
    assert tally_seen_by_replay(tally) == [1, 2, 3, 4, 5, 6]


# --- syncs: once per call alone, by the caller itself, inside the space allocated ahead -------


class Records:
    """What a group commit syncs: records appended to a real ``JournalFile``, counted."""

    def __init__(self, path: Path) -> None:
        self.file = JournalFile.create(path)
        self.next_seq = 0
        self._lock = threading.Lock()

    def write(self, record: bytes) -> int:
        """Append ``record``; the offset where it ends."""
        with self._lock:
            self.file.write(record)
            self.next_seq += 1
            return self.file.tell()

    def flush(self) -> None:
        self.file.flush()

    def fileno(self) -> int:
        return self.file.fileno()


def watched_syncs(monkeypatch: pytest.MonkeyPatch, records: Records) -> list[tuple[int, int, int]]:
    """Each fdatasync from now on: (thread, file size, bytes durable after it)."""
    syncs: list[tuple[int, int, int]] = []
    real = _durable.sync_data  # the group commit's fdatasync

    def fdatasync(fd: int) -> None:
        size = posix.fstat(fd).st_size
        real(fd)
        syncs.append((threading.get_ident(), size, records.file.end))

    monkeypatch.setattr(_durable, "sync_data", fdatasync)
    return syncs


def test_a_call_alone_is_synced_once_by_its_own_thread_without_growing_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sequential durable call: its thread is the group commit's leader (no other thread
    is woken for the sync), and the sync writes data alone, never a new file size."""
    records = Records(tmp_path / "j.bin")
    commit = GroupCommit(records)  # type: ignore[arg-type]  # what it uses of a writer
    syncs = watched_syncs(monkeypatch, records)
    for i in range(50):
        end = records.write(b"\x82" + bytes([i + 1]) * 105)  # a call-in and return's size
        commit.wait_durable()
        assert syncs[-1][2] >= end, "the wait returned before its record was durable"
    assert len(syncs) == commit.syncs == 50
    assert {thread for thread, _, _ in syncs} == {threading.get_ident()}
    assert len({size for _, size, _ in syncs}) == 1, "a sync wrote a new size: the file grew"
    records.file.close()


def test_concurrent_calls_share_syncs_and_each_returns_once_its_record_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = Records(tmp_path / "j.bin")
    commit = GroupCommit(records)  # type: ignore[arg-type]
    syncs = watched_syncs(monkeypatch, records)
    early: list[tuple[int, int]] = []
    start = threading.Barrier(8)

    def caller(n: int) -> None:
        start.wait()
        for _ in range(20):
            end = records.write(b"\x82" + bytes([n + 1]) * 105)
            commit.wait_durable()
            durable = max(after for _, _, after in syncs)
            if durable < end:
                early.append((end, durable))

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert early == [], "a wait returned before its record was durable"
    assert 1 <= len(syncs) == commit.syncs <= 8 * 20
    records.file.close()
