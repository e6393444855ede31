"""The dispatch layer: a DAP relay between the client and ``python -m debugpy.adapter``.

Two components each own one channel — the client (our stdio) and the server (debugpy's adapter,
a child process on pipes) — and share one ``Session`` (the engine). Sequence numbers are renumbered on
both sides; a table of pending requests maps each response back to whoever asked, so the relay
can also ask debugpy things of its own (the whole stack, a frame's service). Handlers are named
after their message (``launch_request``, ``stopped_event``, ``initialize_response``), convert in,
delegate to the engine or to debugpy, and convert out; anything else passes through untouched.
"""

from __future__ import annotations

import ast
import functools
import itertools
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from distdev.tools import python_module

from ._breakpoints import BreakpointBook
from ._config import ConfigError, debugpy_launch, parse_launch, plan_launch, runtime_dirs
from ._engine import Frame, Session, Stack, entry_line, resolve_export, service_files
from ._time_travel import Position, Timeline, TravelError, Trip
from ._wire import Channel

__all__ = ["Relay", "RequestError"]

Json = dict[str, Any]
Handler = Callable[["Relay", Json], None]
_ASK_TIMEOUT = 15.0
_RESUMING = frozenset(
    ["continue", "next", "stepIn", "stepOut", "stepBack", "reverseContinue", "goto", "restartFrame"]
)


_REPLAY_LOOP = "__import__('distdev.dap_adapter._replay_loop', fromlist=['_'])"
_POSITION = f"{_REPLAY_LOOP}.journal_position()"
_POSITIONS = "__import__('distdev.dap_adapter._runner', fromlist=['_']).journal_positions()"


class RequestError(Exception):
    """A request the relay answers with an error response carrying this message."""


def protocol_errors(handler: Handler) -> Handler:
    """Turn a failure inside a request handler into that request's error response."""

    @functools.wraps(handler)
    def wrapper(self: Relay, request: Json) -> None:
        try:
            handler(self, request)
        except (RequestError, ConfigError, TravelError) as exc:
            self.fail(request, str(exc))
        except Exception as exc:  # a relay bug must not hang the client: say so, carry on
            self.fail(request, f"distdev's debug adapter failed: {type(exc).__name__}: {exc}")

    return wrapper


class Relay:
    """One debug session: the client on ``client_in``/``client_out``, debugpy's adapter behind."""

    def __init__(self, client_in: IO[bytes], client_out: IO[bytes],
                 adapter_command: list[str] | None = None) -> None:
        self.client = Channel("client", client_in, client_out)
        self.server: Channel | None = None
        self.session = Session(runtime_dirs())
        self._adapter_command = adapter_command or python_module("debugpy.adapter")
        self._process: subprocess.Popen[bytes] | None = None
        self._client_seq = itertools.count(1)
        self._server_seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self._pending: dict[int, Callable[[Json], None]] = {}
        self._reverse: dict[int, int] = {}
        self._raw_frames: dict[int, Json] = {}
        self._done = threading.Event()
        self._terminated_sent = False
        self.breakpoints = BreakpointBook()  # per file (key: real path)
        self._app: str | None = None
        self.timeline = Timeline()
        self._positions_due = False

    # -- running ------------------------------------------------------------------------------

    def run(self) -> int:
        self.client.start(self._from_client, lambda reason: self._done.set())
        self._done.wait()
        self._shutdown()
        return 0

    def _start_server(self) -> Channel:
        if self.server is None:
            process = subprocess.Popen(self._adapter_command, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE)
            assert process.stdin is not None and process.stdout is not None
            self._process = process
            self.server = Channel("debugpy", process.stdout, process.stdin)
            self.server.start(self._from_server, self._server_closed)
        return self.server

    def _server_closed(self, reason: str) -> None:
        for on_response in list(self._pending.values()):
            on_response({"type": "response", "success": False,
                         "message": f"debugpy's adapter ended ({reason})"})
        self._pending.clear()
        if not self._terminated_sent:
            self.send_event("terminated", {})
        self._done.set()

    def _shutdown(self) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()

    # -- sending ------------------------------------------------------------------------------

    def send_client(self, message: Json) -> None:
        with self._seq_lock:
            message["seq"] = next(self._client_seq)
        self.client.send(message)

    def send_server(self, message: Json, on_response: Callable[[Json], None] | None = None) -> None:
        server = self.server
        if server is None:
            raise RequestError("the session has not been initialized: send initialize first")
        with self._seq_lock:
            seq = message["seq"] = next(self._server_seq)
            if on_response is not None:
                self._pending[seq] = on_response
        server.send(message)

    def send_event(self, event: str, body: Json) -> None:
        if event == "terminated":
            self._terminated_sent = True
        self.send_client({"type": "event", "event": event, "body": body})

    def respond(self, request: Json, body: Json | None = None) -> None:
        self.send_client({"type": "response", "request_seq": request["seq"], "success": True,
                          "command": request["command"], "body": body or {}})

    def fail(self, request: Json, message: str) -> None:
        self.send_client({
            "type": "response", "request_seq": request["seq"], "success": False,
            "command": request.get("command", ""), "message": message,
            "body": {"error": {"id": 1, "format": message.replace("{", "{{").replace("}", "}}"),
                               "showUser": True}},
        })

    def ask(self, command: str, arguments: Json) -> Future[Json]:
        """A request of the relay's own to debugpy; the future holds its response."""
        future: Future[Json] = Future()
        self.send_server({"type": "request", "command": command, "arguments": arguments},
                         future.set_result)
        return future

    def forward(self, request: Json, arguments: Json | None = None,
                on_response: Callable[[Json], None] | None = None) -> None:
        """Pass a client request to debugpy; its response goes back to the client, through
        ``on_response`` (which may edit it) first."""
        client_seq = request["seq"]
        message = {"type": "request", "command": request["command"],
                   "arguments": request.get("arguments", {}) if arguments is None else arguments}

        def back(response: Json) -> None:
            response.setdefault("command", request["command"])
            response["request_seq"] = client_seq
            if on_response is not None and response.get("success"):
                on_response(response)
            self.send_client(response)

        self.send_server(message, back)

    # -- receiving ----------------------------------------------------------------------------

    def _from_client(self, message: Json) -> None:
        kind = message.get("type")
        if kind == "request":
            command = str(message.get("command", ""))
            if command in _RESUMING:
                self._resumed()
            handler = getattr(type(self), f"{command}_request", None)
            if handler is not None:
                handler(self, message)
            else:
                protocol_errors(Relay.forward)(self, message)
        elif kind == "response":  # the client's answer to a reverse request
            with self._seq_lock:
                original = self._reverse.pop(int(message.get("request_seq", -1)), None)
            if original is not None and self.server is not None:
                message["request_seq"] = original
                with self._seq_lock:
                    message["seq"] = next(self._server_seq)
                self.server.send(message)

    def _from_server(self, message: Json) -> None:
        kind = message.get("type")
        if kind == "response":
            with self._seq_lock:
                on_response = self._pending.pop(int(message.get("request_seq", -1)), None)
            if on_response is not None:
                on_response(message)
        elif kind == "event":
            handler = getattr(type(self), f"{message.get('event')}_event", None)
            if handler is None or handler(self, message) is not False:
                self.send_client(message)
        elif kind == "request":  # runInTerminal, startDebugging: the client answers
            original = message["seq"]
            with self._seq_lock:
                message["seq"] = seq = next(self._client_seq)
                self._reverse[seq] = original
            self.client.send(message)

    def _resumed(self) -> None:
        self.session.resumed()
        self._raw_frames.clear()

    # -- requests -----------------------------------------------------------------------------

    @protocol_errors
    def initialize_request(self, request: Json) -> None:
        self._start_server()
        arguments = dict(request.get("arguments", {}), adapterID="debugpy")
        self.forward(request, arguments, self._capabilities)

    def _capabilities(self, response: Json) -> None:
        body = response.setdefault("body", {})
        body["supportsDelayedStackTraceLoading"] = True
        body["supportsFunctionBreakpoints"] = True
        body["supportsExceptionInfoRequest"] = True
        body["supportsStepBack"] = True  # in a journal replay: see _time_travel
        # VS Code's "Step Into Target" misbehaves on a proxy call; plain Step Into is right.
        body["supportsStepInTargetsRequest"] = False

    @protocol_errors
    def launch_request(self, request: Json) -> None:
        arguments = request.get("arguments", {})
        config = parse_launch(arguments)
        launch = plan_launch(config)
        self.session.mode = launch.mode
        if launch.mode == "dev":
            self._app = launch.entry_file
            if launch.stop_on_entry and launch.entry_file is not None:
                line = entry_line(Path(launch.entry_file))
                if line is not None:
                    self.breakpoints.set_entry(_key(launch.entry_file), line)
        for note in launch.notes:
            self.send_event("output", {"category": "console", "output": f"distdev: {note}\n"})
        self.forward(request, debugpy_launch(launch, arguments))

    @protocol_errors
    def attach_request(self, request: Json) -> None:
        raise RequestError('distdev starts the application itself: use "request": "launch" '
                           'with "app" (or "journal" to replay one service)')

    @protocol_errors
    def setBreakpoints_request(self, request: Json) -> None:
        arguments = request.get("arguments", {})
        path = str(arguments.get("source", {}).get("path") or "")
        reason = self.session.unverified_reason(path) if path else None
        wanted = arguments.get("breakpoints") or [{"line": n} for n in arguments.get("lines", [])]
        if reason is not None:
            self.respond(request, {"breakpoints": [
                {"verified": False, "line": b.get("line"), "message": reason} for b in wanted
            ]})
            return
        if not path:
            self.forward(request)
            return
        key = _key(path)
        union = self.breakpoints.set_client(key, arguments.get("source", {}), list(wanted))
        own = len(wanted)

        def only_the_clients(response: Json) -> None:
            body = response.setdefault("body", {})
            answered = body.get("breakpoints", [])
            self.breakpoints.remember(key, union, answered, own, from_client=True)
            body["breakpoints"] = answered[:own]

        self.forward(request, union, only_the_clients)

    def _resend(self, keys: list[str]) -> list[Future[Json]]:
        """Send debugpy the union for each file; the futures hold its answers."""
        asks: list[Future[Json]] = []
        for key in keys:
            union, own = self.breakpoints.union(key)
            future: Future[Json] = Future()

            def done(answer: Json, key: str = key, union: Json = union, own: int = own,
                     future: Future[Json] = future) -> None:
                if answer.get("success"):
                    self.breakpoints.remember(key, union,
                                              answer.get("body", {}).get("breakpoints", []), own,
                                              from_client=False)
                future.set_result(answer)

            self.send_server({"type": "request", "command": "setBreakpoints",
                              "arguments": union}, done)
            asks.append(future)
        return asks

    @protocol_errors
    def setFunctionBreakpoints_request(self, request: Json) -> None:
        wanted = request.get("arguments", {}).get("breakpoints", [])
        if self._app is None:
            self.respond(request, {"breakpoints": [{
                "verified": False, "message": "function breakpoints name a service's export "
                "(app/billing.charge); they work when debugging an application (\"app\")",
            } for _ in wanted]})
            return
        services = service_files(Path(self._app))
        targets = [resolve_export(services, str(b.get("name", ""))) for b in wanted]
        lines: dict[str, list[int]] = {}
        for target in targets:
            if target.path is not None and target.line is not None:
                lines.setdefault(_key(str(target.path)), []).append(target.line)
        for ask in self._resend(self.breakpoints.set_function_lines(lines)):
            ask.result(_ASK_TIMEOUT)
        answer: list[Json] = []
        for target in targets:
            if target.path is None or target.line is None:
                answer.append({"verified": False, "message": target.error})
                continue
            bound = self.breakpoints.function_breakpoint(_key(str(target.path)), target.line)
            bound["source"] = {"name": target.path.name, "path": str(target.path)}
            answer.append(bound)
        self.respond(request, {"breakpoints": answer})

    @protocol_errors
    def configurationDone_request(self, request: Json) -> None:
        unsent = self.breakpoints.unsent_entry()
        if unsent is not None:
            for ask in self._resend([unsent]):
                ask.result(_ASK_TIMEOUT)
        self.forward(request)

    @protocol_errors
    def exceptionInfo_request(self, request: Json) -> None:
        thread_id = int(request.get("arguments", {})["threadId"])
        stack = self.session.cached_stack(thread_id) or self._load_stack(thread_id)
        service = next((f.service for f in stack.frames if f.service), None)
        session = self.session

        def named(response: Json) -> None:
            body = response.setdefault("body", {})
            if service is not None:
                where = f"in service {service}"
                description = str(body.get("description") or body.get("exceptionId") or "")
                body["description"] = f"{description} ({where})" if description else where
            details = body.get("details")
            if isinstance(details, dict):
                if service is not None:
                    details["service"] = service
                    message = str(details.get("message") or "")
                    details["message"] = f"{message} ({where})" if message else where
                trace = details.get("stackTrace")
                if isinstance(trace, str):
                    details["stackTrace"] = _user_traceback(trace, session.is_runtime_file)

        self.forward(request, on_response=named)

    @protocol_errors
    def stackTrace_request(self, request: Json) -> None:
        arguments = request.get("arguments", {})
        thread_id = int(arguments["threadId"])
        stack = self.session.cached_stack(thread_id) or self._load_stack(thread_id)
        start = int(arguments.get("startFrame") or 0)
        page = stack.page(start, int(arguments.get("levels") or 0))
        frames = [dict(self._raw_frames[f.id], name=f.label) for f in page]
        self.respond(request, {"stackFrames": frames, "totalFrames": len(stack.frames)})

    def _load_stack(self, thread_id: int) -> Stack:
        """The whole stack from debugpy, distdev's frames dropped, each named by service."""
        response = self.ask("stackTrace", {"threadId": thread_id, "startFrame": 0, "levels": 0})
        answer = response.result(_ASK_TIMEOUT)
        if not answer.get("success"):
            raise RequestError(answer.get("message") or "debugpy could not read the stack")
        raw = answer.get("body", {}).get("stackFrames", [])
        frames = [Frame(int(f["id"]), str(f.get("name", "")), (f.get("source") or {}).get("path"))
                  for f in raw]
        visible = self.session.visible(frames)
        # One evaluate per frame, all sent before any answer is awaited: one round trip (the
        # debuggee answers requests sent together without pausing: _runner). In an
        # application, the first stack of a stop also reads every service's journal position,
        # in the same round trip, so a step costs nothing more.
        asks = [self.ask("evaluate", {"expression": "__distdev_service__", "frameId": f.id,
                                      "context": "watch"}) for f in visible]
        positions = None
        if self.session.mode == "dev" and self._positions_due and frames:
            self._positions_due = False
            positions = self.ask("evaluate", {"expression": _POSITIONS, "frameId": frames[0].id,
                                              "context": "watch"})
        for frame, ask in zip(visible, asks):
            frame.service = _service_of(ask.result(_ASK_TIMEOUT))
        if positions is not None:
            value = _literal(positions.result(_ASK_TIMEOUT))
            if isinstance(value, dict) and isinstance(value.get("positions"), dict):
                self.send_event("distdev/journalPosition", value)
        for f in raw:
            self._raw_frames[int(f["id"])] = f
        stack = Stack(visible)
        self.session.remember_stack(thread_id, stack)
        return stack

    @protocol_errors
    def stepBack_request(self, request: Json) -> None:
        self._travel(request, self.timeline.plan_step_back)

    @protocol_errors
    def reverseContinue_request(self, request: Json) -> None:
        self._travel(request, self.timeline.plan_reverse_continue)

    def _travel(self, request: Json, plan: Callable[[], tuple[int | None, Trip]]) -> None:
        """Ask the debuggee to run its journal again from the start, then let it go: the stops
        on the way are passed silently until the trip's destination (``stopped_event``)."""
        if self.session.mode != "replay":
            raise RequestError(f"{request['command']} travels back through a journal: launch a "
                               'replay ("journal": ".../journal.cbor") to use it')
        thread_id = int(request.get("arguments", {})["threadId"])
        before, trip = plan()
        top = self.ask("stackTrace", {"threadId": thread_id, "startFrame": 0, "levels": 1})
        frames = top.result(_ASK_TIMEOUT).get("body", {}).get("stackFrames", [])
        if not frames:
            raise RequestError("the thread is not stopped in the replay")
        answer = self.ask("evaluate", {"expression": f"{_REPLAY_LOOP}.rewind({before!r})",
                                       "frameId": frames[0]["id"], "context": "watch"})
        result = answer.result(_ASK_TIMEOUT)
        if not result.get("success") or str(result.get("body", {}).get("result")) != str(trip.run):
            raise RequestError("the replay could not be run again: "
                               f"{result.get('message') or result.get('body', {}).get('result')}")
        self.timeline.depart(trip)
        self.respond(request)
        self.send_server({"type": "request", "command": "continue",
                          "arguments": {"threadId": thread_id}})

    @protocol_errors
    def disconnect_request(self, request: Json) -> None:
        self.forward(request)

    # -- events -------------------------------------------------------------------------------

    def stopped_event(self, event: Json) -> bool:
        self._resumed()
        body = event.setdefault("body", {})
        entry = self.breakpoints.take_entry()
        hit = list(body.get("hitBreakpointIds") or [])
        if hit:
            body["hitBreakpointIds"] = self.breakpoints.client_ids(hit)
        if entry is not None:
            entry_file, entry_ids = entry
            if hit and set(hit) <= entry_ids:
                body["reason"] = "entry"
                body.pop("hitBreakpointIds", None)
                body.pop("description", None)
            self._resend([entry_file])  # the one-off entry breakpoint goes away
        if not isinstance(body.get("threadId"), int):
            return True
        if self.session.mode == "replay":
            self._evaluate_on_top(int(body["threadId"]), _POSITION,
                                  lambda value: self._replay_stopped(event, Position.parse(value)))
            return False  # shown (or passed) once its journal position is known
        self._positions_due = True  # announced with the stack the client asks for next
        return True

    def _replay_stopped(self, event: Json, position: Position | None) -> None:
        """A stop in a replay: show it with its journal position, or, on a trip back, pass it
        silently until the destination."""
        body = event["body"]
        if position is None:  # not a stop in the journal's code (an unreadable position)
            self.timeline.cancel()
            self.send_client(event)
            return
        arrival = self.timeline.stopped(str(body.get("reason", "")), position)
        if arrival is None:
            self.send_server({"type": "request", "command": "continue",
                              "arguments": {"threadId": body["threadId"]}})
            return
        body["reason"] = arrival.reason
        if arrival.description is not None:
            body["description"] = arrival.description
        if arrival.reason not in ("breakpoint", "function breakpoint"):
            body.pop("hitBreakpointIds", None)
        self.send_client(event)
        self.send_event("distdev/journalPosition", {
            "service": position.service, "seq": position.seq,
            "positions": {position.service: position.seq}})

    def _evaluate_on_top(self, thread_id: int, expression: str,
                         then: Callable[[Any], None]) -> None:
        """Evaluate ``expression`` in a stopped thread's top frame and pass its value (a Python
        literal, or None) on. Never blocks (this runs on debugpy's reader thread)."""

        def evaluated(answer: Json) -> None:
            then(_literal(answer))

        def top(answer: Json) -> None:
            frames = answer.get("body", {}).get("stackFrames", []) if answer.get("success") else []
            if not frames:
                then(None)
                return
            self.send_server({"type": "request", "command": "evaluate", "arguments": {
                "expression": expression, "frameId": frames[0]["id"], "context": "watch"}},
                evaluated)

        self.send_server({"type": "request", "command": "stackTrace", "arguments": {
            "threadId": thread_id, "startFrame": 0, "levels": 1}}, top)

    def breakpoint_event(self, event: Json) -> bool:
        breakpoint = event.get("body", {}).get("breakpoint", {})
        if isinstance(breakpoint.get("id"), int):
            breakpoint["id"] = self.breakpoints.client_id(breakpoint["id"])
        return True

    def continued_event(self, event: Json) -> bool:
        self._resumed()
        return not self.timeline.travelling  # the trip's own continues are not shown

    def output_event(self, event: Json) -> bool:
        # pydevd's hint fires on every Step Into a proxy call: skipping distdev's frames is the
        # point here, and "set justMyCode to false" would be the wrong advice.
        return "Frame skipped from debugging during step-in" not in str(
            event.get("body", {}).get("output", ""))

    def terminated_event(self, event: Json) -> bool:
        self._terminated_sent = True
        return True


def _key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


_FILE_LINE = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+')


_CHAINED = re.compile(r"\n(?:During handling of the above exception, another exception "
                      r"occurred|The above exception was the direct cause of the following "
                      r"exception):\n\n")


def _user_traceback(trace: str, is_runtime_file: Callable[[str], bool]) -> str:
    """A formatted traceback without distdev's frames (each ``File`` line and the source lines
    under it), and without the chained sections that are only distdev's own exceptions (the
    membrane's wrapper around a call that failed in another service)."""
    pieces = _CHAINED.split(trace)
    separators = _CHAINED.findall(trace)
    kept: list[tuple[str, str]] = []  # (separator before it, section)
    for index, piece in enumerate(pieces):
        section = _user_frames(piece, is_runtime_file)
        lines = [line for line in section.splitlines() if line.strip()]
        if (not any(_FILE_LINE.match(line) for line in lines) and lines
                and lines[-1].startswith("distdev.") and len(pieces) > 1):
            continue
        kept.append((separators[index - 1] if index else "", section))
    if not kept:
        return trace
    return kept[0][1] + "".join(separator + section for separator, section in kept[1:])


def _user_frames(trace: str, is_runtime_file: Callable[[str], bool]) -> str:
    kept: list[str] = []
    dropping = False
    for line in trace.splitlines(keepends=True):
        match = _FILE_LINE.match(line)
        if match is not None:
            dropping = is_runtime_file(match.group("path"))
        elif not line.startswith((" ", "\t")):
            dropping = False  # "Traceback ...", the exception line
        if not dropping:
            kept.append(line)
    return "".join(kept)


def _literal(answer: Json) -> Any:
    """The value of an ``evaluate`` answer whose result is a Python literal, or None."""
    if not answer.get("success"):
        return None
    try:
        return ast.literal_eval(str(answer.get("body", {}).get("result", "")))
    except (ValueError, SyntaxError):
        return None


def _service_of(answer: Json) -> str | None:
    value = _literal(answer)
    return value if isinstance(value, str) else None


def main() -> int:
    """``python -m distdev.dap_adapter``: serve one session on stdin/stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Anything printed by accident must not corrupt the protocol stream.
    sys.stdout = sys.stderr
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return Relay(stdin, stdout).run()


if __name__ == "__main__":
    sys.exit(main())
