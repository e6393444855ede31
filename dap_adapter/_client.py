"""The client component: the editor, on our stdio, and ``serve``, which runs one session.

The client's requests are delegated to debugpy (``Server.delegate``) unless a handler below says
otherwise. Those handlers convert the request in, delegate to the engine (``_config``,
``_engine``, ``_breakpoints``, ``_time_travel``) or to debugpy, and convert the answer out:

- ``initialize``: debugpy's capabilities, plus distdev's (function breakpoints, step back).
- ``launch``: the ``distdev`` launch configuration becomes a debugpy launch of the runner.
- ``setBreakpoints`` / ``setFunctionBreakpoints`` / ``configurationDone``: the client's
  breakpoints merged with the relay's own (exports, the entry line) per file.
- ``stackTrace`` / ``exceptionInfo``: distdev's frames hidden, the rest named by service.
- ``stepBack`` / ``reverseContinue``: a replay travels back by running its journal again.
- ``setVariable`` / ``setExpression``: refused (``CHANGE_REFUSED`` says why).
- every request debugpy would not answer (``DEBUGPY_ANSWERS``): answered here, most with an
  error saying why (``NOT_SUPPORTED``); ``loadedSources`` lists the services' files.
- ``disconnect``: the program launched for the session ends with it.
- ``setExceptionBreakpoints``: "uncaught" also where an exception leaves the last service.
- ``pause``: says why nothing stopped in an application that waits for calls.
- ``modules``: the services' modules by service id, distdev's hidden.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from distdev.tools import python_module

from ._components import Component, RequestError, message_handler
from ._config import debugpy_launch, parse_launch, plan_launch
from ._engine import (
    Stack,
    entry_line,
    resolve_export,
    service_files,
    user_traceback,
)
from ._evaluate import REWIND
from ._server import USER_UNHANDLED_NOTE, Server
from ._session import Session
from ._time_travel import Trip
from ._wire import Channel, Json

__all__ = ["Client", "serve"]

RESUMING = frozenset(["continue", "next", "stepIn", "stepOut", "stepBack", "reverseContinue",
                      "goto", "restartFrame"])
"""Requests after which every frame id of the last stop is stale."""

WAITING = ("waiting in distdev (no service code on this thread: the ingress waiting for "
           "requests, or a call waiting for its turn while the service runs another)")
"""The label frame of a thread whose every frame is distdev's own, hidden."""
WAITING_FRAMES = 2_000_000_000
"""Frame ids of those labels: above debugpy's, which count from 1."""

PAUSE_HINT_AFTER = 1.0
"""Seconds after a pause with no stop before the console says why."""
PAUSE_HINT = ("distdev: no service code is running right now (the application waits for calls), "
              "so nothing stopped yet: the program pauses at the next line of a service's code, "
              "when a call arrives\n")

DEBUGPY_ANSWERS = frozenset([
    "initialize", "launch", "configurationDone", "disconnect", "terminate", "threads", "pause",
    "continue", "next", "stepIn", "stepOut", "stepInTargets", "stackTrace", "scopes", "variables",
    "evaluate", "completions", "source", "modules", "exceptionInfo", "setBreakpoints",
    "setFunctionBreakpoints", "setExceptionBreakpoints", "setDebuggerProperty",
    "setPydevdSourceMap", "pydevdSystemInfo", "debugpySystemInfo",
])
"""The requests debugpy answers (its adapter's own, and pydevd's). Its adapter passes any
other request on to pydevd, which never answers it, and answers the client's requests in order:
one such request would hang the whole session. The relay answers every other request itself."""

_NO_CODE_LEVEL = ("distdev debugs Python source: there are no memory references, "
                  "instructions or data breakpoints to work with")
NOT_SUPPORTED = {
    "cancel": "cancelling a request is not supported: every request is answered in turn",
    "runInTerminal": "runInTerminal is a reverse request: the debug adapter sends it to the "
                     "client, never the other way",
    "startDebugging": "startDebugging is a reverse request: the debug adapter sends it to the "
                      "client, never the other way",
    "restart": "restarting in place is not supported: end the session and start it again "
               "(an editor does so itself, as supportsRestartRequest is false)",
    "breakpointLocations": "breakpointLocations is not supported: a breakpoint on any line "
                           "of code binds there",
    "terminateThreads": "terminating threads is not supported: a service's threads end with "
                        "the application; terminate the session to end it",
    "goto": "jumping to another line is refused: the service would skip or repeat code its "
            "journal records, and the journal would no longer replay. Set a breakpoint there "
            "and run again (in a replay, Step Back travels back)",
    "gotoTargets": "jumping to another line is refused: the service would skip or repeat code "
                   "its journal records, and the journal would no longer replay",
    "restartFrame": "restarting a frame is refused: the frame's code would run again without "
                    "its journal knowing; in a replay, Step Back travels back instead",
    "dataBreakpointInfo": _NO_CODE_LEVEL,
    "setDataBreakpoints": _NO_CODE_LEVEL,
    "setInstructionBreakpoints": _NO_CODE_LEVEL,
    "readMemory": _NO_CODE_LEVEL,
    "writeMemory": _NO_CODE_LEVEL,
    "disassemble": _NO_CODE_LEVEL,
    "locations": "locations is not supported: no value the adapter shows has a "
                 "locationReference",
}
"""Why each request of the protocol that no one here answers gets an error."""

CHANGE_REFUSED = (
    "changing a value from the debugger is refused: the service's state would then differ from "
    "what its journal replays to, and the replay would blame the code. Debugging observes "
    "only; to try another value, change the code (or the call's arguments) and run again.")
"""Why setVariable and setExpression are refused. The other choice, journaling the change as
an event of its own, would make every journal recorded under a debugger depend on the debugger
to replay; a state a user edits by hand is not one the program can reach."""


def serve(client_in: IO[bytes], client_out: IO[bytes],
          adapter_command: list[str] | None = None) -> int:
    """Relay one debug session between a client on these streams and debugpy's adapter (run as
    ``adapter_command``); returns once either side has gone."""
    session = Session()
    client = Client(session, Channel("client", client_in, client_out),
                    adapter_command or python_module("debugpy.adapter"))
    client.start()
    try:
        session.ended.wait()
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM, see __main__): end as a disconnect would, quietly, the program
        # launched for the session with it; a second signal must not cut that short.
        _ignore_interrupts()
    finally:
        if client.server is not None:
            client.server.stop()
    return 0


def _ignore_interrupts() -> None:
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)


class Client(Component):
    """The editor: its requests, answered here or by debugpy through the server component."""

    def __init__(self, session: Session, channel: Channel, adapter_command: list[str]) -> None:
        super().__init__(session, channel)
        self.server: Server | None = None
        self._adapter_command = adapter_command

    def _server(self) -> Server:
        if self.server is None:
            raise RequestError("the session has not been initialized: send initialize first")
        return self.server

    def dispatch(self, message: Json) -> None:
        if message.get("type") == "request" and message.get("command") in RESUMING:
            with self.session:
                self.session.resumed()
        super().dispatch(message)

    def closed(self, reason: str) -> None:
        self.session.ended.set()

    @message_handler
    def request(self, request: Json) -> None:
        command = str(request.get("command"))
        if command not in DEBUGPY_ANSWERS:
            raise RequestError(NOT_SUPPORTED.get(command) or (
                f'"{command}" is not a request distdev\'s debug adapter knows'))
        self._server().delegate(request)

    @message_handler
    def modules_request(self, request: Json) -> None:
        """debugpy's modules, distdev's hidden and the services' named by service id."""

        def labelled(response: Json) -> None:
            body = response.setdefault("body", {})
            shown = [m for m in map(self.session.module_label, body.get("modules") or []) if m]
            body["modules"] = shown
            body["totalModules"] = len(shown)

        self._server().delegate(request, edit=labelled)

    @message_handler
    def loadedSources_request(self, request: Json) -> None:
        """The application's service files, each named by its service id (a replay: none
        listed; its one service's file is the source of its frames)."""
        services = service_files(self.session.app) if self.session.app is not None else {}
        self.respond(request, {"sources": [{"name": service, "path": str(path)}
                                           for service, path in sorted(services.items())]})

    @message_handler
    def disconnect_request(self, request: Json) -> None:
        """The application (or replay) was launched for this session, and ends with it: a
        debuggee left running would be an orphan no one can stop or attach to again."""
        arguments = dict(request.get("arguments") or {})
        if arguments.get("terminateDebuggee") is False:
            self.send_event("output", {"category": "console", "output": (
                "distdev: the debugged program ends with the session (it was launched for it); "
                "run `distdev dev` to keep an application running\n")})
        arguments["terminateDebuggee"] = True
        self._server().delegate(request, arguments)

    @message_handler
    def response(self, response: Json) -> None:
        """The client's answer to one of debugpy's reverse requests."""
        if self.server is not None:
            self.server.reverse_response(response)

    # -- starting -------------------------------------------------------------------------------

    @message_handler
    def initialize_request(self, request: Json) -> None:
        if self.server is None:
            self.server = Server(self.session, self, self._adapter_command)
            self.server.start()
        arguments = dict(request.get("arguments", {}), adapterID="debugpy")
        self.server.delegate(request, arguments, _add_capabilities)

    @message_handler
    def launch_request(self, request: Json) -> None:
        arguments = request.get("arguments", {})
        launch = plan_launch(parse_launch(arguments))
        self.session.mode = launch.mode
        self.session.sources = launch.sources
        if launch.mode == "dev" and launch.entry_file is not None:
            self.session.app = Path(launch.entry_file)
            line = entry_line(self.session.app) if launch.stop_on_entry else None
            if line is not None:
                self.session.breakpoints.set_entry(_key(launch.entry_file), line)
        for note in launch.notes:
            self.send_event("output", {"category": "console", "output": f"distdev: {note}\n"})
        self._server().delegate(request, debugpy_launch(launch, arguments))

    @message_handler
    def attach_request(self, request: Json) -> None:
        raise RequestError('distdev starts the application itself: use "request": "launch" '
                           'with "app" (or "journal" to replay one service)')

    @message_handler
    def pause_request(self, request: Json) -> None:
        """debugpy stops a thread at its next line of service code: in an application that
        waits for calls, that is when one arrives. If nothing stops soon, say so."""
        stops = self.session.stops
        self._server().delegate(request)

        def hint() -> None:
            with self.session:
                if self.session.stops == stops and not self.session.ended.is_set():
                    self.send_event("output", {"category": "console", "output": PAUSE_HINT})

        timer = threading.Timer(PAUSE_HINT_AFTER, hint)
        timer.daemon = True
        timer.start()

    # -- breakpoints ----------------------------------------------------------------------------

    @message_handler
    def setBreakpoints_request(self, request: Json) -> None:
        arguments = request.get("arguments", {})
        source = arguments.get("source", {})
        path = str(source.get("path") or "")
        wanted = arguments.get("breakpoints") or [{"line": n} for n in arguments.get("lines", [])]
        self.session.timeline.breakpoints_changed()
        sources = self.session.sources
        reason = self.session.runtime.unverified_reason(path) if path else None
        if reason is None and path and sources is not None:
            reason = sources.unverified_reason(path)
        if reason is not None:
            self.respond(request, {"breakpoints": [
                {"verified": False, "line": b.get("line"), "message": reason} for b in wanted]})
            return
        if not path:
            self._server().delegate(request)
            return
        running = sources.running(path) if sources is not None else None
        if running is not None:  # the journal's copy of this very file is what runs
            source = dict(source, path=running)
        key, own, book = _key(running or path), len(wanted), self.session.breakpoints
        union = book.set_client(key, source, list(wanted))

        def only_the_clients(response: Json) -> None:
            body = response.setdefault("body", {})
            answered = body.get("breakpoints", [])
            book.remember(key, union, answered, own, from_client=True)
            body["breakpoints"] = answered[:own]
            for breakpoint in body["breakpoints"]:
                if running is not None and isinstance(breakpoint.get("source"), dict):
                    breakpoint["source"] = dict(arguments.get("source", {}))

        self._server().delegate(request, union, only_the_clients)

    @message_handler
    def setFunctionBreakpoints_request(self, request: Json) -> None:
        wanted = request.get("arguments", {}).get("breakpoints", [])
        self.session.timeline.breakpoints_changed()
        if self.session.app is None:
            self.respond(request, {"breakpoints": [{
                "verified": False, "message": "function breakpoints name a service's export "
                "(app/billing.charge); they work when debugging an application (\"app\")",
            } for _ in wanted]})
            return
        services = service_files(self.session.app)
        targets = [resolve_export(services, str(b.get("name", ""))) for b in wanted]
        book = self.session.breakpoints
        bound: list[tuple[str, int, Json]] = []
        for spec, target in zip(wanted, targets):
            if target.path is None or target.line is None:
                continue
            key = _key(str(target.path))
            if book.logpoint_at(key, target.line):
                target.error = (f"line {target.line} of {target.path.name} holds a logpoint: a "
                                "function breakpoint cannot share its line (remove one of them)")
                continue
            bound.append((key, target.line, spec))
        changed, ids = book.set_function_breakpoints(bound)
        for reply in self._server().resend_breakpoints(changed):
            reply.wait()
        answers, next_id = [], iter(ids)
        for target in targets:
            if target.path is None or target.line is None or target.error is not None:
                answers.append({"verified": False, "message": target.error})
                continue
            answer = book.function_breakpoint(_key(str(target.path)), target.line, next(next_id))
            answer["source"] = {"name": target.path.name, "path": str(target.path)}
            answers.append(answer)
        self.respond(request, {"breakpoints": answers})

    @message_handler
    def setExceptionBreakpoints_request(self, request: Json) -> None:
        """"Uncaught" also stops where an exception leaves the last service's code toward the
        outside: the ingress and the host catch it (to answer 500, to report a failed build),
        so to debugpy it is never uncaught. debugpy's user-unhandled stops find that moment;
        those that are not it are passed (``Server.exception_stop_passes``)."""
        arguments = dict(request.get("arguments") or {})
        filters = list(arguments.get("filters") or [])
        implied = "uncaught" in filters and "userUnhandled" not in filters
        self.session.uncaught_via_user_unhandled = implied
        if implied:
            arguments["filters"] = [*filters, "userUnhandled"]
        self._server().delegate(request, arguments)

    @message_handler
    def configurationDone_request(self, request: Json) -> None:
        self.session.timeline.configured()
        unsent = self.session.breakpoints.unsent_entry()
        server = self._server()
        if unsent is not None:
            for reply in server.resend_breakpoints([unsent]):
                reply.wait()
        server.delegate(request)

    # -- stops ----------------------------------------------------------------------------------

    def _stack(self, thread_id: int) -> Stack:
        return self.session.stacks.get(thread_id) or self._server().load_stack(thread_id)

    @message_handler
    def stackTrace_request(self, request: Json) -> None:
        arguments = request.get("arguments", {})
        thread_id = int(arguments["threadId"])
        stack = self._stack(thread_id)
        if not stack.frames:  # only distdev's frames: say what the thread is doing
            self.respond(request, {"stackFrames": [_waiting_frame(thread_id)], "totalFrames": 1})
            return
        page = stack.page(int(arguments.get("startFrame") or 0), int(arguments.get("levels") or 0))
        frames = [self._shown(dict(self.session.raw_frames[f.id], name=f.label)) for f in page]
        self.respond(request, {"stackFrames": frames, "totalFrames": len(stack.frames)})

    def _shown(self, frame: Json) -> Json:
        """A frame as the client is shown it: in a replay run from the journal's bundle, an
        unchanged file's frames show the user's file (where its breakpoints are set)."""
        source = frame.get("source")
        sources = self.session.sources
        if sources is not None and isinstance(source, dict) and source.get("path"):
            disk = sources.on_disk(str(source["path"]))
            if disk is not None:
                frame["source"] = dict(source, path=disk)
        return frame

    @message_handler
    def scopes_request(self, request: Json) -> None:
        if int(request.get("arguments", {}).get("frameId", 0)) >= WAITING_FRAMES:
            self.respond(request, {"scopes": []})  # a waiting thread's label: nothing to show
            return
        self._server().delegate(request)

    @message_handler
    def exceptionInfo_request(self, request: Json) -> None:
        service = self._stack(int(request.get("arguments", {})["threadId"])).service
        is_runtime_file = self.session.runtime.is_runtime_file

        def named(response: Json) -> None:
            _name_the_service(response.setdefault("body", {}), service, is_runtime_file)

        self._server().delegate(request, edit=named)

    # -- changing values: refused -----------------------------------------------------------

    @message_handler
    def setVariable_request(self, request: Json) -> None:
        raise RequestError(CHANGE_REFUSED)

    @message_handler
    def setExpression_request(self, request: Json) -> None:
        raise RequestError(CHANGE_REFUSED)

    # -- travelling back in a replay ------------------------------------------------------------

    @message_handler
    def stepBack_request(self, request: Json) -> None:
        self._travel(request, self.session.timeline.plan_step_back)

    @message_handler
    def reverseContinue_request(self, request: Json) -> None:
        self._travel(request, self.session.timeline.plan_reverse_continue)

    def _travel(self, request: Json, plan: Callable[[], tuple[int | None, Trip]]) -> None:
        """Ask the debuggee to run its journal again from the start, then let it go: the stops
        on the way are passed silently until the trip's destination (``Server.stopped_event``)."""
        if self.session.mode != "replay":
            raise RequestError(f"{request['command']} travels back through a journal: launch a "
                               'replay ("journal": ".../journal.cbor") to use it')
        thread_id = int(request.get("arguments", {})["threadId"])
        before, trip = plan()
        server = self._server()
        top = server.top_frame(thread_id)
        if top is None:
            raise RequestError("the thread is not stopped in the replay")
        # Only a step back may start from a checkpoint: the other trips count breakpoint hits
        # from the start of the journal.
        rewound = server.evaluate(top, REWIND.expression(before, trip.kind == "stepBack"))
        if REWIND.read(rewound.result()) != trip.run:
            raise RequestError("the replay could not be run again: "
                               f"{rewound.wait().get('message') or rewound.result()}")
        self.session.timeline.depart(trip)
        self.respond(request)
        server.ask("continue", {"threadId": thread_id})


def _waiting_frame(thread_id: int) -> Json:
    """The one frame shown for a thread that runs only distdev's code at this stop."""
    return {"id": WAITING_FRAMES + thread_id, "name": WAITING, "line": 0, "column": 0,
            "presentationHint": "label"}


def _key(path: str) -> str:
    """The breakpoint book's key for a file: one per file, however the client spells it."""
    return os.path.normcase(os.path.realpath(path))


def _add_capabilities(response: Json) -> None:
    body = response.setdefault("body", {})
    body["supportsDelayedStackTraceLoading"] = True
    body["supportsFunctionBreakpoints"] = True
    body["supportsExceptionInfoRequest"] = True
    body["supportsStepBack"] = True  # in a journal replay: see _time_travel
    body["supportsSetVariable"] = False  # refused: CHANGE_REFUSED
    body["supportsSetExpression"] = False
    body["supportsGotoTargetsRequest"] = False  # refused: NOT_SUPPORTED
    body["supportsRestartRequest"] = False
    body["supportsRestartFrame"] = False
    body["supportsLoadedSourcesRequest"] = True
    body["supportTerminateDebuggee"] = False  # the program ends with the session
    body.pop("supportsTerminateDebuggee", None)
    # VS Code's "Step Into Target" misbehaves on a proxy call; plain Step Into is right.
    body["supportsStepInTargetsRequest"] = False


def _name_the_service(body: Json, service: str | None,
                      is_runtime_file: Callable[[str], bool]) -> None:
    """An ``exceptionInfo`` body that says which service raised, without distdev's frames (and
    without the note debugpy appends to the exception's id at a user-unhandled stop)."""
    exception_id = body.get("exceptionId")
    if isinstance(exception_id, str):
        body["exceptionId"] = exception_id.partition(USER_UNHANDLED_NOTE)[0].strip()
    where = f"in service {service}"
    if service is not None:
        description = str(body.get("description") or body.get("exceptionId") or "")
        body["description"] = f"{description} ({where})" if description else where
    details = body.get("details")
    if not isinstance(details, dict):
        return
    if service is not None:
        details["service"] = service
        message = str(details.get("message") or "")
        details["message"] = f"{message} ({where})" if message else where
    trace = details.get("stackTrace")
    if isinstance(trace, str):
        details["stackTrace"] = user_traceback(trace, is_runtime_file)
