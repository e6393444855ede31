"""The message store of queues and topics, and its delivery loop, as units: what survives a
reopen (a crash of the process that held it), how pushes are deduplicated, how failing
consumers are retried and dead-lettered, and that a topic keeps publish order per subscriber.

These drive the store in one process with a clock the test moves; the same store under real
processes and ``kill -9`` is ``test_messaging.py``'s."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from support.engines import wait_until

from distdev.resources._delivery import (
    Delivery,
    Rejected,
    Subscription,
    delivery_seq,
    group_specs,
)
from distdev.resources._store import Message, MessageStore, StoreError

A, B = Subscription("app/a", "handle"), Subscription("app/b", "handle")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def queue(path: Path, *subs: Subscription, clock: Clock | None = None) -> MessageStore:
    return MessageStore(path, group_specs("queue", subs or (A,)), clock=clock or Clock())


def topic(path: Path, *subs: Subscription) -> MessageStore:
    return MessageStore(path, group_specs("topic", subs))


def test_store_keeps_messages_and_outcomes_across_a_reopen(tmp_path: Path) -> None:
    log = tmp_path / "q.log"
    store = queue(log)
    ids = [store.push("app/p", f"c/{i}", b"m%d" % i) for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    first = store.take("consumers")
    assert first is not None and (first.id, first.attempt, first.body) == (1, 1, b"m0")
    store.delivered(first)
    taken = store.take("consumers")
    assert taken is not None and taken.id == 2  # in flight when the process dies
    del store  # no close: what a kill leaves

    again = queue(log)
    assert again.stats()["groups"]["consumers"] == {
        "delivered": 1, "pending": 4, "in_flight": 0, "dead": 0}
    redelivered = again.take("consumers")
    assert redelivered is not None and (redelivered.id, redelivered.attempt) == (2, 1)
    assert again.push("app/q", "c/0", b"next") == 6  # ids go on after the last


def test_a_repeated_push_is_the_same_message(tmp_path: Path) -> None:
    store = queue(tmp_path / "q.log")
    assert store.push("app/p", "7/1", b"hello") == 1
    assert store.push("app/p", "7/1", b"hello") == 1  # the producer re-ran the call
    assert store.push("app/other", "7/1", b"hello") == 2  # another producer's call
    # Cut back and run differently before anything was delivered: the new content replaces it.
    assert store.push("app/p", "7/1", b"changed") == 1
    message = store.take("consumers")
    assert message is not None and (message.id, message.body) == (1, b"changed")
    # Once delivered, a third content cannot replace it: both stay, and the store says so.
    assert store.push("app/p", "7/1", b"third") == 3
    assert any("had been delivered already" in w for w in store.warnings)
    assert queue(tmp_path / "q.log").stats()["messages"] == 3


def test_a_torn_last_record_is_cut_and_damage_before_good_records_refused(
        tmp_path: Path) -> None:
    log = tmp_path / "q.log"
    store = queue(log)
    for i in range(3):
        store.push("app/p", i, b"x" * 10)
    store.close()
    whole = log.read_bytes()
    log.write_bytes(whole[:-3])  # the last push was never answered
    torn = queue(log)
    assert torn.stats()["messages"] == 2 and "torn final record" in torn.warnings[0]
    torn.close()

    damaged = bytearray(log.read_bytes())
    damaged[12] ^= 0xFF  # inside the first record; good ones follow
    log.write_bytes(bytes(damaged))
    with pytest.raises(StoreError, match="damaged at byte 0"):
        queue(log)


def test_a_queue_resends_to_the_lane_that_had_the_message(tmp_path: Path) -> None:
    log = tmp_path / "q.log"
    store = queue(log, A, B)
    for i in range(4):
        store.push("app/p", i, b"m")
    lanes = {}
    for lane in (0, 1):
        while (message := store.take("consumers", lane)) is not None:
            lanes[message.id] = lane
    assert lanes == {1: 1, 2: 0, 3: 1, 4: 0}  # by id: the same after any restart
    again = queue(log, A, B)
    assert [again.take("consumers", 1).id, again.take("consumers", 1).id] == [1, 3]  # type: ignore[union-attr]


def test_failures_back_off_then_dead_letter_and_retry_runs_new_attempts(tmp_path: Path) -> None:
    clock = Clock()
    log = tmp_path / "q.log"
    store = queue(log, clock=clock)
    store.push("app/p", 1, b"poison")
    for attempt in (1, 2):
        message = store.take("consumers")
        assert message is not None and message.attempt == attempt
        store.failed(message, "ValueError: no", dead=False, retry_in=5.0)
        assert store.take("consumers") is None  # in backoff
        assert store.next_due("consumers") == clock.now + 5.0
        clock.now += 5.0
    last = store.take("consumers")
    assert last is not None and last.tries == 3
    store.failed(last, "ValueError: still no", dead=True, retry_in=0)
    assert store.take("consumers") is None
    [dead] = queue(log, clock=clock).dead_letters()
    assert (dead.id, dead.attempts, dead.error, dead.body) == (1, 3, "ValueError: still no",
                                                              b"poison")

    reopened = queue(log, clock=clock)
    assert reopened.retry() == 1 and reopened.dead_letters() == []
    again = reopened.take("consumers")
    # A new attempt, so a new call id: the consumer's record of attempt 3 does not answer it.
    assert again is not None and (again.attempt, again.tries) == (4, 1)
    assert delivery_seq(again, A) == "1.4:handle"


def test_a_topic_subscriber_gets_what_is_published_after_it_joined_in_order(
        tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    early = topic(log, A)
    early.push("app/p", 1, b"before b")
    early.close()
    store = topic(log, A, B)
    store.push("app/p", 2, b"after b")
    a_first = store.take(str(A))
    assert a_first is not None and a_first.body == b"before b"
    assert store.take(str(A)) is None  # ordered: the next waits for this one
    store.delivered(a_first)
    a_second, b_first = store.take(str(A)), store.take(str(B))
    assert a_second is not None and b_first is not None
    assert a_second.body == b_first.body == b"after b"


def test_delivery_calls_each_message_once_per_subscriber_with_its_call_id(
        tmp_path: Path) -> None:
    store = topic(tmp_path / "t.log", A, B)
    seen: dict[str, list[tuple[int, str]]] = {str(A): [], str(B): []}
    lock = threading.Lock()
    failed_once = threading.Event()

    def send(subscription: Subscription, seq: str, message: Message) -> None:
        if subscription == B and message.id == 3 and not failed_once.is_set():
            failed_once.set()
            raise Rejected("RuntimeError: once")
        if subscription == A and message.id == 5 and message.attempt == 1 and not hasattr(
                send, "unreachable"):
            send.unreachable = True  # type: ignore[attr-defined]
            raise ConnectionRefusedError("down for a moment")  # not a failure: no attempt
        with lock:
            seen[str(subscription)].append((message.id, seq))

    delivery = Delivery(store, "topic", [A, B], send, lambda line: None, backoff=0.0)
    delivery.start()
    for i in range(10):
        store.push("app/p", i, b"%d" % i)
    wait_until(lambda: all(len(v) == 10 for v in seen.values()), 30, "every message delivered")
    delivery.stop()
    assert [m for m, _ in seen[str(A)]] == list(range(1, 11))
    assert [m for m, _ in seen[str(B)]] == list(range(1, 11))
    assert dict(seen[str(B)])[3] == "3.2:handle"  # the second attempt
    assert dict(seen[str(A)])[5] == "5.1:handle"  # the same attempt, re-sent


def test_opening_a_log_mostly_finished_compacts_it_and_keeps_what_is_owed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distdev.resources import _store

    monkeypatch.setattr(_store, "COMPACT_AFTER", 10)
    log = tmp_path / "q.log"
    clock = Clock()
    store = queue(log, clock=clock)
    for i in range(30):
        store.push("app/p", f"c/{i}", b"m%d" % i)
    for _ in range(25):  # 1..25 handled; 26 fails once, then dead; 27..30 still owed
        message = store.take("consumers")
        assert message is not None
        store.delivered(message)
    poison = store.take("consumers")
    assert poison is not None and poison.id == 26
    store.failed(poison, "ValueError: no", dead=True, retry_in=0)
    store.retry(26)
    again = store.take("consumers")
    assert again is not None and again.attempt == 2
    store.failed(again, "ValueError: still no", dead=True, retry_in=0)
    store.close()
    size = log.stat().st_size

    compacted = queue(log, clock=clock)
    assert any("dropped 25 messages" in w for w in compacted.warnings)
    assert log.stat().st_size < size
    assert compacted.stats() == {"messages": 30, "groups": {"consumers": {
        "delivered": 25, "pending": 4, "in_flight": 0, "dead": 1}}}
    [dead] = compacted.dead_letters()
    assert (dead.id, dead.attempts, dead.error) == (26, 2, "ValueError: still no")
    assert compacted.push("app/p", "c/3", b"m3") == 4  # a re-sent push of a dropped message
    assert compacted.push("app/p", "c/new", b"new") == 31
    owed = []
    while (message := compacted.take("consumers")) is not None:
        owed.append(message.id)
    assert owed == [27, 28, 29, 30, 31]
    compacted.retry(26)
    retried = compacted.take("consumers")
    assert retried is not None and (retried.id, retried.attempt, retried.tries) == (26, 3, 1)
    compacted.close()
    assert queue(log, clock=clock).stats()["messages"] == 31  # and it reopens as it was
