"""Bounded restore: checkpoints a live service writes, restores from the last one and the
records after it, and `distdev journal compact`.

Long journals are made in-process through the real path a live host takes (``go_live``: the
service restored from its built journal, the real ``Recorder`` and writer, its checkpoints
verified in a fresh module copy); the assertions are on the journal's structure (which records
a restore replays), never on time. The restart test runs real processes: `distdev up`, calls
over the real transport, `kill -9`, the supervisor's restore.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import run_distdev, write_files
from support.engines import TESTS, LocalDeployment, build, running, wait_until

import distdev
from distdev.engines._live import LiveService, go_live
from distdev.engines._restore import KEPT_PER_CALLER, DedupTable
from distdev.journal import CallIn, Checkpoint, Raise, Return, Switch, read_journal
from distdev.replayer import CheckpointPolicy

APP = {
    "app.py": '''
        import enum
        import random
        import time
        from dataclasses import dataclass, field

        import distdev
        from distdev import host

        import store

        host.process()


        class Level(enum.Enum):
            LOW = 1
            HIGH = 2


        @dataclass
        class Account:
            owner: str
            cents: int = 0
            history: list[int] = field(default_factory=list)


        class Window:
            """A plain class with slots: the last few amounts."""

            __slots__ = ("size", "items")

            def __init__(self, size: int) -> None:
                self.size = size
                self.items: list[int] = []

            def push(self, value: int) -> None:
                self.items = (self.items + [value])[-self.size:]


        accounts: dict[str, Account] = {}
        window = Window(4)
        level = Level.LOW
        started = time.time()
        handlers = {"double": None}


        def _double(n: int) -> int:
            return 2 * n


        def deposit(owner: str, cents: int) -> int:
            global level
            account = accounts.setdefault(owner, Account(owner))
            if distdev.patched("history"):
                account.history = (account.history + [cents])[-3:]
            account.cents += cents
            window.push(cents)
            store.total += cents
            handlers["double"] = _double
            level = Level.HIGH if account.cents > 10_000 else Level.LOW
            return account.cents


        def draw() -> float:
            """The service's own random generator: state no record holds."""
            return random.random()


        def total() -> int:
            return store.total
    ''',
    "store.py": '''
        total = 0
    ''',
}


class Alone:
    """The transport of a service restored on its own: its code here calls no other service."""

    def send(self, *args: Any) -> Any:
        raise AssertionError("this service calls nobody")

    def exports(self, target: str) -> None:
        return None


def state_journal(tmp_path: Path, files: dict[str, str]) -> Path:
    """The app of ``files`` built, its built journal copied to a state journal of its own."""
    source = write_files(tmp_path / "src", files)
    app = distdev.App(source / "app.py", out=tmp_path / "out")
    app.build()
    app.close()
    journal = tmp_path / "state" / "journal.cbor"
    journal.parent.mkdir()
    journal.write_bytes((tmp_path / "out" / "services" / "app" / "journal.cbor").read_bytes())
    return journal


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """The app's built journal, copied to a state journal of its own."""
    return state_journal(tmp_path, APP)


def live(journal: Path, log: list[str], events: int = 200) -> LiveService:
    policy = CheckpointPolicy(events=events, share=None)  # every `events` records, whatever it costs
    return go_live(journal, Alone(), durable=False, app_files=None, log=log.append,
                   checkpoints=policy)


def stop(service: LiveService) -> None:
    """The service stopped as ``distdev down`` stops it (which checkpoints it)."""
    service.close()
    service.service.compartment.unload()


def crash(service: LiveService) -> None:
    """The service ended as a ``kill -9`` ends it: everything it journaled is in the file, and
    no checkpoint is taken on the way out."""
    service.writer.close()
    if service.checkpoints is not None:
        service.checkpoints.close()
    service.service.compartment.unload()


def deposit_many(service: LiveService, calls: int, first: int = 0) -> None:
    proxy = service.restored.proxy()
    for i in range(first, first + calls):
        proxy.deposit(f"owner{i % 5}", i)


def open_calls_at_checkpoints(journal: Path) -> list[int]:
    """For each checkpoint, how many calls were open there."""
    depth, found = 0, []
    for event in read_journal(journal).events:
        if type(event) is CallIn:
            depth += 1
        elif type(event) in (Return, Raise):
            depth -= 1
        elif type(event) is Checkpoint:
            found.append(depth)
    return found


def test_restore_replays_only_the_records_after_the_last_checkpoint(built: Path) -> None:
    log: list[str] = []
    service = live(built, log)
    service.restored.proxy().draw()  # the generator is seeded (journaled) here ...
    deposit_many(service, 1500)  # ~4,500 records
    drawn = [service.restored.proxy().draw() for _ in range(3)]  # ... and draws leave no record
    state = service.restored.state()
    crash(service)

    contents = read_journal(built)
    checkpoints = [e.seq for e in contents.events if type(e) is Checkpoint]
    assert len(checkpoints) >= 10, log
    assert open_calls_at_checkpoints(built) == [0] * len(checkpoints)  # idle points only

    restored = distdev.replay(built)
    assert restored.checkpoint == checkpoints[-1]
    assert restored.events == len(contents.events) - 1 - checkpoints[-1]
    assert restored.events <= 200 + 10  # the tail: at most a policy's worth and one call
    assert restored.state() == state
    whole = distdev.replay(built, from_checkpoint=False)  # checks every checkpoint on its way
    assert whole.events == len(contents.events) - 1
    assert whole.state() == state
    assert restored.service.state_digest() == whole.service.state_digest()
    # what no record holds is restored too: the random generator goes on the same way
    assert restored.proxy().draw() == whole.proxy().draw()
    assert len(set(drawn)) == 3


def test_a_restarted_service_takes_its_state_from_the_checkpoint_and_goes_on(built: Path) -> None:
    log: list[str] = []
    first = live(built, log)
    deposit_many(first, 600)
    before = first.restored.state()
    stop(first)

    log.clear()
    second = live(built, log)
    assert second.restored.checkpoint is not None
    assert any("restored from the checkpoint at record" in line for line in log), log
    # it read the header, the top level and the records from the checkpoint on, nothing else
    assert second.restored.journal.skipped > 1000
    assert len(second.restored.journal.events) < 250
    assert second.restored.state() == before
    deposit_many(second, 600, first=600)
    after = second.restored.state()
    stop(second)
    assert distdev.replay(built).state() == after
    assert distdev.replay(built, from_checkpoint=False).state() == after


COMING_AND_GOING = {
    "app.py": '''
        from pathlib import Path

        seen: dict[str, int] = {}


        def step(i: int) -> int:
            g = globals()
            if i % 5 == 0:
                g[f"made{i % 7}"] = i  # a global no top level set
            elif i % 5 == 2:
                g.pop(f"made{(i - 2) % 7}", None)  # and gone again
            if i == 40:
                # a file of the application first read live: the service's bundle grows
                seen["table"] = len(Path(__file__).with_name("table.txt").read_text())
            seen["last"] = i
            return len(g)
    ''',
    "table.txt": "one two three\n",
}


def test_every_checkpoint_verifies_as_a_fresh_copy_would_while_globals_come_and_go(
        tmp_path: Path) -> None:
    """Checkpoints are verified in one copy of the service kept from one to the next; a global
    a call set since the last one, one a call deleted, and a file first read in between
    must each verify as in a fresh copy — and restore to the state the service held."""
    journal = state_journal(tmp_path, COMING_AND_GOING)
    log: list[str] = []
    service = go_live(journal, Alone(), durable=False, app_files=tmp_path / "out" / "app",
                      log=log.append,
                      checkpoints=CheckpointPolicy(events=6, growth=None, share=None))
    proxy = service.restored.proxy()
    states = []
    for i in range(120):
        proxy.step(i)
        states.append(service.restored.state())
    assert service.checkpoints is not None and service.checkpoints.written >= 30, log
    assert not [line for line in log if "WARNING" in line], log
    stop(service)

    contents = read_journal(journal)
    checkpoints = [e.seq for e in contents.events if type(e) is Checkpoint]
    # each checkpoint, loaded into a fresh copy by a restore of the journal as it stood
    # then, holds the state the service held then
    data = journal.read_bytes()
    for at in sorted({*checkpoints[::5], checkpoints[-1]}):
        calls_before = sum(1 for e in contents.events[:at] if type(e) is Return)
        then = tmp_path / f"at{at}" / "journal.cbor"
        then.parent.mkdir()
        ends = [*contents.offsets, len(data)]
        then.write_bytes(data[:ends[at + 1]])
        upto = distdev.replay(then)
        assert upto.checkpoint == at and upto.events == 0
        assert upto.state() == states[calls_before - 1], at
        upto.service.compartment.unload()
    restored = distdev.replay(journal)
    assert restored.state() == states[-1] and restored.state()["seen"]["table"] == 14


def test_a_checkpoint_pauses_collections_and_leaves_them_as_it_found_them(built: Path) -> None:
    """A checkpoint takes no garbage collection while the calls wait (loading the verifying
    copy allocates the whole state again), and leaves the collector as the service had it."""
    log: list[str] = []
    service = live(built, log, events=10**9)
    deposit_many(service, 50)
    checkpoints = service.checkpoints
    assert checkpoints is not None
    seen: list[bool] = []
    verify = checkpoints.verify

    class Watching:
        def __call__(self, snapshot: bytes) -> dict[str, list[str]]:
            seen.append(gc.isenabled())
            return verify(snapshot)

        def close(self) -> None:
            verify.close()

    checkpoints.verify = Watching()
    assert checkpoints.take() and gc.isenabled()
    gc.disable()  # a service that runs with the collector off keeps it off
    try:
        assert checkpoints.take() and not gc.isenabled()
    finally:
        gc.enable()
    assert seen == [False, False]
    stop(service)
    assert distdev.replay(built).state()["accounts"]


BOOK = {
    "app.py": '''
        book: dict[str, dict] = {}


        def place(i: int) -> int:
            book[f"order-{i}"] = {"sku": f"sku-{i % 97}", "qty": i % 7 + 1, "lines": [i, i + 1]}
            return len(book)
    ''',
}


@pytest.mark.parametrize("growth", [1.0, 0.25])
def test_a_large_state_is_checkpointed_no_more_bytes_than_the_records_between(
        tmp_path: Path, growth: float) -> None:
    """A state that outgrows its records (an order book) is written no oftener than its records
    fill ``growth`` times the last checkpoint's bytes: the journal is never mostly snapshots,
    and a restart replays at most about a checkpoint's size of records, then holds the state."""
    journal = state_journal(tmp_path, BOOK)
    log: list[str] = []
    for first in (0, 2000):  # and once restarted from a large checkpoint, it waits as long
        service = go_live(journal, Alone(), durable=False, app_files=None, log=log.append,
                          checkpoints=CheckpointPolicy(events=50, growth=growth, share=None))
        proxy = service.restored.proxy()
        for i in range(first, first + 1500):
            proxy.place(i)
        state = service.restored.state()
        crash(service)

    contents = read_journal(journal)
    ends = [*contents.offsets[1:], contents.good_size]
    size = {e.seq: ends[i] - contents.offsets[i] for i, e in enumerate(contents.events)}
    marks = [e.seq for e in contents.events if type(e) is Checkpoint]
    assert len(marks) >= 5, log  # the first ones, while the book is small, come every 50
    assert any("restored from the checkpoint" in line for line in log), log
    for before, after in zip(marks, marks[1:]):
        between = sum(size[seq] for seq in range(before + 1, after))
        assert between >= growth * size[before], (before, after)
        assert after - before >= 50
    checkpoint_bytes = sum(size[seq] for seq in marks)
    assert checkpoint_bytes <= size[marks[-1]] + (sum(size.values()) - checkpoint_bytes) / growth
    restored = distdev.replay(journal)
    assert restored.checkpoint == marks[-1] and restored.state() == state
    tail = sum(size[seq] for seq in range(marks[-1] + 1, len(contents.events)))
    assert tail <= growth * size[marks[-1]] + 64 * max(size.values()), "the tail is bounded"


def test_a_service_stopped_as_down_stops_it_is_checkpointed_and_restarts_replaying_nothing(
        built: Path) -> None:
    log: list[str] = []
    first = live(built, log, events=10**9)  # no checkpoint while it runs
    deposit_many(first, 50)
    before = first.restored.state()
    stop(first)
    events = read_journal(built).events
    assert [type(e) for e in events].count(Checkpoint) == 1 and type(events[-1]) is Checkpoint

    log.clear()
    second = live(built, log)
    at = second.restored.checkpoint
    assert at is not None and at + second.restored.journal.skipped == len(events) - 1, log
    assert second.restored.events == 0
    assert second.restored.state() == before
    stop(second)  # nothing journaled since: no second checkpoint
    assert len(read_journal(built).events) == len(events)


def test_an_index_that_names_no_checkpoint_makes_the_restart_read_the_whole_journal(
        built: Path) -> None:
    first = live(built, [])
    deposit_many(first, 300)
    before = first.restored.state()
    stop(first)
    index = built.with_name(built.name + ".checkpoint")
    offset, seq = map(int, index.read_text().split())
    for wrong in (f"{offset + 1} {seq}", f"{offset} {seq + 1}", "garbage"):
        index.write_text(wrong)
        again = live(built, [], events=10**9)  # no new checkpoint: the index stays wrong
        assert again.restored.journal.skipped == 0
        assert again.restored.checkpoint is not None  # from the checkpoint, read whole
        assert again.restored.state() == before
        stop(again)


def test_compaction_shrinks_a_journal_to_its_state_and_replays_to_the_same_digest(
        built: Path, tmp_path: Path) -> None:
    sizes = {}
    for calls in (900, 2700):
        journal = tmp_path / f"j{calls}" / "journal.cbor"
        journal.parent.mkdir()
        journal.write_bytes(built.read_bytes())
        service = live(journal, [])
        deposit_many(service, calls)
        stop(service)
        whole = distdev.replay(journal, from_checkpoint=False).service.state_digest()
        original = journal.read_bytes()

        result = run_distdev("journal", "compact", journal, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        kept = Path(report["kept_aside"])
        assert kept.read_bytes() == original  # the old journal is kept, byte for byte
        assert report["events_after"] < 220 and report["bytes_after"] < len(original) / 4
        sizes[calls] = report["bytes_after"] - tail_bytes(journal)

        compacted = distdev.replay(journal)
        assert compacted.service.state_digest() == whole
        replayed = run_distdev("replay", journal, "--json")
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)["state"] == compacted.state()
        checked = run_distdev("journal", "check", journal)
        assert checked.returncode == 0, checked.stderr
    # what is left besides the tail is the state, not the history: three times the calls,
    # about the same size (the state itself grows only a little: five accounts, a window)
    assert sizes[2700] < sizes[900] * 1.5, sizes


def tail_bytes(journal: Path) -> int:
    contents = read_journal(journal)
    at = max(e.seq for e in contents.events if type(e) is Checkpoint)
    return contents.size - (contents.offsets[at + 1] if at + 1 < len(contents.offsets)
                            else contents.size)


def test_a_compacted_journal_goes_on_live_with_its_patches_and_answered_calls(
        built: Path) -> None:
    service = live(built, [])
    deposit_many(service, 300)
    # a call with an id, as one arrives over the network: its answer must survive compaction
    answer = service.service.handle_call("app/teller", "chain-1", "deposit", ["zoe", 5], {},
                                         "teller:9/0")
    # the next checkpoint is right after it: what the call answered is in it
    assert service.checkpoints is not None and service.checkpoints.take()
    deposit_many(service, 100, first=300)
    stop(service)
    result = run_distdev("journal", "compact", built)
    assert result.returncode == 0, result.stderr

    contents = read_journal(built)
    assert DedupTable.from_journal(contents).get("app/teller", "teller:9/0", ["zoe", 5], {}) \
        == (True, answer)
    again = live(built, [])
    assert "history" in again.service.patches  # no marker is written twice
    before = len(read_journal(built).events)
    again.restored.proxy().deposit("zoe", 1)
    stop(again)
    events = read_journal(built).events
    assert not any(getattr(e, "effect", None) == "distdev.patched" for e in events[before:])
    restored = distdev.replay(built)
    assert restored.namespace["accounts"]["zoe"].history == [5, 1]


def test_the_answered_calls_kept_are_each_callers_latest_live_as_after_a_restart() -> None:
    """The table of answered calls keeps each caller's latest ``KEPT_PER_CALLER`` and no more,
    as a checkpoint does: a live service answers the re-sends a restarted one would, and the
    table does not grow with the calls served. A call re-run under an id it answered (its
    caller went on differently) is not answered until it ends again."""
    table = DedupTable()
    for i in range(KEPT_PER_CALLER + 500):
        assert table.claim("app/teller", i, [i], {}) is None
        table.put("app/teller", i, [i], {}, True, 2 * i)
    table.put("app/clerk", "clerk:1/0", [], {}, True, "done")
    assert table.get("app/teller", 499, [499], {}) is None  # the oldest are gone
    assert table.get("app/teller", 500, [500], {}) == (True, 1000)
    kept = table.kept()
    assert [k[1] for k in kept if k[0] == "app/teller"] == list(range(500, KEPT_PER_CALLER + 500))
    assert [k[:2] for k in kept if k[0] == "app/clerk"] == [["app/clerk", "clerk:1/0"]]

    assert table.claim("app/teller", 900, ["other"], {}) is None  # re-run: not answered now
    assert 900 not in [k[1] for k in table.kept()]
    table.put("app/teller", 900, ["other"], {}, True, "again")
    assert table.kept()[KEPT_PER_CALLER - 1][1:6] == [900, ["other"], {}, True, "again"]

    restarted = DedupTable()  # as ``from_journal`` fills it from a checkpoint's answered calls
    for caller, caller_seq, args, kwargs, ok, outcome in table.kept():
        restarted.put(caller, caller_seq, args, kwargs, ok, outcome)
    for i in (499, 500, 900, KEPT_PER_CALLER + 499):
        assert restarted.get("app/teller", i, [i], {}) == table.get("app/teller", i, [i], {})


def test_a_compacted_journal_refuses_a_replay_that_stops_before_its_checkpoint(
        built: Path) -> None:
    service = live(built, [])
    deposit_many(service, 300)
    stop(service)
    assert run_distdev("journal", "compact", built).returncode == 0
    at = next(e.seq for e in read_journal(built).events if type(e) is Checkpoint)
    result = run_distdev("replay", built, "--until", str(at - 1))
    assert result.returncode == 1
    assert "was compacted" in result.stderr and "before-compact" in result.stderr


UNSNAPSHOTTABLE = {
    "app.py": '''
        counter = 0
        pending = None
        rule = None


        def bump() -> int:
            global counter
            counter += 1
            return counter


        def start() -> None:
            global pending, rule
            pending = (n for n in range(3))
            rule = lambda n: n + 1  # noqa: E731


        def stop() -> None:
            global pending, rule
            pending = rule = None
    ''',
}


def test_state_that_cannot_be_snapshotted_skips_the_checkpoint_naming_the_global(
        tmp_path: Path) -> None:
    source = write_files(tmp_path / "src", UNSNAPSHOTTABLE)
    app = distdev.App(source / "app.py", out=tmp_path / "out")
    app.build()
    app.close()
    journal = tmp_path / "journal.cbor"
    journal.write_bytes((tmp_path / "out" / "services" / "app" / "journal.cbor").read_bytes())
    log: list[str] = []
    service = live(journal, log, events=30)
    proxy = service.restored.proxy()
    proxy.start()
    for _ in range(60):
        proxy.bump()
    warnings = [line for line in log if "took no checkpoint" in line]
    assert len(warnings) == 1, log  # said once, not at every idle point
    assert "global 'pending'" in warnings[0] and "generator" in warnings[0]
    assert not [e for e in read_journal(journal).events if type(e) is Checkpoint]

    proxy.stop()
    for _ in range(60):
        proxy.bump()
    stop(service)
    restored = distdev.replay(journal)  # from the checkpoints taken once the state allowed
    assert restored.checkpoint is not None
    assert restored.namespace["counter"] == 120
    assert distdev.replay(journal, from_checkpoint=False).namespace["counter"] == 120


def test_a_lambda_in_a_global_is_named(tmp_path: Path) -> None:
    from distdev.replayer import SnapshotError, take_snapshot

    source = write_files(tmp_path / "src", UNSNAPSHOTTABLE)
    app = distdev.App(source / "app.py", out=tmp_path / "out")
    app.start()
    try:
        app.service("app").start()
        service = app.services["app"]
        service.module.pending = None
        with pytest.raises(SnapshotError, match="global 'rule'.*lambda"):
            take_snapshot(service)
    finally:
        app.close()


@pytest.mark.slow
def test_after_a_million_records_a_restore_reads_and_replays_what_a_young_one_does(
        built: Path, tmp_path: Path) -> None:
    """Restore time is that of the tail, not of the journal's length: a service a million
    records old, stopped at its longest tail (its next checkpoint one call from due), restores
    by reading the header, the top level, its last checkpoint and the tail, and replays no
    more records than a young service of a thousand records replays whole. (What each takes
    is measured in ``benchmarks/bench_restore.py``.)"""
    young_journal = tmp_path / "young" / "journal.cbor"
    young_journal.parent.mkdir()
    young_journal.write_bytes(built.read_bytes())
    young = go_live(young_journal, Alone(), durable=False, app_files=None, log=[].append,
                    checkpoints=None)
    while young.writer.next_seq < 1000:
        young.restored.proxy().deposit("young", 1)
    stop(young)

    policy = CheckpointPolicy(share=None)  # the default spacing in records, whatever it costs
    old = go_live(built, Alone(), durable=False, app_files=None, log=[].append,
                  checkpoints=policy)
    proxy, checkpoints = old.restored.proxy(), old.checkpoints
    assert checkpoints is not None
    i = 0
    while old.writer.next_seq < 1_000_000 or checkpoints.records_since < policy.events - 3:
        proxy.deposit(f"owner{i % 5}", i)
        i += 1
    state = old.restored.state()
    crash(old)

    log: list[str] = []
    again = go_live(built, Alone(), durable=False, app_files=None, log=log.append,
                    checkpoints=None)
    read = again.restored.journal
    top = again.restored.top_level
    assert again.restored.checkpoint is not None, log
    assert read.skipped > 990_000  # the history before the checkpoint was not read
    assert len(read.events) == top + 1 + again.restored.events  # top level, checkpoint, tail
    assert policy.events - 3 <= again.restored.events <= policy.events
    young_restored = distdev.replay(young_journal)
    assert young_restored.checkpoint is None
    assert again.restored.events <= young_restored.events + 3
    assert again.restored.state() == state
    stop(again)
    young_restored.service.compartment.unload()


# -- real processes ---------------------------------------------------------------------------


COUNTER = {
    "app.py": '''
        from distdev import host, import_service

        host.process()
        ledger = import_service("./ledger.py")
        calls = 0


        def add(n: int) -> int:
            global calls
            calls += 1
            return ledger.record(n)


        def count() -> int:
            return calls
    ''',
    "ledger.py": '''
        from distdev import host

        host.process()
        total = 0
        last: list[int] = []


        def record(n: int) -> int:
            global total, last
            total += n
            last = (last + [n])[-3:]
            return total


        def state() -> list[int]:
            return [total, *last]
    ''',
}


@pytest.fixture
def counter_up(tmp_path: Path) -> Iterator[LocalDeployment]:
    source = write_files(tmp_path / "src", COUNTER)
    build(source / "app.py", tmp_path / "out")
    with running(tmp_path / "out", tmp_path / "state") as deployment:
        yield deployment


@pytest.mark.slow
def test_a_service_killed_after_many_calls_restores_from_checkpoint_and_tail(
        counter_up: LocalDeployment) -> None:
    deployment = counter_up
    connection = deployment.connect("app")
    try:
        for n in range(1, 1201):  # ~7,000 records in the ledger's journal, ~8,000 in app's
            connection.call("test-client", f"chain-{n}", n, "add", [n], {})
    finally:
        connection.close()
    journal = deployment.journal("app/ledger")
    wait_until(lambda: any(type(e) is Checkpoint for e in read_journal(journal).events), 30,
               "a checkpoint in the ledger's journal")

    for victim in ("app/ledger", "app"):
        starts = deployment.log(victim).count(deployment.READY_LINE)
        killed = deployment.live_pid(victim)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda v=victim, k=killed, s=starts:
                   deployment.live_pid(v) != k
                   and deployment.log(v).count(deployment.READY_LINE) > s,
                   60, f"{victim} to restart after kill -9")
        assert "restored from the checkpoint at record" in deployment.log(victim), \
            deployment.log(victim)
    total = sum(range(1, 1201))
    assert deployment.call("app/ledger", "state") == [total, 1198, 1199, 1200]
    assert deployment.call("app", "count") == 1200
    # a re-sent call answered long before the last checkpoint (which came after call 900 or
    # so, and keeps the caller's last KEPT_PER_CALLER answers): its answer, not a second run
    connection = deployment.connect("app")
    try:
        assert connection.call("test-client", "chain-300", 300, "add", [300], {}) == \
            sum(range(1, 301))
    finally:
        connection.close()
    assert deployment.call("app", "count") == 1200
    assert deployment.call("app", "add", 1) == total + 1  # and it goes on


HELD = {
    "app.py": '''
        import os
        import time

        from distdev import host

        host.process()


        class Held:
            """Written by a checkpoint's pickler alone (a digest reads attributes): once
            armed, a checkpoint that writes it says so and waits for the test's word."""

            def __reduce__(self):
                if armed:
                    with open(armed[0] + ".checkpointing", "w"):
                        pass
                    deadline = time.monotonic() + 60
                    while not os.path.exists(armed[0]) and time.monotonic() < deadline:
                        time.sleep(0.005)
                return (Held, ())


        held = Held()
        armed = []
        total = 0


        def arm(path: str) -> None:
            armed.append(path)


        def add(n: int) -> int:
            global total
            total += n
            return total
    ''',
}


@pytest.mark.slow
def test_a_served_call_is_answered_before_the_checkpoint_it_found_due(tmp_path: Path) -> None:
    """A checkpoint found due at a call's end waits for the call's answer to leave: the
    caller does not wait for it too. The checkpoint here holds itself up until the test has
    seen every call before it answered (taken before the answer, it would wait for a word that
    waits for it); let go, it is written where those calls end and a restart restores from it."""
    source = write_files(tmp_path / "src", HELD)
    build(source / "app.py", tmp_path / "out")
    marker = tmp_path / "go-on"
    with running(tmp_path / "out", tmp_path / "state") as deployment:
        answered: list[int] = []
        failures: list[BaseException] = []
        stop = threading.Event()

        def client() -> None:
            connection = deployment.connect("app")
            try:
                connection.call("test-client", "arm", 0, "arm", [str(marker)], {})
                answered.append(0)
                n = 0
                while not stop.is_set():
                    n += 1
                    connection.call("test-client", f"add-{n}", n, "add", [n], {})
                    answered.append(n)
            except BaseException as exc:
                failures.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        started = Path(f"{marker}.checkpointing")
        wait_until(lambda: started.exists() or failures, 120, "a checkpoint to start")
        assert not failures, failures
        journal = deployment.journal("app")
        calls = [e for e in read_journal(journal).events if type(e) is CallIn]
        wait_until(lambda: len(answered) >= len(calls), 30,
                   f"the {len(calls)} calls journaled so far to be answered "
                   f"({len(answered)} were)")
        answered_while_held = len(answered)  # the next call waits for the checkpoint
        stop.set()
        marker.touch()
        thread.join(60)
        assert not thread.is_alive() and not failures, failures
        events = wait_until(lambda: (lambda es: es if any(type(e) is Checkpoint for e in es)
                                     else None)(read_journal(journal).events), 30,
                            "the checkpoint to be written")
        at = next(i for i, e in enumerate(events) if type(e) is Checkpoint)
        assert sum(type(e) is CallIn for e in events[:at]) == answered_while_held, \
            "the checkpoint follows exactly the calls answered while it was held up"
        assert all(type(e) is not CallIn for e in events[at - 1:at])  # at an idle point
        starts = deployment.log("app").count(deployment.READY_LINE)
        killed = deployment.live_pid("app")
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: deployment.live_pid("app") != killed
                   and deployment.log("app").count(deployment.READY_LINE) > starts,
                   60, "app to restart after kill -9")
        assert "restored from the checkpoint at record" in deployment.log("app")
        assert deployment.call("app", "add", 0) == sum(answered)


@pytest.mark.slow
def test_an_interleaving_service_checkpoints_only_where_no_call_is_open(tmp_path: Path) -> None:
    shutil.copytree(TESTS / "apps" / "interleaving", tmp_path / "src")
    result = run_distdev("build", tmp_path / "src" / "app.py", "-o", tmp_path / "out",
                         env={"ROOT_INTERLEAVE": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    with running(tmp_path / "out", tmp_path / "state") as deployment:
        failures: list[BaseException] = []

        def client(k: int) -> None:
            connection = deployment.connect("app", f"client-{k}")
            try:
                for i in range(60):  # 6 clients at once: calls interleave in the root
                    connection.call(f"client-{k}", f"chain-{k}-{i}", i, "relay",
                                    [f"{k}.{i}", "left" if (k + i) % 2 else "right"], {})
            except BaseException as exc:
                failures.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        assert failures == []
        journal = deployment.journal("app")
        events = read_journal(journal).events
        assert any(type(e) is Switch for e in events)  # the calls did interleave
        depths = open_calls_at_checkpoints(journal)
        assert depths and depths == [0] * len(depths)
        history = deployment.call("app", "history")
        deployment.kill_and_wait_for_restart("app")
        assert "restored from the checkpoint at record" in deployment.log("app")
        assert deployment.call("app", "history") == history


def test_distdev_check_of_a_compacted_journal_loads_its_checkpoint_into_the_new_code(
        built: Path, tmp_path: Path) -> None:
    service = live(built, [])
    deposit_many(service, 300)
    stop(service)
    assert run_distdev("journal", "compact", built).returncode == 0
    at = next(e.seq for e in read_journal(built).events if type(e) is Checkpoint)

    compatible = write_files(tmp_path / "new", {**APP, "app.py": APP["app.py"] + '''

        def owners() -> list[str]:
            return sorted(accounts)
    '''})
    result = run_distdev("check", built, "--source", compatible, "--json")
    assert result.returncode == 0, result.stdout + result.stderr

    renamed = write_files(tmp_path / "renamed", {
        **APP, "app.py": APP["app.py"].replace("Account", "Holding")})
    result = run_distdev("check", built, "--source", renamed, "--json")
    assert result.returncode == 2, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    verdict = verdict[0] if isinstance(verdict, list) else verdict
    assert "Account" in json.dumps(verdict) and str(at) in json.dumps(verdict)



def test_after_an_upgrade_a_restart_replays_the_history_with_the_new_code_then_checkpoints_it(
        built: Path) -> None:
    import hashlib

    from distdev.journal import BundleFile, JournalWriter, Source

    first = live(built, [])
    deposit_many(first, 300)
    before = first.restored.state()
    stop(first)
    # what `distdev upgrade` does: the new code joins the journal as source records
    new = APP["app.py"].replace("started = time.time()",
                                "started = time.time()\n        BONUS = 7")
    new = new.replace("    return store.total\n", "    return store.total + BONUS\n")
    code = textwrap.dedent(new).lstrip().encode()
    writer = JournalWriter.append_to(built)
    writer.write(Source(writer.next_seq, BundleFile("app.py", hashlib.sha256(code).hexdigest(),
                                                    code)))
    writer.close()

    second = live(built, [])
    assert second.restored.checkpoint is None  # taken with the old code: the history replays
    assert second.restored.state()["accounts"] == before["accounts"]
    assert second.restored.namespace["BONUS"] == 7
    deposit_many(second, 300, first=300)
    after = second.restored.state()
    stop(second)

    third = live(built, [])  # from a checkpoint the new code took, with the new code
    assert third.restored.checkpoint is not None and third.restored.journal.skipped > 0
    assert third.restored.namespace["BONUS"] == 7
    assert third.restored.proxy().total() == third.restored.namespace["store"].total + 7
    assert third.restored.state() == after
    stop(third)
