"""The durable message store of one queue or topic: an append-only log, fsync'd with group
commit, and the indexes rebuilt from it.

Why a log and not a SQLite table: a message's life is a handful of facts appended in order
(pushed, failed, delivered, dead-lettered, retried), which is what a journal already is. Appended
records cost a buffered write each, and one fdatasync covers every record written since the last
(the journals' group commit: ``engines/_durable.py``), while producers and deliveries keep
writing during the sync. A SQLite table in WAL mode with ``synchronous=FULL`` pays a commit (an
fsync of the WAL) per transaction and blocks every other writer of its connection while it syncs;
``benchmarks/bench_queue.py`` measures both.

Each record is ``length (4 bytes) | crc32 (4 bytes) | msgpack payload``. A crash can only tear
the last record: it is cut, and the facts it held were never promised to anyone (a push is
answered, and a delivery acknowledged, only once its record is durable). A bad record followed by
good ones is damage, not a torn write, and is refused with its offset.

A log that opens with many messages every group has finished (``COMPACT_AFTER``), most of it, is
rewritten without them: what is owed, the dead letters, and the latest call ids of each
producer (a push re-sent after a crash is still the same message).

The store keeps, per *group*, which messages it still owes: a queue has one group that its
consumers share (each message to one of them), a topic a group per subscriber. A group's messages
are spread over its *lanes* (a queue's consumers; a topic subscriber's one lane) by message id
and attempt, so a message re-sent after a crash goes to the consumer that may already have run
it, whose journal then answers it from its record instead of running it twice.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ..errors import DistdevError

__all__ = ["MessageStore", "Message", "DeadLetter", "StoreError", "GroupSpec"]

_HEAD = struct.Struct(">II")  # payload length, crc32 of the payload
COMPACT_AFTER = 10_000
"""Finished messages (done by every group) that make opening a log compact it, when they are
also most of it."""
KEEP_PRODUCED = 1000
"""Call ids kept per producer for the messages compaction drops: a re-sent push is one of its
producer's latest."""


class StoreError(DistdevError):
    """A message store that cannot be read (damaged before its end) or used as asked."""


# -- the records ------------------------------------------------------------------------------

class _Record(msgspec.Struct, frozen=True, array_like=True, tag_field="kind"):
    pass


class _Joined(_Record, frozen=True, tag="joined"):
    """A group appears: it is owed the messages from ``first`` on (a topic's subscriber gets
    what is published after it subscribed; a queue's group everything)."""

    group: str
    first: int


class _Pushed(_Record, frozen=True, tag="pushed"):
    id: int
    producer: str
    producer_seq: int | str | None
    body: bytes


class _Replaced(_Record, frozen=True, tag="replaced"):
    """A producer cut back to an earlier point pushed other content under the same call id,
    before any delivery of the first: the first push belongs to a history nobody saw."""

    id: int
    body: bytes


class _Failed(_Record, frozen=True, tag="failed"):
    group: str
    id: int
    attempt: int
    error: str


class _Done(_Record, frozen=True, tag="done"):
    group: str
    id: int


class _Dead(_Record, frozen=True, tag="dead"):
    group: str
    id: int
    error: str


class _Retried(_Record, frozen=True, tag="retried"):
    group: str
    id: int


class _Compacted(_Record, frozen=True, tag="compacted"):
    """The first record of a compacted log: the messages it dropped (every group had them
    done) were ``dropped`` in number, and ids go on from ``next_id``."""

    next_id: int
    dropped: int


class _Produced(_Record, frozen=True, tag="produced"):
    """A producer's call id of a message compaction dropped: a re-sent push of it is still
    the same message."""

    producer: str
    producer_seq: int | str
    id: int


_Any = (_Joined | _Pushed | _Replaced | _Failed | _Done | _Dead | _Retried | _Compacted
        | _Produced)
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Any)


# -- what the store hands out -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Message:
    """A message due to one group: deliver ``body`` as attempt ``attempt`` (from 1)."""

    id: int
    group: str
    attempt: int
    """Counts every attempt the message ever had in this group: each is a call of its own
    (a consumer answers a re-sent attempt from its record, and runs a new one)."""
    tries: int
    """Attempts since it was pushed, or since ``retry`` took it off the dead letters."""
    body: bytes
    producer: str


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A message a group gave up on after its attempts: the last error it got."""

    id: int
    group: str
    attempts: int
    error: str
    body: bytes


@dataclasses.dataclass(frozen=True)
class GroupSpec:
    """A group as the deployment declares it: its name and how many lanes share it."""

    name: str
    lanes: int = 1
    ordered: bool = False
    """One message at a time per lane, in id order (a topic: publish order per publisher)."""


class _Group:
    def __init__(self, spec: GroupSpec, first: int) -> None:
        self.spec = spec
        self.first = first
        self.done: set[int] = set()
        self.failures: dict[int, int] = {}
        self.dead: dict[int, str] = {}
        self.last_error: dict[int, str] = {}
        self.round_from: dict[int, int] = {}  # failures when it was last retried by hand
        # Not durable: what is in flight is re-sent after a restart, to the same lane.
        self.ready: list[list[tuple[int, int]]] = [[] for _ in range(max(1, spec.lanes))]
        self.in_flight: set[int] = set()
        self.not_before: dict[int, float] = {}

    def lane_of(self, message_id: int) -> int:
        return (message_id + self.failures.get(message_id, 0)) % len(self.ready)

    def owes(self, message_id: int) -> bool:
        return (message_id >= self.first and message_id not in self.done
                and message_id not in self.dead)

    def queue(self, message_id: int) -> None:
        heapq.heappush(self.ready[self.lane_of(message_id)], (message_id, self.failures.get(
            message_id, 0)))


class MessageStore:
    """One queue's or topic's messages in ``path``; thread-safe.

    ``durable=False`` flushes without fdatasync (``up --no-durable``). Every method that records
    a fact returns once the fact is durable."""

    def __init__(self, path: Path, groups: Sequence[GroupSpec], *, durable: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.durable = durable
        self.clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._messages: dict[int, _Pushed] = {}
        self._produced: dict[tuple[str, int | str], int] = {}
        self._groups: dict[str, _Group] = {}
        self._next_id = 1
        self._dropped = 0  # messages compaction dropped (finished long ago)
        self.warnings: list[str] = []
        self.syncs = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._load()
        self._file = open(path, "ab")  # noqa: SIM115 - the store owns it until close
        self._written = 0  # records written, and below ``_durable`` those on disk
        self._durable = 0
        self._syncing = False
        self._sync_done = threading.Condition(threading.Lock())
        for spec in groups:
            self._join(spec)
        self._sync(self._written)
        self._compact_if_due({spec.name for spec in groups})

    # -- reading the log back --------------------------------------------------------------

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        offset, end = 0, len(data)
        while offset < end:
            record, after = self._record_at(data, offset)
            if record is None:
                self._cut(data, offset)
                return
            self._apply(record)
            offset = after

    def _record_at(self, data: bytes, offset: int) -> tuple[_Any | None, int]:
        """The record at ``offset`` and the offset after it; None for a torn last record."""
        if offset + _HEAD.size > len(data):
            return None, offset
        length, crc = _HEAD.unpack_from(data, offset)
        start, after = offset + _HEAD.size, offset + _HEAD.size + length
        payload = data[start:after]
        if after > len(data) or zlib.crc32(payload) != crc:
            if after < len(data) and self._good_record_after(data, after):
                raise StoreError(
                    f"{self.path} is damaged at byte {offset}: a bad record before good ones "
                    "(a crash only tears the last record). Restore the file from a backup, or "
                    "move it aside to start the queue empty")
            return None, offset
        try:
            return _decoder.decode(payload), after
        except msgspec.DecodeError as exc:
            raise StoreError(f"{self.path} holds a record at byte {offset} that distdev cannot "
                             f"read ({exc}); it was written by another version or damaged") from None

    @staticmethod
    def _good_record_after(data: bytes, offset: int) -> bool:
        if offset + _HEAD.size > len(data):
            return False
        length, crc = _HEAD.unpack_from(data, offset)
        payload = data[offset + _HEAD.size: offset + _HEAD.size + length]
        return len(payload) == length and bool(zlib.crc32(payload) == crc)

    def _cut(self, data: bytes, offset: int) -> None:
        side = self.path.with_name(self.path.name + f".torn-{offset}")
        side.write_bytes(data[offset:])
        with open(self.path, "r+b") as file:
            file.truncate(offset)
            os.fsync(file.fileno())
        self.warnings.append(f"cut a torn final record aside ({len(data) - offset} bytes to "
                             f"{side})")

    def _apply(self, record: _Any) -> None:
        """Fold one fact into the indexes (loading, and as it is written)."""
        if isinstance(record, _Pushed):
            self._messages[record.id] = record
            if record.producer_seq is not None:
                self._produced[(record.producer, record.producer_seq)] = record.id
            self._next_id = max(self._next_id, record.id + 1)
            for group in self._groups.values():
                if group.owes(record.id):
                    group.queue(record.id)
        elif isinstance(record, _Replaced):
            old = self._messages[record.id]
            self._messages[record.id] = _Pushed(old.id, old.producer, old.producer_seq,
                                                record.body)
        elif isinstance(record, _Compacted):
            self._next_id, self._dropped = record.next_id, record.dropped
        elif isinstance(record, _Produced):
            self._produced[(record.producer, record.producer_seq)] = record.id
        elif isinstance(record, _Joined):
            if record.group not in self._groups:
                self._groups[record.group] = _Group(GroupSpec(record.group), record.first)
        else:
            self._apply_delivery(record)

    def _apply_delivery(self, record: _Failed | _Done | _Dead | _Retried) -> None:
        group = self._groups[record.group]
        if isinstance(record, _Done):
            group.done.add(record.id)
            group.failures.pop(record.id, None)
            group.last_error.pop(record.id, None)
            group.round_from.pop(record.id, None)
        elif isinstance(record, _Failed):
            group.failures[record.id] = max(group.failures.get(record.id, 0), record.attempt)
            group.last_error[record.id] = record.error
        elif isinstance(record, _Dead):
            group.dead[record.id] = record.error
        elif isinstance(record, _Retried):
            group.dead.pop(record.id, None)
            group.round_from[record.id] = group.failures.get(record.id, 0)

    # -- writing -----------------------------------------------------------------------------

    def _write(self, record: _Any) -> int:
        """Append ``record`` (the lock held) and fold it in; the count to wait durable for."""
        payload = _encoder.encode(record)
        self._file.write(_HEAD.pack(len(payload), zlib.crc32(payload)) + payload)
        self._written += 1
        self._apply(record)
        return self._written

    def _sync(self, target: int) -> None:
        """Return once the first ``target`` records written are on disk: one fdatasync covers
        every record written before it started (group commit, as the journals do)."""
        with self._sync_done:
            while self._durable < target:
                if self._syncing:
                    self._sync_done.wait()
                    continue
                self._syncing = True
                self._sync_done.release()
                try:
                    with self._lock:
                        covered = self._written
                        self._file.flush()
                    if self.durable:
                        os.fdatasync(self._file.fileno())
                finally:
                    self._sync_done.acquire()
                    self._syncing = False
                self._durable = max(self._durable, covered)
                self.syncs += 1
                self._sync_done.notify_all()

    def _join(self, spec: GroupSpec) -> None:
        with self._lock:
            group = self._groups.get(spec.name)
            if group is None:
                self._write(_Joined(spec.name, self._next_id if spec.ordered else 1))
                group = self._groups[spec.name]
            fresh = _Group(spec, group.first)
            fresh.done, fresh.failures = group.done, group.failures
            fresh.dead, fresh.last_error = group.dead, group.last_error
            fresh.round_from = group.round_from
            self._groups[spec.name] = fresh
            for message_id in sorted(self._messages):
                if fresh.owes(message_id):
                    fresh.queue(message_id)

    def join_groups(self, specs: Sequence[GroupSpec]) -> None:
        """Add groups (a topic's new subscriber gets what is published from now on) or change
        how many lanes share one (a queue's new consumer), durably."""
        for spec in specs:
            self._join(spec)
        self._sync(self._written)

    # -- producing ---------------------------------------------------------------------------

    def push(self, producer: str, producer_seq: int | str | None, body: bytes) -> int:
        """Add a message; its id, once it is durable. A push that repeats a producer's call id
        (the producer crashed and runs that call again) is the same message, not a second one."""
        with self._lock:
            known = None if producer_seq is None else self._produced.get((producer, producer_seq))
            if known is not None and (known not in self._messages  # finished, compacted
                                      or self._messages[known].body == body):
                target = self._written
                message_id = known
            elif known is not None and not self._delivered_anywhere(known):
                target = self._write(_Replaced(known, body))
                message_id = known
            else:
                if known is not None:
                    self.warnings.append(
                        f"{producer} pushed other content under its call {producer_seq} after a "
                        f"restart; message {known}, pushed under that call before, had been "
                        "delivered already, so both stay")
                message_id = self._next_id
                target = self._write(_Pushed(message_id, producer, producer_seq, body))
            self._changed.notify_all()
        self._sync(target)
        return message_id

    def _delivered_anywhere(self, message_id: int) -> bool:
        return any(message_id in g.in_flight or message_id in g.done or message_id in g.failures
                   or message_id in g.dead for g in self._groups.values())

    # -- delivering --------------------------------------------------------------------------

    def take(self, group_name: str, lane: int = 0) -> Message | None:
        """The next message due on ``lane`` of a group, now in flight; None if there is none
        (an ordered lane waits for its message in flight, or in backoff, before the next)."""
        with self._lock:
            group = self._groups[group_name]
            ready = group.ready[lane]
            if group.spec.ordered and group.in_flight:
                return None  # one at a time, in order: the next waits for this one
            now = self.clock()
            deferred: list[tuple[int, int]] = []
            found: Message | None = None
            while ready:
                message_id, failures = ready[0]
                if not group.owes(message_id) or group.failures.get(message_id, 0) != failures \
                        or message_id in group.in_flight:
                    heapq.heappop(ready)  # stale: done, dead, moved lane, or queued twice
                    continue
                if group.not_before.get(message_id, 0) > now:
                    if group.spec.ordered:
                        break
                    deferred.append(heapq.heappop(ready))
                    continue
                heapq.heappop(ready)
                group.in_flight.add(message_id)
                pushed = self._messages[message_id]
                found = Message(message_id, group_name, failures + 1,
                                failures - group.round_from.get(message_id, 0) + 1, pushed.body,
                                pushed.producer)
                break
            for item in deferred:
                heapq.heappush(ready, item)
            return found

    def next_due(self, group_name: str, lane: int = 0) -> float | None:
        """When a message in backoff on this lane is due (``clock()`` time), if any."""
        with self._lock:
            group = self._groups[group_name]
            times = [group.not_before[m] for m, _ in group.ready[lane] if m in group.not_before]
            return min(times) if times else None

    def wait(self, timeout: float) -> None:
        """Wait until something is pushed or retried (or ``timeout`` seconds pass)."""
        with self._changed:
            self._changed.wait(timeout)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def delivered(self, message: Message) -> None:
        """The group's consumer handled ``message``: it is done, durably."""
        with self._lock:
            group = self._groups[message.group]
            group.in_flight.discard(message.id)
            group.not_before.pop(message.id, None)
            target = self._write(_Done(message.group, message.id))
        self._sync(target)

    def released(self, message: Message) -> None:
        """The attempt got no answer (its consumer is unreachable): try it again, as the same
        attempt, on the same lane."""
        with self._lock:
            group = self._groups[message.group]
            group.in_flight.discard(message.id)
            group.queue(message.id)
            self._changed.notify_all()

    def failed(self, message: Message, error: str, *, dead: bool, retry_in: float) -> None:
        """The consumer raised ``error``: record the failed attempt and either dead-letter the
        message or make it due again after ``retry_in`` seconds (on the next lane)."""
        with self._lock:
            group = self._groups[message.group]
            group.in_flight.discard(message.id)
            self._write(_Failed(message.group, message.id, message.attempt, error))
            if dead:
                target = self._write(_Dead(message.group, message.id, error))
            else:
                target = self._written
                group.not_before[message.id] = self.clock() + retry_in
                group.queue(message.id)
            self._changed.notify_all()
        self._sync(target)

    # -- the dead letters --------------------------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        with self._lock:
            return [DeadLetter(m, name, group.failures.get(m, 0), error, self._messages[m].body)
                    for name, group in self._groups.items() for m, error in sorted(
                        group.dead.items())]

    def retry(self, message_id: int | None = None, group_name: str | None = None) -> int:
        """Give dead-lettered messages (all, or one id, of one group or all) their attempts
        again; how many were retried."""
        with self._lock:
            chosen = [(name, m) for name, group in self._groups.items()
                      if group_name in (None, name) for m in group.dead
                      if message_id in (None, m)]
            target = self._written
            for name, m in chosen:
                target = self._write(_Retried(name, m))
                group = self._groups[name]
                group.not_before.pop(m, None)
                group.queue(m)
            self._changed.notify_all()
        self._sync(target)
        return len(chosen)

    # -- reporting ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Messages pushed, and per group: delivered, pending, in flight, dead-lettered."""
        with self._lock:
            groups = {}
            for name, group in self._groups.items():
                owed = sum(1 for m in self._messages if group.owes(m))
                groups[name] = {"delivered": len(group.done), "pending": owed,
                                "in_flight": len(group.in_flight), "dead": len(group.dead)}
            return {"messages": self._dropped + len(self._messages), "groups": groups}

    # -- compaction --------------------------------------------------------------------------

    def _compact_if_due(self, current: set[str]) -> None:
        """Rewrite the log without the messages every current group is done with, once they
        are many and most of it (when it opens: nothing else uses it yet). Groups no longer
        declared are dropped with them: a subscriber that comes back starts afresh."""
        groups = {name: g for name, g in self._groups.items() if name in current}
        if not groups:
            return  # nobody to be done with anything: every message is still owed
        finished = [m for m in self._messages if all(not g.owes(m) and m not in g.dead
                                                     for g in groups.values())]
        if len(finished) < COMPACT_AFTER or 2 * len(finished) < len(self._messages):
            return
        gone = set(finished)
        records: list[_Any] = [_Compacted(self._next_id, self._dropped + len(gone))]
        latest: dict[str, list[tuple[int, int | str]]] = {}
        for (producer, seq), message_id in self._produced.items():
            if message_id in gone or message_id not in self._messages:
                latest.setdefault(producer, []).append((message_id, seq))
        for producer, ids in latest.items():
            records += [_Produced(producer, seq, m) for m, seq in sorted(ids)[-KEEP_PRODUCED:]]
        records += [_Joined(name, g.first) for name, g in groups.items()]
        records += [self._messages[m] for m in sorted(self._messages) if m not in gone]
        for name, g in groups.items():
            records += self._group_facts(name, g, gone)
        tmp = self.path.with_name(self.path.name + ".compacting")
        with open(tmp, "wb") as file:
            for record in records:
                payload = _encoder.encode(record)
                file.write(_HEAD.pack(len(payload), zlib.crc32(payload)) + payload)
            file.flush()
            os.fsync(file.fileno())
        self._file.close()
        os.replace(tmp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself is durable
        finally:
            os.close(directory)
        for m in gone:
            del self._messages[m]
        for name in [n for n in self._groups if n not in current]:
            del self._groups[name]
        self._dropped += len(gone)
        self._file = open(self.path, "ab")  # noqa: SIM115 - the store owns it until close
        self.warnings.append(f"compacted {self.path.name}: dropped {len(gone)} messages every "
                             "subscriber had handled")

    def _group_facts(self, name: str, group: _Group, gone: set[int]) -> list[_Any]:
        """The records that rebuild one group's state of the messages kept."""
        facts: list[_Any] = []
        for m in sorted(self._messages):
            if m in gone:
                continue
            if m in group.done:
                facts.append(_Done(name, m))
                continue
            error = group.last_error.get(m, "")
            if m in group.round_from:  # the failures before the last retry, then the retry
                facts += [_Failed(name, m, group.round_from[m], error), _Retried(name, m)]
            if group.failures.get(m, 0) > group.round_from.get(m, 0):
                facts.append(_Failed(name, m, group.failures[m], error))
            if m in group.dead:
                facts.append(_Dead(name, m, group.dead[m]))
        return facts

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            self._file.flush()
            if self.durable:
                os.fdatasync(self._file.fileno())
            self._file.close()
