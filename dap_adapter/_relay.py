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
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import IO, Any, Callable

from ._config import ConfigError, debugpy_launch, parse_launch, plan_launch, runtime_dirs
from ._engine import Frame, Session, Stack
from ._wire import Channel

__all__ = ["Relay", "RequestError"]

Json = dict[str, Any]
Handler = Callable[["Relay", Json], None]
_ASK_TIMEOUT = 15.0
_RESUMING = frozenset(
    ["continue", "next", "stepIn", "stepOut", "stepBack", "reverseContinue", "goto", "restartFrame"]
)


class RequestError(Exception):
    """A request the relay answers with an error response carrying this message."""


def protocol_errors(handler: Handler) -> Handler:
    """Turn a failure inside a request handler into that request's error response."""

    @functools.wraps(handler)
    def wrapper(self: Relay, request: Json) -> None:
        try:
            handler(self, request)
        except (RequestError, ConfigError) as exc:
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
        self._adapter_command = adapter_command or [sys.executable, "-m", "debugpy.adapter"]
        self._process: subprocess.Popen[bytes] | None = None
        self._client_seq = itertools.count(1)
        self._server_seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self._pending: dict[int, Callable[[Json], None]] = {}
        self._reverse: dict[int, int] = {}
        self._raw_frames: dict[int, Json] = {}
        self._done = threading.Event()
        self._terminated_sent = False

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
        # VS Code's "Step Into Target" misbehaves on a proxy call; plain Step Into is right.
        body["supportsStepInTargetsRequest"] = False

    @protocol_errors
    def launch_request(self, request: Json) -> None:
        arguments = request.get("arguments", {})
        config = parse_launch(arguments)
        launch = plan_launch(config)
        self.session.mode = launch.mode
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
        if reason is None:
            self.forward(request)
            return
        wanted = arguments.get("breakpoints") or [{"line": n} for n in arguments.get("lines", [])]
        self.respond(request, {"breakpoints": [
            {"verified": False, "line": b.get("line"), "message": reason} for b in wanted
        ]})

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
        # One evaluate per frame, all sent before any answer is awaited: one round trip.
        asks = [self.ask("evaluate", {"expression": "__distdev_service__", "frameId": f.id,
                                      "context": "watch"}) for f in visible]
        for frame, ask in zip(visible, asks):
            frame.service = _service_of(ask.result(_ASK_TIMEOUT))
        for f in raw:
            self._raw_frames[int(f["id"])] = f
        stack = Stack(visible)
        self.session.remember_stack(thread_id, stack)
        return stack

    @protocol_errors
    def disconnect_request(self, request: Json) -> None:
        self.forward(request)

    # -- events -------------------------------------------------------------------------------

    def stopped_event(self, event: Json) -> bool:
        self._resumed()
        return True

    def continued_event(self, event: Json) -> bool:
        self._resumed()
        return True

    def output_event(self, event: Json) -> bool:
        # pydevd's hint fires on every Step Into a proxy call: skipping distdev's frames is the
        # point here, and "set justMyCode to false" would be the wrong advice.
        return "Frame skipped from debugging during step-in" not in str(
            event.get("body", {}).get("output", ""))

    def terminated_event(self, event: Json) -> bool:
        self._terminated_sent = True
        return True


def _service_of(answer: Json) -> str | None:
    if not answer.get("success"):
        return None
    try:
        value = ast.literal_eval(str(answer.get("body", {}).get("result", "")))
    except (ValueError, SyntaxError):
        return None
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
