"""The server component: ``python -m debugpy.adapter``, a child process on pipes.

The relay sends debugpy two kinds of requests. The client's are *delegated*: debugpy's response
goes back to the client, edited on the way if the client's handler asked (``delegate``). The
relay's own are *asks* (the whole stack, a frame's service, a journal position): the handler
waits for the answer, which is taken on the reader thread (``take_now``). Everything else from
debugpy — delegated responses, events, its reverse requests (``runInTerminal``) — is handled in
the order it came, and mostly passed on to the client; the handlers below are the exceptions:
a stop shown with its journal position (or passed silently on a trip back in time), breakpoint
ids translated, pydevd's step-in hint dropped.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from ._breakpoints import Check
from ._components import ASK_TIMEOUT, Component, RequestError, message_handler
from ._engine import Frame, Stack
from ._evaluate import JOURNAL_POSITION, JOURNAL_POSITIONS, REWIND, SERVICE_GLOBAL, read_service
from ._session import Session
from ._time_travel import Arrival, Leg, Position
from ._wire import Channel, Json

__all__ = ["Server", "Reply", "USER_UNHANDLED_NOTE"]

Edit = Callable[[Json], None]
STEP_IN_HINT = "Frame skipped from debugging during step-in"
USER_UNHANDLED_NOTE = "(note: full exception trace is shown but execution is paused at:"
"""What debugpy appends to an exception's id when it stops as the exception leaves user code."""
CURRENT_FRAME = "(Current frame)"
"""How pydevd marks the frame a user-unhandled stop is paused in (its stack is the traceback)."""
CHAINED = "[Chained Exc:"
"""How pydevd names the frames of an exception's chained exceptions, after its own."""


@dataclass
class Reply:
    """debugpy's answer to one of the relay's own requests, once it has come."""

    session: Session
    command: str
    then: Edit | None = None
    """Run on the answer (if it succeeded) as soon as it comes, on the reader thread."""
    message: Json | None = field(default=None, init=False)

    def arrived(self, message: Json) -> None:
        with self.session:
            if self.then is not None and message.get("success"):
                try:
                    self.then(message)
                except Exception as exc:  # on the reader thread: fail the answer, not the thread
                    message = {"type": "response", "success": False, "message": (
                        f"distdev's debug adapter failed: {type(exc).__name__}: {exc}")}
            self.message = message
            self.session.changed()

    def wait(self) -> Json:
        """The answer; the session's lock is released while it is awaited."""
        if not self.session.wait_for(lambda: self.message is not None, ASK_TIMEOUT):
            raise RequestError(f"debugpy did not answer {self.command} within {ASK_TIMEOUT:g} s")
        assert self.message is not None
        return self.message

    def result(self) -> str | None:
        """The result text of the ``evaluate`` this answers, or None if it failed."""
        answer = self.wait()
        if not answer.get("success"):
            return None
        result = (answer.get("body") or {}).get("result")
        return None if result is None else str(result)

    def body(self) -> Json:
        """The answer's body; a failure is raised."""
        answer = self.wait()
        if not answer.get("success"):
            raise RequestError(answer.get("message") or f"debugpy could not answer {self.command}")
        body: Json = answer.get("body") or {}
        return body


@dataclass(frozen=True)
class _Delegated:
    request: Json  # as the client sent it
    edit: Edit | None


class Server(Component):
    """debugpy's adapter: the relay's requests to it, and what it sends the client."""

    def __init__(self, session: Session, client: Component, command: list[str]) -> None:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert process.stdin is not None and process.stdout is not None
        super().__init__(session, Channel("debugpy", process.stdout, process.stdin))
        self.client = client
        self.process = process
        self._asked: dict[int, Reply] = {}
        self._delegated: dict[int, _Delegated] = {}
        self._reverse: dict[int, int] = {}  # the client's seq of a reverse request -> debugpy's

    # -- the relay's requests -------------------------------------------------------------------

    def ask(self, command: str, arguments: Json, then: Edit | None = None) -> Reply:
        """Send a request of the relay's own; ``Reply.wait`` for its answer, or let it go."""
        reply = Reply(self.session, command, then)
        with self.session:
            seq = self.send({"type": "request", "command": command, "arguments": arguments})
            self._asked[seq] = reply
        return reply

    def delegate(self, request: Json, arguments: Json | None = None,
                 edit: Edit | None = None) -> None:
        """Pass the client's ``request`` on (with other ``arguments``); debugpy's response goes
        back to the client, through ``edit`` first if it succeeded."""
        message = {"type": "request", "command": request["command"],
                   "arguments": request.get("arguments", {}) if arguments is None else arguments}
        with self.session:
            self._delegated[self.send(message)] = _Delegated(request, edit)

    def top_frame(self, thread_id: int) -> int | None:
        """The id of a stopped thread's innermost frame, or None."""
        body = self.ask("stackTrace", {"threadId": thread_id, "startFrame": 0,
                                       "levels": 1}).wait().get("body") or {}
        frames = body.get("stackFrames") or []
        return int(frames[0]["id"]) if frames else None

    def evaluate(self, frame_id: int, expression: str) -> Reply:
        return self.ask("evaluate", {"expression": expression, "frameId": frame_id,
                                     "context": "watch"})

    def load_stack(self, thread_id: int) -> Stack:
        """A stopped thread's whole stack from debugpy, distdev's frames dropped, each named by
        service. In an application, the first stack of a stop also announces every service's
        journal position."""
        raw = self.ask("stackTrace", {"threadId": thread_id, "startFrame": 0,
                                      "levels": 0}).body().get("stackFrames", [])
        frames = [Frame(int(f["id"]), str(f.get("name", "")), (f.get("source") or {}).get("path"))
                  for f in raw]
        visible = self.session.runtime.visible(frames)
        # Every question is sent before any answer is awaited: one round trip (the debuggee
        # answers requests sent together at once: _pydevd), so a step costs nothing more.
        services = [self.evaluate(f.id, SERVICE_GLOBAL) for f in visible]
        positions = None
        if self.session.mode == "dev" and self.session.positions_due and frames:
            self.session.positions_due = False
            positions = self.evaluate(frames[0].id, JOURNAL_POSITIONS.expression())
        for frame, service in zip(visible, services):
            frame.service = read_service(service.result())
        if positions is not None:
            found = JOURNAL_POSITIONS.read(positions.result())
            if found is not None:
                self.client.send_event("distdev/journalPosition", _position_event(
                    found.service, found.seq, dict(found.positions)))
        self.session.raw_frames.update((int(f["id"]), f) for f in raw)
        stack = self.session.stacks[thread_id] = Stack(visible)
        return stack

    def resend_breakpoints(self, keys: list[str]) -> list[Reply]:
        """Send debugpy each file's union of breakpoints again (the book records its answers)."""
        book = self.session.breakpoints
        replies = []
        for key in keys:
            union, own = book.union(key)

            def remember(answer: Json, key: str = key, union: Json = union, own: int = own) -> None:
                answered = (answer.get("body") or {}).get("breakpoints", [])
                book.remember(key, union, answered, own, from_client=False)

            replies.append(self.ask("setBreakpoints", union, remember))
        return replies

    def stop(self) -> None:
        """End debugpy's adapter: its stdin closed, then terminated, then killed."""
        process = self.process
        if process.stdin is not None:
            # Closing flushes, and waits for a writer thread blocked on a full pipe (a busy
            # debugpy reads nothing): on a thread of its own, so that the stop goes on.
            closer = threading.Thread(target=_close_quietly, args=(process.stdin,),
                                      name="distdev-close-debugpy-stdin", daemon=True)
            closer.start()
            closer.join(2)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()

    # -- what debugpy sends ---------------------------------------------------------------------

    def take_now(self, message: Json) -> bool:
        if message.get("type") != "response":
            return False
        with self.session:
            reply = self._asked.pop(int(message.get("request_seq", -1)), None)
        if reply is None:
            return False
        reply.arrived(message)
        return True

    def ended_now(self, reason: str) -> None:
        with self.session:
            asked, self._asked = self._asked, {}
            for reply in asked.values():
                reply.arrived({"type": "response", "success": False,
                               "message": f"debugpy's adapter ended ({reason})"})

    def closed(self, reason: str) -> None:
        for seq in list(self._delegated):
            self.response({"type": "response", "request_seq": seq, "success": False,
                           "message": f"debugpy's adapter ended ({reason})"})
        if not self.session.terminated_sent:
            self.session.terminated_sent = True
            self.client.send_event("terminated", {})
        self.session.ended.set()

    @message_handler
    def response(self, response: Json) -> None:
        delegated = self._delegated.pop(int(response.get("request_seq", -1)), None)
        if delegated is None:
            return  # the answer to a request nobody waits for
        response.setdefault("command", delegated.request["command"])
        response["request_seq"] = delegated.request["seq"]
        if delegated.edit is not None and response.get("success"):
            delegated.edit(response)
        self.client.send(response)
        if delegated.request["command"] == "disconnect":
            self.session.ended.set()  # the session is over once the client has the answer

    @message_handler
    def request(self, request: Json) -> None:
        """A reverse request (``runInTerminal``, ``startDebugging``): the client answers."""
        original = request["seq"]
        self._reverse[self.client.send(request)] = original

    def reverse_response(self, response: Json) -> None:
        """The client's answer to a reverse request, back to debugpy."""
        original = self._reverse.pop(int(response.get("request_seq", -1)), None)
        if original is not None:
            response["request_seq"] = original
            self.send(response)

    @message_handler
    def event(self, event: Json) -> None:
        self.client.send(event)

    def failed(self, message: Json, text: str) -> None:
        """A handler of debugpy's ``message`` failed: the client gets it unchanged, and a line
        saying what went wrong."""
        if message.get("type") == "request":
            self.respond_error(message, text)
            return
        self.client.send(message)
        self.client.send_event("output", {"category": "console", "output": f"{text}\n"})

    @message_handler
    def stopped_event(self, event: Json) -> None:
        self.session.resumed()
        self.session.stops += 1
        body = event.setdefault("body", {})
        if not self._breakpoints_hold(body) or self.exception_stop_passes(body):
            self.ask("continue", {"threadId": body.get("threadId")})
            return
        self._translate_hits(body)
        thread_id = body.get("threadId")
        if not isinstance(thread_id, int):
            self.client.send(event)
        elif self.session.mode == "replay":
            self._replay_stopped(event, self._replay_position(thread_id))
        else:
            self.session.positions_due = True  # announced with the stack the client asks next
            self.client.send(event)

    def _breakpoints_hold(self, body: Json) -> bool:
        """At a stop on a line the relay checks (a function breakpoint's): whether any of its
        breakpoints' conditions holds. The stop then names those (``function breakpoint`` when
        only function breakpoints hold); False: pass it silently."""
        book = self.session.breakpoints
        hit = [i for i in body.get("hitBreakpointIds") or [] if isinstance(i, int)]
        checks = {i: book.checks(i) for i in hit}
        if body.get("reason") != "breakpoint" or not any(checks.values()):
            return True
        thread_id = body.get("threadId")
        top = self.top_frame(thread_id) if isinstance(thread_id, int) else None
        held: list[int] = []
        functions_only = True
        for debugpy_id in hit:
            if not checks[debugpy_id]:
                held.append(debugpy_id)  # debugpy checked it: it holds
                functions_only = False
                continue
            for check in checks[debugpy_id]:
                if check.id is not None and top is not None and self._holds(top, check):
                    held.append(check.id)
                    functions_only = functions_only and check.function
        if not held:
            return False
        body["hitBreakpointIds"] = held
        if functions_only:
            body["reason"] = "function breakpoint"
        return True

    def exception_stop_passes(self, body: Json) -> bool:
        """Whether a user-unhandled stop is passed silently. Where the exception leaves a
        service's export into the membrane, which raises it again in the calling service's
        frame, it is not unhandled yet: it stops where it leaves the last service's code
        (toward the ingress or the host), if nothing catches it on the way. When the client
        asked for "uncaught" only, just that last moment is shown."""
        thread_id = body.get("threadId")
        if body.get("reason") != "exception" or not isinstance(thread_id, int):
            return False
        info = self.ask("exceptionInfo", {"threadId": thread_id}).wait()
        if USER_UNHANDLED_NOTE not in str((info.get("body") or {}).get("exceptionId", "")):
            return False
        # The stack shown is the exception's whole traceback, then its chained exceptions'
        # frames; pydevd marks the frame it is paused in.
        frames = [f for f in self.load_stack(thread_id).frames if CHAINED not in f.name]
        here = next((i for i, f in enumerate(frames) if f.name.endswith(CURRENT_FRAME)), 0)
        if here + 1 >= len(frames):
            return False  # it leaves the last service's code
        return self.session.uncaught_via_user_unhandled or (
            frames[here].service != frames[here + 1].service)

    def _holds(self, frame_id: int, check: Check) -> bool:
        """Whether ``check``'s condition holds in the stopped frame. Asked as debugpy asks its
        own, observing: one that fails counts as false, and the console says why."""
        expression = check.expression()
        if expression is None:
            return True
        answer = self.evaluate(frame_id, expression).wait()
        if answer.get("success"):
            return (answer.get("body") or {}).get("result") == "True"
        self.client.send_event("output", {"category": "console", "output": (
            f"distdev: the condition of breakpoint {check.id} ({expression}) failed, so it "
            f"counts as false: {answer.get('message')}\n")})
        return False

    def _translate_hits(self, body: Json) -> None:
        """The client's ids for the breakpoints hit; the one-off entry breakpoint's stop is the
        entry's, and that breakpoint goes away."""
        book = self.session.breakpoints
        entry = book.take_entry()
        hit = list(body.get("hitBreakpointIds") or [])
        if hit:
            body["hitBreakpointIds"] = book.client_ids(hit)
        if entry is not None:
            entry_file, entry_ids = entry
            if hit and set(hit) <= entry_ids:
                body["reason"] = "entry"
                body.pop("hitBreakpointIds", None)
                body.pop("description", None)
            self.resend_breakpoints([entry_file])

    def _replay_position(self, thread_id: int) -> Position | None:
        """Where the replay stands, as the debuggee says in the stopped thread's top frame."""
        top = self.top_frame(thread_id)
        if top is None:
            return None
        return JOURNAL_POSITION.read(self.evaluate(top, JOURNAL_POSITION.expression()).result())

    def _replay_stopped(self, event: Json, position: Position | None) -> None:
        """A stop in a replay: shown with its journal position, or, on a trip back, passed
        silently until the destination."""
        body = event["body"]
        if position is None:  # not a stop in the journal's code (an unreadable position)
            self.session.timeline.cancel()
            self.client.send(event)
            return
        arrival = self.session.timeline.stopped(str(body.get("reason", "")), position)
        if isinstance(arrival, Leg):
            arrival = self._next_leg(body["threadId"], arrival)
        if arrival is None:
            self.ask("continue", {"threadId": body["threadId"]})
            return
        body["reason"] = arrival.reason
        if arrival.description is not None:
            body["description"] = arrival.description
        if arrival.reason not in ("breakpoint", "function breakpoint"):
            body.pop("hitBreakpointIds", None)
        self.client.send(event)
        self.client.send_event("distdev/journalPosition", _position_event(
            position.service, position.seq, {position.service: position.seq}))

    def _next_leg(self, thread_id: int, leg: Leg) -> Arrival | None:
        """Run the journal again for a trip's next leg (None: continue into it); if the
        debuggee cannot, the trip ends here, and this stop is shown saying why."""
        top = self.top_frame(thread_id)
        rewound = self.evaluate(top, REWIND.expression(leg.before)) if top is not None else None
        if rewound is not None and REWIND.read(rewound.result()) == leg.trip.run:
            return None
        self.session.timeline.cancel()
        self.client.send_event("output", {"category": "console", "output": (
            "distdev: Reverse Continue could not run the replay again; it stopped here\n")})
        return Arrival("pause")

    @message_handler
    def breakpoint_event(self, event: Json) -> None:
        breakpoint = event.get("body", {}).get("breakpoint", {})
        if isinstance(breakpoint.get("id"), int):
            checks = self.session.breakpoints.checks(breakpoint["id"])
            if checks and all(c.function for c in checks):
                return  # the line of function breakpoints only: an id the client never had
            breakpoint["id"] = self.session.breakpoints.client_id(breakpoint["id"])
        self.client.send(event)

    @message_handler
    def module_event(self, event: Json) -> None:
        body = event.get("body") or {}
        shown = self.session.module_label(body.get("module") or {})
        if shown is not None:  # distdev's own modules are not shown
            self.client.send(dict(event, body=dict(body, module=shown)))

    @message_handler
    def continued_event(self, event: Json) -> None:
        self.session.resumed()
        if not self.session.timeline.travelling:  # a trip's own continues are not shown
            self.client.send(event)

    @message_handler
    def output_event(self, event: Json) -> None:
        # pydevd's hint fires on every Step Into a proxy call: skipping distdev's frames is the
        # point here, and "set justMyCode to false" would be the wrong advice.
        if STEP_IN_HINT not in str(event.get("body", {}).get("output", "")):
            self.client.send(event)

    @message_handler
    def terminated_event(self, event: Json) -> None:
        self.session.terminated_sent = True
        self.client.send(event)


def _position_event(service: str, seq: int, positions: dict[str, int]) -> Json:
    """The ``distdev/journalPosition`` event's body: the stopped service's last journal event,
    and every service's (one, in a replay)."""
    return {"service": service, "seq": seq, "positions": positions}


def _close_quietly(stream: IO[bytes]) -> None:
    try:
        stream.close()
    except (OSError, ValueError):
        pass
