"""The relay's component machinery on its own, over real pipes: handlers by message name, run
holding the session's lock, a failure answered as a protocol error, and waits that let the other
component run."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import IO

import pytest

from distdev.dap_adapter._components import Component, RequestError, message_handler
from distdev.dap_adapter._session import Session
from distdev.dap_adapter._wire import Channel, Json, encode_message, read_message


class Probe(Component):
    """A component with one handler per behaviour under test."""

    closed_because: str | None = None

    @message_handler
    def crash_request(self, request: Json) -> None:
        raise KeyError("threadId")

    @message_handler
    def refuse_request(self, request: Json) -> None:
        raise RequestError('launch a replay ("journal": {path}) to use it')

    @message_handler
    def locked_request(self, request: Json) -> None:
        taken: list[bool] = []
        other = threading.Thread(target=lambda: taken.append(self.session.lock.acquire(False)))
        other.start()
        other.join()
        self.respond(request, {"lockedForOthers": not taken[0]})

    @message_handler
    def request(self, request: Json) -> None:
        self.respond(request, {"default": request["command"]})

    def closed(self, reason: str) -> None:
        self.closed_because = reason
        self.session.ended.set()


@pytest.fixture
def probe() -> Iterator[tuple[Probe, IO[bytes], IO[bytes]]]:
    """A started Probe; yields it, the stream to write requests to, the stream of its output."""
    to_probe, requests = os.pipe()
    answers, from_probe = os.pipe()
    streams = [os.fdopen(fd, mode) for fd, mode in ((to_probe, "rb"), (from_probe, "wb"),
                                                     (requests, "wb"), (answers, "rb"))]
    component = Probe(Session(), Channel("client", streams[0], streams[1]))
    component.start()
    yield component, streams[2], streams[3]
    for stream in reversed(streams):
        stream.close()


def ask(writer: IO[bytes], reader: IO[bytes], seq: int, command: str) -> Json:
    writer.write(encode_message({"seq": seq, "type": "request", "command": command,
                                 "arguments": {}}))
    writer.flush()
    answer = read_message(reader)
    assert answer is not None
    return answer


def test_component_failure_is_an_error_response_and_the_component_carries_on(
    probe: tuple[Probe, IO[bytes], IO[bytes]],
) -> None:
    _, writer, reader = probe
    crashed = ask(writer, reader, 5, "crash")
    assert (crashed["request_seq"], crashed["command"], crashed["success"]) == (5, "crash", False)
    assert crashed["message"] == "distdev's debug adapter failed: KeyError: 'threadId'"
    assert crashed["body"]["error"]["showUser"] is True

    refused = ask(writer, reader, 6, "refuse")
    assert refused["message"] == 'launch a replay ("journal": {path}) to use it'
    # DAP formats the error's text: a literal brace is doubled.
    assert refused["body"]["error"]["format"] == 'launch a replay ("journal": {{path}}) to use it'

    answered = ask(writer, reader, 7, "threads")  # no handler of its own: the default one
    assert answered["success"] and answered["body"] == {"default": "threads"}
    assert [crashed["seq"], refused["seq"], answered["seq"]] == [1, 2, 3]  # numbered in order


def test_component_handler_runs_holding_the_session_lock(
    probe: tuple[Probe, IO[bytes], IO[bytes]],
) -> None:
    _, writer, reader = probe
    assert ask(writer, reader, 1, "locked")["body"] == {"lockedForOthers": True}


def test_component_closed_is_handled_after_the_channel_ends(
    probe: tuple[Probe, IO[bytes], IO[bytes]],
) -> None:
    component, writer, _ = probe
    writer.close()
    assert component.session.ended.wait(5)
    assert component.closed_because == "end of stream"


def test_session_wait_for_lets_another_thread_take_the_lock_meanwhile() -> None:
    session = Session()
    answer: list[str] = []

    def answering() -> None:
        with session:  # blocks unless the waiter released the lock
            answer.append("here")
            session.changed()

    with session:
        other = threading.Thread(target=answering)
        other.start()
        assert session.wait_for(lambda: bool(answer), timeout=5)
        assert not session.wait_for(lambda: len(answer) > 1, timeout=0.05)  # nobody else comes
    other.join()


def test_serve_answers_every_pending_request_and_ends_when_debugpys_adapter_is_gone() -> None:
    import sys

    from distdev.dap_adapter._client import serve

    to_relay, requests = os.pipe()
    answers, from_relay = os.pipe()
    with os.fdopen(to_relay, "rb") as relay_in, os.fdopen(from_relay, "wb") as relay_out, \
            os.fdopen(requests, "wb") as writer, os.fdopen(answers, "rb") as reader:
        ended: list[int] = []
        relay = threading.Thread(target=lambda: ended.append(serve(
            relay_in, relay_out, [sys.executable, "-c", "pass"])))  # an adapter that exits
        relay.start()
        writer.write(encode_message({"seq": 1, "type": "request", "command": "initialize",
                                     "arguments": {"adapterID": "distdev"}}))
        writer.flush()
        relay.join(15)
        assert ended == [0]
        relay_out.close()  # everything the relay said is in the pipe: read to its end
        messages = list(iter(lambda: read_message(reader), None))
    response, terminated = messages
    assert (response["request_seq"], response["success"]) == (1, False)
    assert response["message"].startswith("debugpy's adapter ended")
    assert (terminated["type"], terminated["event"]) == ("event", "terminated")
