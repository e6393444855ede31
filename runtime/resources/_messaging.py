"""``resources.queue`` and ``resources.topic``: messages delivered by calling an export.

::

    jobs = resources.queue("emails")        # each message handled by one consumer call
    jobs.consume(mailer.send)               # at build time: mailer.send(message) handles them
    jobs.push({"to": "ann"})                # a call-out of the caller: journaled, deduplicated

    loans = resources.topic("loans")        # every subscriber gets every message
    loans.subscribe(notifier.on_loan)
    loans.publish({"book": 7})

A push is a call of the producer's, with the producer's call id: a producer that crashed after
pushing and runs that call again pushes the same message, not a second one (``_store``). A
delivery is an incoming call of the consumer's, whose caller is the queue and whose caller seq
names the message and attempt (``_delivery``), so a re-delivered message's effects happen once.
Subscriptions are wiring, not content: they are made at build time and recorded in the
manifest, so that a later build's consumers are the ones a deployment delivers to.

Messages are kept in their wire form, as the producer's journal holds them, and reach the
consumer as the one argument of its export, rebuilt with its own classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import cbor2

from ..errors import PhaseError
from ..membrane import (
    ServiceProxy,
    export_reference,
    from_wire,
    is_export,
    json_ready,
    make_proxy,
    target_of,
    to_wire,
)
from ._declare import declare
from ._delivery import Delivery, Subscription, group_specs
from ._kinds import Kind, ResourceError, register
from ._store import Message, MessageStore

__all__ = ["QUEUE", "TOPIC", "MessagingBackend", "Deliver", "SUBSCRIPTIONS", "Queue", "Topic",
           "queue", "topic"]

LOG_FILE = "messages.log"
SUBSCRIPTIONS = "subscriptions"
"""The option under which a build records a queue's consumers or a topic's subscribers:
``[[service id, export], ...]``."""

Deliver = Callable[[str, str, str, list[Any]], Any]
"""(consumer service id, export, caller seq, arguments in wire form) -> its result's wire form;
``Rejected`` if the consumer's code raised, any other exception if it could not be reached.
What a host (``App`` in one process, the resource host under an engine) delivers with."""


class _Handlers:
    """What a ``consume``/``subscribe`` argument is rebuilt with: proxies, never classes."""

    def resolve_class(self, module: str, qualname: str) -> type:
        raise ResourceError(f"a handler is an export of a service (mailer.send), not a "
                            f"{module}.{qualname}")

    def make_proxy(self, service_id: str) -> ServiceProxy:
        return make_proxy(service_id, _NoRouter(), None)


class _NoRouter:
    def call(self, holder: Any, target: str, export: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        raise AssertionError("a queue delivers through its host, not through a proxy")

    def exports(self, target: str) -> None:
        return None


class MessagingBackend:
    """An open queue or topic: its store, its subscriptions, and (once its host starts it)
    the delivery of its messages."""

    def __init__(self, resource_id: str, kind: str, options: Mapping[str, Any],
                 folder: Path) -> None:
        self.id = resource_id
        self.kind = kind
        self.max_attempts = int(options.get("max_attempts", 5))
        self.backoff = float(options.get("backoff", 0.5))
        self.subscriptions = [Subscription(s, e) for s, e in options.get(SUBSCRIPTIONS, [])]
        self.store = MessageStore(folder / LOG_FILE, group_specs(kind, self.subscriptions),
                                  durable=bool(options.get("durable", True)))
        self.delivery: Delivery | None = None

    # -- calls -------------------------------------------------------------------------------

    def call(self, caller: str, caller_seq: int | str | None, export: str,
             args: list[Any], kwargs: dict[str, Any]) -> Any:
        """A call with plain values (JSON from ``distdev call``): as their wire form."""
        where = f"an argument of {self.id}.{export}"
        return self.call_wire(caller, caller_seq, export, to_wire(args, where),
                              {k: to_wire(v, where) for k, v in kwargs.items()})

    def call_wire(self, caller: str, caller_seq: int | str | None, export: str,
                  args: list[Any], kwargs: dict[str, Any]) -> Any:
        """A call with its arguments in wire form: a message is stored as the producer sent
        it, classes and all, and rebuilt only by its consumer."""
        name = _EXPORTS[self.kind].get(export)
        if name is None:
            raise ResourceError(f"{self.kind} resource {self.id} has no method {export!r}; it "
                                f"has: {', '.join(_EXPORTS[self.kind])}")
        method: Callable[..., Any] = getattr(self, name)
        try:
            return method(caller, caller_seq, *args, **kwargs)
        except TypeError as exc:
            raise ResourceError(f"{self.id}.{export}{KINDS[self.kind].exports[export]}: {exc}"
                                ) from None

    def _push(self, caller: str, caller_seq: int | str | None, message: Any) -> int:
        return self.store.push(caller, caller_seq, cbor2.dumps(message))

    def _subscribe(self, caller: str, caller_seq: int | str | None, handler: Any) -> None:
        verb = "consume" if self.kind == "queue" else "subscribe"
        if self.delivery is not None:
            raise PhaseError(f"{self.id}.{verb}() was called at runtime; consumers are wired at "
                             "build time: call it at the top level of a service module")
        export = from_wire(handler, _Handlers())
        if not is_export(export):
            raise ResourceError(f"{self.id}.{verb}(handler) takes an export of a service "
                                f"(like mailer.send), not a {type(export).__name__}")
        proxy, name = export_reference(export)
        subscription = Subscription(target_of(proxy), name)
        if subscription in self.subscriptions:
            raise ResourceError(f"{subscription} already {verb}s {self.id}; wire it once")
        self.subscriptions.append(subscription)
        self.store.join_groups(group_specs(self.kind, self.subscriptions))

    def _dead_letters(self, caller: str, caller_seq: int | str | None) -> list[dict[str, Any]]:
        return [{"id": d.id, "subscriber": d.group, "attempts": d.attempts, "error": d.error,
                 "message": json_ready(cbor2.loads(d.body))} for d in self.store.dead_letters()]

    def _retry(self, caller: str, caller_seq: int | str | None,
               message_id: int | None = None) -> int:
        return self.store.retry(message_id)

    def _stats(self, caller: str, caller_seq: int | str | None) -> dict[str, Any]:
        stats = self.store.stats()
        stats["kind"] = self.kind
        stats["subscribers"] = [str(s) for s in self.subscriptions]
        return stats

    # -- hosting -----------------------------------------------------------------------------

    def wiring(self) -> dict[str, Any]:
        """What the build records in the manifest beside the declared options."""
        return {SUBSCRIPTIONS: [[s.service, s.export] for s in self.subscriptions]}

    def start_delivery(self, deliver: Deliver, log: Callable[[str], None], *,
                       window: int = 8) -> None:
        """Deliver messages through ``deliver`` until ``close``."""
        if self.delivery is not None:
            return

        def send(subscription: Subscription, seq: str, message: Message) -> None:
            deliver(subscription.service, subscription.export, seq, [cbor2.loads(message.body)])

        self.delivery = Delivery(self.store, self.kind, self.subscriptions, send,
                                 lambda line: log(f"{self.id}: {line}"),
                                 max_attempts=self.max_attempts, backoff=self.backoff,
                                 window=window)
        for warning in self.store.warnings:
            log(f"{self.id}: {warning}")
        self.delivery.start()

    def stop_delivery(self) -> None:
        """Stop calling consumers (deliveries under way end first); calls are still answered."""
        if self.delivery is not None:
            self.delivery.stop()

    def close(self) -> None:
        self.stop_delivery()
        self.store.close()


_EXPORTS = {
    "queue": {"push": "_push", "consume": "_subscribe", "dead_letters": "_dead_letters",
              "retry": "_retry", "stats": "_stats"},
    "topic": {"publish": "_push", "subscribe": "_subscribe", "dead_letters": "_dead_letters",
              "retry": "_retry", "stats": "_stats"},
}

_SHARED_DOCS = {
    "dead_letters": "The messages its consumers kept failing on, with the last error.",
    "retry": "Send dead-lettered messages (all, or one id) again; how many.",
    "stats": "Messages pushed; delivered, pending, in flight and dead per subscriber.",
}
_SHARED_SIGNATURES = {"dead_letters": "() -> list[dict[str, Any]]",
                      "retry": "(message_id: int | None = None) -> int",
                      "stats": "() -> dict[str, Any]"}


def _check_options(kind: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    def check(resource_id: str, options: dict[str, Any]) -> dict[str, Any]:
        name = resource_id.rpartition("/")[2]
        unknown = set(options) - {"max_attempts", "backoff", SUBSCRIPTIONS}
        if unknown:
            raise ResourceError(f"resources.{kind}({name!r}) takes max_attempts= and backoff=, "
                                f"not {', '.join(sorted(unknown))}")
        attempts, backoff = options.get("max_attempts", 5), options.get("backoff", 0.5)
        if type(attempts) is not int or attempts < 1:
            raise ResourceError(f"resources.{kind}({name!r}, max_attempts=...) is a whole number "
                                "of at least 1: the attempts before a message is dead-lettered")
        if type(backoff) not in (int, float) or backoff < 0:
            raise ResourceError(f"resources.{kind}({name!r}, backoff=...) is seconds (>= 0) "
                                "before the second attempt; each later one waits twice as long")
        return {**options, "max_attempts": attempts, "backoff": float(backoff)}
    return check


def _consumers(options: Mapping[str, Any]) -> list[str]:
    """The services a queue or topic calls: its consumers' (its edges in the manifest)."""
    return sorted({service for service, _export in options.get(SUBSCRIPTIONS, [])})


def _opener(kind: str) -> Callable[[str, Mapping[str, Any], Path], MessagingBackend]:
    def open_backend(resource_id: str, options: Mapping[str, Any],
                     folder: Path) -> MessagingBackend:
        return MessagingBackend(resource_id, kind, options, folder)
    return open_backend


QUEUE = register(Kind(
    name="queue",
    exports={"push": "(message: Any) -> int", "consume": "(handler: Callable[[Any], Any]) -> None",
             **_SHARED_SIGNATURES},
    docs={"push": "Add a message; its id. Each message is handled by one consumer call.",
          "consume": "At build time: handler (an export, like mailer.send) handles messages.",
          **_SHARED_DOCS},
    open=_opener("queue"),
    check_options=_check_options("queue"),
    calls=_consumers,
    ray=True,  # served by an actor, its store in the shared state folder
))

TOPIC = register(Kind(
    name="topic",
    exports={"publish": "(message: Any) -> int",
             "subscribe": "(handler: Callable[[Any], Any]) -> None", **_SHARED_SIGNATURES},
    docs={"publish": "Send a message to every subscriber, in publish order; its id.",
          "subscribe": "At build time: handler (an export) gets every later message.",
          **_SHARED_DOCS},
    open=_opener("topic"),
    check_options=_check_options("topic"),
    calls=_consumers,
    ray=True,  # served by an actor, its store in the shared state folder
))

KINDS = {"queue": QUEUE, "topic": TOPIC}


# -- what service code calls at build time -----------------------------------------------------

class Queue(Protocol):
    """A queue resource (``resources.queue``): each message handled by one consumer call."""

    def push(self, message: Any) -> int: ...
    def consume(self, handler: Callable[[Any], Any]) -> None: ...
    def dead_letters(self) -> list[dict[str, Any]]: ...
    def retry(self, message_id: int | None = None) -> int: ...
    def stats(self) -> dict[str, Any]: ...


class Topic(Protocol):
    """A topic resource (``resources.topic``): every subscriber gets every later message."""

    def publish(self, message: Any) -> int: ...
    def subscribe(self, handler: Callable[[Any], Any]) -> None: ...
    def dead_letters(self) -> list[dict[str, Any]]: ...
    def retry(self, message_id: int | None = None) -> int: ...
    def stats(self) -> dict[str, Any]: ...


def queue(name: str, *, max_attempts: int = 5, backoff: float = 0.5) -> Queue:
    """A work queue named ``name`` under this service: ``push(message)`` at runtime, and at
    build time ``consume(proxy.export)`` for the exports that handle its messages (each
    message by one call). A handler that raises gets the message again after ``backoff``
    seconds, doubling; after ``max_attempts`` attempts it is dead-lettered."""
    proxy: Any = declare("queue", name, {"max_attempts": max_attempts, "backoff": backoff})
    return proxy  # type: ignore[no-any-return]


def topic(name: str, *, max_attempts: int = 5, backoff: float = 0.5) -> Topic:
    """A topic named ``name`` under this service: ``publish(message)`` at runtime, and at
    build time ``subscribe(proxy.export)``: every subscriber gets every message published
    after it subscribed, once, in publish order."""
    proxy: Any = declare("topic", name, {"max_attempts": max_attempts, "backoff": backoff})
    return proxy  # type: ignore[no-any-return]
