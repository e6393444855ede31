"""Measurement 11: restore time against journal length, with and without checkpoints.

The journal is recorded the way a live host records it, in-process: ``counter.py`` built with
``distdev.App``, then restored and served by ``engines._live.go_live`` (the real ``Recorder``,
writer and checkpoints under the default ``CheckpointPolicy``), and its export ``step(i)``
called from the outside until the journal holds about 1k, 10k, 100k and 1M records (3 a call:
call-in, effect, return; full run only for 1M). Its state stays the same size whatever the
length (a dict of eight counters and a small window), as a long-lived service's often does.

Each journal is measured at its worst for a restore: the calls go on past the nominal length
until the next checkpoint is one call from due, so the restart replays the longest tail the
policy lets a journal end with (about 1,000 records). The 1k journal is a young service's, its
first checkpoint not yet due: replayed whole.

Restore is what a restarted service does before it serves (``engines._restore``'s
``restorable_journal``, then ``distdev.replay``): reading the header, the top level's records,
the last checkpoint (found by the index beside the journal) and the records after it, each
validated; replaying the top level, loading the checkpoint, replaying the records after it.
The baseline is the same journal read and replayed whole (every record, as before
checkpoints). The goal (issue 16): a restore after 1M records within 2x of one after 1k. A
diagnostic row says what checkpoints cost a call (the time taken by checkpoints with the
default policy beside the same calls without checkpoints).

A last row measures one checkpoint of a large state, as a shop's order book grows to: a dict of
20,000 orders (5,000 with ``--quick``), each a small dict with a list of lines, and a list of
as many ledger entries. The checkpoint is taken at idle, as a live service takes it (snapshot,
the live state digest, the snapshot loaded into the kept verifying copy and its digest
compared, the record written), beside ``pickle.dumps`` of the same two globals: what saving the
state by hand costs, without checking that it loads. The note splits the checkpoint into its
parts. Another records the same order book as it grows, under the default policy and under it
without its ``growth`` rule (a checkpoint every 1,000 records whatever its size), neither
with the 5% ``share`` rule (which a service whose calls cross the network does not meet): the
time checkpoints take per call, and in the note how many were written, what share of the journal
they fill, and what the restart from each journal costs.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

from bench_replay import cache_home
from bench_util import Row, Settings, median_seconds, progress, write_app

import distdev
from distdev.engines._live import LiveService, go_live
from distdev.engines._restore import restorable_journal
from distdev.journal import Checkpoint
from distdev.replayer import CheckpointPolicy
from distdev.replayer._checkpoint import take_snapshot

APP_FILES = {
    "counter.py": '''
        import time

        counts: dict[str, int] = {}
        window: list[int] = []
        last_seen = 0.0


        def step(i: int) -> int:
            global last_seen, window
            key = f"k{i % 8}"
            counts[key] = counts.get(key, 0) + i + 1
            window = (window + [i])[-4:]
            last_seen = time.time()
            return counts[key]
    ''',
}
ORDERS_FILES = {
    "orders.py": '''
        orders: dict[str, dict] = {}
        entries: list[dict] = []


        def place(i: int, sku: str, qty: int) -> None:
            order = {"id": f"o{i}", "sku": sku, "qty": qty, "total": qty * 1999,
                     "status": "placed", "lines": [{"sku": sku, "qty": qty, "price": 1999}]}
            orders[order["id"]] = order
            entries.append({"order": order["id"], "cents": order["total"], "kind": "charge"})
    ''',
}
EVENTS_PER_CALL = 3
GOAL = 2.0


class _Alone:
    def send(self, *args: Any) -> Any:
        raise AssertionError("the counter calls nobody")

    def exports(self, target: str) -> None:
        return None


def _live(tmp: Path, files: dict[str, str], policy: CheckpointPolicy | None) -> LiveService:
    """The app of ``files`` built, and its one service restored and live on a journal of its
    own, as a host runs it."""
    entry = next(iter(files))
    folder = write_app(tmp / "app", files)
    app = distdev.App(folder / entry, out=tmp / "out")
    app.build()
    app.close()
    journal = tmp / "state" / "journal.cbor"
    journal.parent.mkdir(parents=True, exist_ok=True)
    built = tmp / "out" / "services" / entry.removesuffix(".py") / "journal.cbor"
    journal.write_bytes(built.read_bytes())
    return go_live(journal, _Alone(), durable=False, app_files=None, log=lambda line: None,
                   checkpoints=policy)


def record(tmp: Path, events: int,
           policy: CheckpointPolicy | None) -> tuple[Path, float, int, float]:
    """A live journal of about ``events`` records; (path, seconds the calls took, calls,
    seconds of it spent taking checkpoints)."""
    live = _live(tmp, APP_FILES, policy)
    journal = live.writer.path
    proxy = live.restored.proxy()
    calls = max(1, events // EVENTS_PER_CALL)
    started = time.perf_counter()
    for i in range(calls):
        proxy.step(i)
    took = time.perf_counter() - started
    checkpoints = live.checkpoints
    if checkpoints is not None:  # on to the longest tail: the next checkpoint one call from due
        while checkpoints.records_since < checkpoints.policy.events - EVENTS_PER_CALL:
            proxy.step(calls)
            calls += 1
    in_checkpoints = live.checkpoints.seconds if live.checkpoints is not None else 0.0
    # Ended as kill -9 ends a service: `down` would checkpoint it, leaving no tail to replay.
    live.writer.close()
    if live.checkpoints is not None:
        live.checkpoints.close()
    live.service.compartment.unload()
    return journal, took, calls, in_checkpoints


def measure(tmp: Path, settings: Settings) -> list[Row]:
    sizes = [1_000, 10_000] if settings.quick else [1_000, 10_000, 100_000, 1_000_000]
    reps = 3 if settings.quick else 5
    rows: list[Row] = []
    restore_ms: dict[int, float] = {}
    whole_ms: dict[int, float] = {}
    with cache_home(tmp / "cache"):
        for size in sizes:
            young = size == sizes[0]  # its first checkpoint not yet due: replayed whole
            progress(f"restore: recording ~{size:,} records"
                     f"{' (a young service)' if young else ' with checkpoints'}")
            journal, _, _, _ = record(tmp / f"with-{size}", size,
                                      None if young else CheckpointPolicy())
            contents = distdev.read_journal(journal)
            first = distdev.replay(restorable_journal(journal, lambda line: None).contents)
            tail, n = first.events, len(contents.events)
            first.service.compartment.unload()
            runs = reps if size < 1_000_000 else 3
            progress(f"restore: {n:,} records, {runs} reps from the checkpoint and whole")
            with_ck = median_seconds(lambda j=journal: _restore(j, True), runs)
            whole = median_seconds(lambda j=journal: _restore(j, False), runs)
            read = median_seconds(lambda j=journal: distdev.read_journal(j), runs)
            restore_ms[size], whole_ms[size] = with_ck * 1e3, whole * 1e3
            rows.append(Row(
                key=f"restore.{size}", title=f"restore after {n:,} records", unit="ms",
                distdev=with_ck * 1e3, baseline_name="replayed whole (no checkpoint)",
                baseline=whole * 1e3, higher_is_better=False,
                note=(f"a young service: replays its {tail:,} records whole" if young else
                      f"replays {tail:,} records after its checkpoint")
                     + f"; reading the journal alone {read * 1e3:.1f} ms"))
        largest = sizes[-1]
        ratio = restore_ms[largest] / restore_ms[sizes[0]]
        rows.append(Row(
            key="restore.growth", title=f"restore after {largest:,} / after 1,000 records",
            unit="x", distdev=ratio, baseline_name="replayed whole, the same ratio",
            baseline=whole_ms[largest] / whole_ms[sizes[0]], higher_is_better=False,
            goal=f"<= {GOAL:g}x", met=ratio <= GOAL,
            note="each at its longest tail (the records a restart replays, in each row's "
                 "note): the young service replays its 1,000 records whole, the old one loads "
                 "its last checkpoint and replays as many after it. The policy bounds the tail "
                 "(1,000 records, or more when a checkpoint is larger than they are or would "
                 "take more than 5% of the time: a large state, or a loaded machine), not the "
                 "journal's length"))
        calls_size = 10_000 if settings.quick else 100_000
        progress(f"restore: what checkpoints cost a call, ~{calls_size:,} records")
        _, with_s, calls, spent = record(tmp / "cost-with", calls_size, CheckpointPolicy())
        _, without_s, _, _ = record(tmp / "cost-without", calls_size, None)
    rows.append(Row(
        key="restore.per_call", title="checkpoints' cost per call (default policy)",
        unit="us", distdev=spent / calls * 1e6, baseline_name="the call, checkpoints off",
        baseline=without_s / calls * 1e6, higher_is_better=False,
        note=f"time spent taking checkpoints over {calls:,} in-process calls; the policy keeps "
             f"it under 5% of the time. The whole call with checkpoints on: "
             f"{with_s / calls * 1e6:.1f} us (a separate run: noisy on a shared machine)"))
    rows.append(_large_checkpoint(tmp / "large", 5_000 if settings.quick else 20_000, reps))
    rows.append(_growing_state(tmp / "growing", 5_000 if settings.quick else 20_000, reps))
    return rows


def _growing_state(tmp: Path, orders: int, reps: int) -> Row:
    """The order book recorded live as it grows, under the default policy and under the same
    policy without its ``growth`` rule (a checkpoint every 1,000 records, whatever its size):
    what checkpoints cost a call, what they leave in the journal, and what the restart costs.
    Neither has the ``share`` rule: in-process calls are so fast that it would space both out
    alike, where a service whose calls cross the network (the shop's orders) never meets it."""
    figures: dict[str, dict[str, float]] = {}
    for name, policy in (("growth", CheckpointPolicy(share=None)),
                         ("without", CheckpointPolicy(growth=None, share=None))):
        progress(f"restore: an order book growing to {orders:,} orders ({name})")
        with cache_home(tmp / name / "cache"):
            live = _live(tmp / name, ORDERS_FILES, policy)
            proxy = live.restored.proxy()
            for i in range(orders):
                proxy.place(i, f"sku{i % 50}", i % 7 + 1)
            checkpoints, journal = live.checkpoints, live.writer.path
            assert checkpoints is not None
            live.writer.close()  # ended as kill -9 ends it: the tail is replayed
            checkpoints.close()
            live.service.compartment.unload()
            contents = distdev.read_journal(journal)
            ends = [*contents.offsets[1:], contents.good_size]
            in_checkpoints = sum(end - start for event, start, end
                                 in zip(contents.events, contents.offsets, ends)
                                 if type(event) is Checkpoint)
            figures[name] = {
                "per_call": checkpoints.seconds / orders, "written": checkpoints.written,
                "mb": contents.good_size / 1e6, "share": in_checkpoints / contents.good_size,
                "restore": median_seconds(lambda j=journal: _restore(j, True), reps)}
    grown, before = figures["growth"], figures["without"]

    def told(f: dict[str, float]) -> str:
        return (f"{f['written']:.0f} checkpoints, a {f['mb']:.1f} MB journal "
                f"{f['share']:.0%} checkpoints, restart {f['restore'] * 1e3:.0f} ms")

    return Row(
        key="restore.growing_state", title=f"checkpoints of an order book growing to {orders:,}",
        unit="us/call", distdev=grown["per_call"] * 1e6,
        baseline_name="without the growth rule", baseline=before["per_call"] * 1e6,
        higher_is_better=False,
        note=f"time in checkpoints per place() call, in-process, without the share rule (a "
             f"networked service's calls are too slow to meet it); with growth: {told(grown)}; "
             f"without: {told(before)} (the restart replays a longer tail with the rule, and "
             "loads the same size of state)")


def _large_checkpoint(tmp: Path, orders: int, reps: int) -> Row:
    progress(f"restore: one checkpoint of {orders:,} orders")
    with cache_home(tmp / "cache"):
        # No checkpoint until asked for: each measured one snapshots the same state.
        live = _live(tmp, ORDERS_FILES, CheckpointPolicy(events=1 << 62, bytes=1 << 62,
                                                         share=None))
        proxy = live.restored.proxy()
        for i in range(orders):
            proxy.place(i, f"sku{i % 50}", i % 7 + 1)
        checkpoints, service = live.checkpoints, live.service
        assert checkpoints is not None
        checkpoints.take()  # the first makes the verifying copy, kept for the next ones
        state = {name: service.module.__dict__[name] for name in ("orders", "entries")}
        took = median_seconds(checkpoints.take, reps, warmup=False)
        by_hand = median_seconds(lambda: pickle.dumps(state, protocol=5), reps)
        snapshot = median_seconds(lambda: take_snapshot(service), reps)
        digest = median_seconds(service.state_digest, reps)
        written = checkpoints.written
        live.writer.close()
        checkpoints.close()
        service.compartment.unload()
    assert written == reps + 1, "a checkpoint was not written"
    return Row(
        key="restore.checkpoint_large", title=f"one checkpoint of {orders:,} orders",
        unit="ms", distdev=took * 1e3, baseline_name="pickle.dumps of the same state",
        baseline=by_hand * 1e3, higher_is_better=False,
        note=f"taken at idle, every call waiting: the snapshot {snapshot * 1e3:.1f} ms, a state "
             f"digest {digest * 1e3:.1f} ms (one of the live state, one of the verifying copy), "
             "the rest loading the snapshot into that copy and writing the record")


def _restore(journal: Path, from_checkpoint: bool) -> None:
    contents = restorable_journal(journal, lambda line: None, whole=not from_checkpoint).contents
    restored = distdev.replay(contents, from_checkpoint=from_checkpoint)
    restored.service.compartment.unload()
