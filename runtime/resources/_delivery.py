"""Delivering a queue's or topic's messages: each message is an incoming call of a consumer's
export, whose caller is the queue or topic and whose caller seq names the message and attempt.

That call id is what makes a message's effects happen once. Delivery is at least once: after a
crash of anything (the consumer, the host of the queue, the supervisor) a message whose outcome
the store had not recorded is sent again, as the same attempt, to the same consumer (the store's
lanes), and a consumer answers a call id it already ran from its journal (its dedup table) instead
of running it twice. A new attempt after a failure is a new call id, so the consumer runs it.

A queue's consumers share its messages (each message goes to one of them; several in flight per
consumer, so their journals' group commit covers many deliveries); a topic's subscribers each get
every message, one at a time, in publish order. A consumer whose code raises gets the message
again after a backoff that doubles, and after ``max_attempts`` the message is dead-lettered
(``distdev queue ls``, ``distdev queue retry``). A consumer that cannot be reached is not
failing: its message waits for it, and no attempt is counted.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence

from ._store import GroupSpec, Message, MessageStore

__all__ = ["Subscription", "Delivery", "Rejected", "Send", "delivery_seq", "QUEUE_GROUP"]

QUEUE_GROUP = "consumers"
"""The one group of a queue: its consumers share its messages."""

MAX_BACKOFF = 30.0
UNREACHABLE_BACKOFF = 1.0
"""Seconds at most between tries of a consumer that cannot be reached."""


@dataclasses.dataclass(frozen=True)
class Subscription:
    """An export that handles a queue's or topic's messages: ``service.export``."""

    service: str
    export: str

    def __str__(self) -> str:
        return f"{self.service}.{self.export}"


class Rejected(Exception):
    """The consumer's code raised: a failed attempt. ``error`` says what it raised."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


Send = Callable[[Subscription, str, Message], None]
"""Call ``subscription`` with the message (its caller seq given); ``Rejected`` if the consumer's
code raised, any other exception if it could not be reached or did not answer."""


def delivery_seq(message: Message, subscription: Subscription) -> str:
    """The caller seq of one attempt: ``<message id>.<attempt>:<export>``. The export is part
    of it because one service may subscribe two of its exports to a topic, and a service's dedup
    table knows a call by caller and caller seq alone."""
    return f"{message.id}.{message.attempt}:{subscription.export}"


def topic_group(subscription: Subscription) -> str:
    return str(subscription)


def groups_for(kind: str, subscriptions: Sequence[Subscription]) -> dict[str, list[Subscription]]:
    """Which group each subscription reads: a queue's share one, a topic's have one each."""
    if kind == "queue":
        return {QUEUE_GROUP: list(subscriptions)} if subscriptions else {}
    return {topic_group(s): [s] for s in subscriptions}


def group_specs(kind: str, subscriptions: Sequence[Subscription]) -> list[GroupSpec]:
    return [GroupSpec(name, lanes=len(subs), ordered=kind == "topic")
            for name, subs in groups_for(kind, subscriptions).items()]


class Delivery:
    """The threads that deliver one store's messages to its subscriptions, until ``stop``."""

    def __init__(self, store: MessageStore, kind: str, subscriptions: Sequence[Subscription],
                 send: Send, log: Callable[[str], None], *, max_attempts: int = 5,
                 backoff: float = 0.5, window: int = 8) -> None:
        self.store = store
        self.send = send
        self.log = log
        self.max_attempts = max_attempts
        self.backoff = backoff
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        for group, subs in groups_for(kind, subscriptions).items():
            per_lane = 1 if kind == "topic" else max(1, window)
            for lane, subscription in enumerate(subs):
                for _ in range(per_lane):
                    self._threads.append(threading.Thread(
                        target=self._deliver, args=(group, lane, subscription), daemon=True,
                        name=f"distdev-deliver-{subscription}"))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking messages; wait (``timeout`` s in all) for deliveries under way. One
        still waiting on its consumer then is sent again at the next start."""
        self._stopping.set()
        self.store.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _deliver(self, group: str, lane: int, subscription: Subscription) -> None:
        try:
            self._deliver_until_stopped(group, lane, subscription)
        except Exception:
            if not self._stopping.is_set():
                raise
            # Stopped while a delivery waited: its outcome finds the store closed, and the
            # message is sent again, as the same attempt, when the resource starts again.

    def _deliver_until_stopped(self, group: str, lane: int, subscription: Subscription) -> None:
        unreachable = 0.05
        while not self._stopping.is_set():
            message = self.store.take(group, lane)
            if message is None:
                self._idle(group, lane)
                continue
            try:
                self.send(subscription, delivery_seq(message, subscription), message)
            except Rejected as rejected:
                self._failed(message, subscription, rejected.error)
                continue
            except Exception as exc:  # unreachable: the same attempt again, later
                self.store.released(message)
                if unreachable >= UNREACHABLE_BACKOFF:
                    self.log(f"{subscription} cannot be reached ({exc}); message {message.id} "
                             "waits for it")
                self._stopping.wait(unreachable)
                unreachable = min(unreachable * 2, UNREACHABLE_BACKOFF)
                continue
            unreachable = 0.05
            self.store.delivered(message)

    def _failed(self, message: Message, subscription: Subscription, error: str) -> None:
        dead = message.tries >= self.max_attempts
        retry_in = min(self.backoff * 2 ** (message.tries - 1), MAX_BACKOFF)
        self.store.failed(message, error, dead=dead, retry_in=retry_in)
        if dead:
            self.log(f"message {message.id} failed {message.tries} times in {subscription} "
                     f"(last: {error}); it is dead-lettered: `distdev queue retry` sends it again")

    def _idle(self, group: str, lane: int) -> None:
        due = self.store.next_due(group, lane)
        wait = 1.0 if due is None else max(0.0, min(1.0, due - self.store.clock()))
        self.store.wait(wait)
