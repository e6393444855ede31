"""The relay's components, as in debugpy's own adapter (``debugpy/adapter/components.py``).

A component owns one channel — ``Client`` (the editor, on our stdio) or ``Server`` (debugpy's
adapter, a child process on pipes) — and shares one ``Session`` with the other. It numbers what
it sends on its channel, and reads the channel on a thread of its own: a response the relay is
waiting for is taken there at once (``take_now``); every other message is queued and handled in
arrival order on the component's second thread, so a handler may wait for debugpy's answer
without holding up the answer itself.

A handler is named after its message (``launch_request``, ``stopped_event``); one without a
handler of its own goes to ``request`` or ``event``. Each is wrapped by ``message_handler``,
which holds the session's lock for it and turns its failure into the protocol's answer.
"""

from __future__ import annotations

import functools
import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ._config import ConfigError
from ._session import Session
from ._time_travel import TravelError
from ._wire import Channel, Json

__all__ = ["Component", "RequestError", "message_handler"]

C = TypeVar("C", bound="Component")
Handler = Callable[[C, Json], None]

ASK_TIMEOUT = 15.0
"""Seconds a handler waits for debugpy's answer before it gives up with an error."""


class RequestError(Exception):
    """A request the relay answers with an error response carrying this message."""


_EXPECTED = (RequestError, ConfigError, TravelError)  # their messages say what to do


def message_handler(handler: Handler[C]) -> Handler[C]:
    """Run ``handler`` holding the session's lock. Its failure becomes the protocol's answer
    (``Component.failed``): an error response to a request, the event passed on for an event.
    A bug in the relay must not hang the client: it says so and carries on."""

    @functools.wraps(handler)
    def handle(self: C, message: Json) -> None:
        with self.session:
            try:
                handler(self, message)
            except _EXPECTED as exc:
                self.failed(message, str(exc))
            except Exception as exc:
                self.failed(message, f"distdev's debug adapter failed: "
                                     f"{type(exc).__name__}: {exc}")

    return handle


@dataclass(frozen=True)
class _Closed:
    reason: str


class Component:
    """One peer of the relay: its channel, its handlers, and the session it shares."""

    def __init__(self, session: Session, channel: Channel) -> None:
        self.session = session
        self.channel = channel
        self._seq = itertools.count(1)
        self._inbox: queue.SimpleQueue[Json | _Closed] = queue.SimpleQueue()

    def start(self) -> None:
        threading.Thread(target=self._handle_inbox, name=f"dap-{self.channel.name}-handlers",
                         daemon=True).start()
        self.channel.start(self._arrived, self._ended)

    # -- sending ------------------------------------------------------------------------------

    def send(self, message: Json) -> int:
        """Send ``message`` with this channel's next sequence number; returns the number."""
        with self.session:
            seq = message["seq"] = next(self._seq)
            self.channel.send(message)
        return seq

    def send_event(self, event: str, body: Json) -> None:
        self.send({"type": "event", "event": event, "body": body})

    def respond(self, request: Json, body: Json | None = None) -> None:
        self.send({"type": "response", "request_seq": request["seq"], "success": True,
                   "command": request["command"], "body": body or {}})

    def respond_error(self, request: Json, message: str) -> None:
        self.send({
            "type": "response", "request_seq": request["seq"], "success": False,
            "command": request.get("command", ""), "message": message,
            "body": {"error": {"id": 1, "format": message.replace("{", "{{").replace("}", "}}"),
                               "showUser": True}},
        })

    def failed(self, message: Json, text: str) -> None:
        """A handler of ``message`` failed with ``text``: answer a request with an error."""
        if message.get("type") == "request":
            self.respond_error(message, text)

    # -- receiving ----------------------------------------------------------------------------

    def take_now(self, message: Json) -> bool:
        """On the reader thread: whether ``message`` was dealt with at once (not queued)."""
        return False

    def ended_now(self, reason: str) -> None:
        """On the reader thread, as the channel ends (before ``closed`` is handled)."""

    def closed(self, reason: str) -> None:
        """The channel ended; handled after every message that came before the end."""

    @message_handler
    def request(self, request: Json) -> None:
        """A request with no handler of its own."""

    @message_handler
    def event(self, event: Json) -> None:
        """An event with no handler of its own."""

    @message_handler
    def response(self, response: Json) -> None:
        """A response that ``take_now`` did not take."""

    def _arrived(self, message: Json) -> None:
        if not self.take_now(message):
            self._inbox.put(message)

    def _ended(self, reason: str) -> None:
        self.ended_now(reason)
        self._inbox.put(_Closed(reason))

    def _handle_inbox(self) -> None:
        while not isinstance(item := self._inbox.get(), _Closed):
            self.dispatch(item)
        with self.session:
            self.closed(item.reason)

    def dispatch(self, message: Json) -> None:
        """Handle one message from the channel, on the handler thread, by its handler."""
        kind = message.get("type")
        if kind == "request":
            getattr(self, f"{message.get('command')}_request", self.request)(message)
        elif kind == "event":
            getattr(self, f"{message.get('event')}_event", self.event)(message)
        elif kind == "response":
            self.response(message)
