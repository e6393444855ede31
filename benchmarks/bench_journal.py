"""Measurement 2: journal append and read-with-validation, in events per second.

distdev: ``JournalWriter.create(path, header)``, then N small events written one by one (a
repeating mix of call-in, effect, call-out, result and return, as a service records them),
``flush`` and ``close``; then ``read_journal(path)``, which checks every record's framing and
CRC-32, decodes it and converts it to its typed event (with sequence-number validation).

Baselines, on the very same events in the same run, one record at a time and in memory:

* ``cbor2.dumps`` / ``cbor2.loads`` of each event's plain list form ``[kind, seq, ...]``: the
  same CBOR, without distdev's framing, CRC or typed validation;
* ``msgspec.msgpack`` encode of each event Struct / typed decode back to the event union (a
  validating typed codec in another format).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cbor2
import msgspec
from bench_util import Row, Settings, median_seconds, progress

import distdev
from distdev._version import VERSION, recorded_hash_seed
from distdev.journal import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CallIn,
    CallOut,
    Effect,
    Event,
    Header,
    ResultIn,
    Return,
)

GOAL_READ = 200_000
CHAIN = "5f0c7a1e9b3d4c2a8e6f1b0d9c7a5e3f"


def make_header() -> Header:
    """A header like ``App.header`` writes (no bundle files)."""
    return Header(
        seq=0, format=FORMAT_NAME, version=FORMAT_VERSION, service="bench", distdev=VERSION,
        python=sys.version.split()[0], hash_seed=recorded_hash_seed(), app_root="/bench",
        entry="bench.py", bundle=[],
    )


def make_events(n: int) -> list[Event]:
    """``n`` small events, seq 1..n, in the shape one traced call leaves in a journal."""
    events: list[Event] = []
    seq = 1
    i = 0
    while len(events) < n:
        group: list[Event] = [
            CallIn(seq, "", CHAIN, "step", [i], {}),
            Effect(seq + 1, "time.time", [], 1_700_000_000.0 + i * 0.001, None),
            CallOut(seq + 2, "app/worker", "add", [i, 2], {}),
            ResultIn(seq + 3, i + 2),
            Return(seq + 4, i),
        ]
        events.extend(group[: n - len(events)])
        seq += len(group)
        i += 1
    return events


def plain_tree(event: Event) -> list[Any]:
    """An event's CBOR list form ``[kind, seq, ...fields]`` (flat events only)."""
    return [event.__struct_config__.tag, *msgspec.structs.astuple(event)]


def _write_journal(path: Path, header: Header, events: list[Event]) -> None:
    writer = distdev.JournalWriter.create(path, header)
    for event in events:
        writer.write(event)
    writer.flush()
    writer.close()


def _rate(n: int, seconds: float) -> float:
    return n / seconds


def measure(tmp: Path, settings: Settings) -> list[Row]:
    n, reps = settings.journal_events, settings.journal_reps
    header = make_header()
    events = make_events(n)
    path = tmp / "journal-bench" / "journal.cbor"
    progress(f"journal: append + read, {reps} reps x {n:,} events")
    append = _rate(n, median_seconds(lambda: _write_journal(path, header, events), reps))
    read_count = len(distdev.read_journal(path).events) - 1
    assert read_count == n, f"read {read_count} events, wrote {n}"
    read = _rate(n, median_seconds(lambda: distdev.read_journal(path), reps))

    progress("journal: cbor2 and msgspec baselines on the same events")
    trees = [plain_tree(e) for e in events]
    blobs = [cbor2.dumps(t) for t in trees]
    cbor_dump = _rate(n, median_seconds(lambda: [cbor2.dumps(t) for t in trees], reps))
    cbor_load = _rate(n, median_seconds(lambda: [cbor2.loads(b) for b in blobs], reps))
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(Event)
    packed = [encoder.encode(e) for e in events]
    assert decoder.decode(packed[0]) == events[0]
    mp_enc = _rate(n, median_seconds(lambda: [encoder.encode(e) for e in events], reps))
    mp_dec = _rate(n, median_seconds(lambda: [decoder.decode(b) for b in packed], reps))

    size = f"{n:,} events, {path.stat().st_size / n:.0f} B/record, {reps} reps, median"
    read_goal = f">= {GOAL_READ // 1000}k ev/s"

    def row(key: str, title: str, value: float, base_name: str, base: float, note: str,
            goal: bool) -> Row:
        return Row(key=key, title=title, unit="events/s", distdev=value, baseline_name=base_name,
                   baseline=base, higher_is_better=True, goal=read_goal if goal else "-",
                   met=(value >= GOAL_READ) if goal else None, note=note)

    return [
        row("journal.append.cbor2", "journal append (write + flush)", append,
            "cbor2.dumps per event", cbor_dump,
            f"JournalWriter.write of each event; {size}; baseline: list form, in memory", False),
        row("journal.append.msgspec", "journal append (write + flush)", append,
            "msgspec.msgpack encode", mp_enc, "baseline: Encoder.encode(event Struct)", False),
        row("journal.read.cbor2", "journal read + validation", read, "cbor2.loads per event",
            cbor_load, "read_journal: framing + CRC + typed decode + seq check; baseline: "
            "untyped lists, no framing/CRC", True),
        row("journal.read.msgspec", "journal read + validation", read,
            "msgspec.msgpack typed decode", mp_dec, "baseline: Decoder(Event union) per event",
            True),
    ]
