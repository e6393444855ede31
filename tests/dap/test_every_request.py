"""Every request of the Debug Adapter Protocol gets a response from the adapter — success, or an
error saying why — and the session stays usable after each; ending a session in any way
(``disconnect`` keeping the debuggee, ``terminate``, SIGINT of the adapter) leaves no process
behind and no traceback."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from dap.dap_client import TINYSHOP, DapClient, iter_descendants, marker

Start = Callable[..., DapClient]
APP, ORDERS, BILLING = (TINYSHOP / f for f in ("app.py", "orders.py", "billing.py"))
PROTOCOL = (Path(__file__).resolve().parent / "node" / "node_modules" / "@vscode" /
            "debugprotocol" / "lib" / "debugProtocol.d.ts")

SPEC_REQUESTS = frozenset([
    "cancel", "runInTerminal", "startDebugging", "initialize", "configurationDone", "launch",
    "attach", "restart", "disconnect", "terminate", "breakpointLocations", "setBreakpoints",
    "setFunctionBreakpoints", "setExceptionBreakpoints", "dataBreakpointInfo",
    "setDataBreakpoints", "setInstructionBreakpoints", "continue", "next", "stepIn", "stepOut",
    "stepBack", "reverseContinue", "restartFrame", "goto", "pause", "stackTrace", "scopes",
    "variables", "setVariable", "source", "threads", "terminateThreads", "modules",
    "loadedSources", "evaluate", "setExpression", "stepInTargets", "gotoTargets", "completions",
    "exceptionInfo", "readMemory", "writeMemory", "disassemble", "locations",
])
"""The requests of the protocol (version 1.68), as its JSON schema's typings name them."""


def test_every_request_list_is_the_protocols() -> None:
    if not PROTOCOL.is_file():
        pytest.skip("tests/dap/node/node_modules is missing: run `npm ci --prefix tests/dap/node`")
    named = re.findall(r"interface (\w+)Request extends Request\b", PROTOCOL.read_text())
    assert {n[0].lower() + n[1:] for n in named} == SPEC_REQUESTS


def alive(pids: list[int]) -> list[int]:
    """The processes among ``pids`` still running (zombies are gone for good)."""
    return [pid for pid in pids if os.path.exists(f"/proc/{pid}")
            and "Z" not in Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]]


def wait_gone(client: DapClient, pids: list[int], timeout: float = 30.0) -> None:
    """The adapter has exited, and every process it started after it (bounded polling: the
    system reaps an orphan a moment after its parent ends)."""
    client.process.wait(timeout)
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pids), f"processes left behind: {alive(pids)}"


def test_every_request_of_the_protocol_is_answered_and_the_session_stays_usable(
    adapter: Start, tmp_path: Path,
) -> None:
    client = adapter()
    answered: dict[str, bool] = {}

    def send(command: str, arguments: dict | None = None) -> bool:
        answer = client.request(command, arguments or {}, ok=False, timeout=20)
        assert answer.success or answer.message, (command, answer.raw)
        answered[command] = answer.success
        return answer.success

    send("initialize", {"clientID": "distdev-tests", "adapterID": "distdev",
                        "linesStartAt1": True, "pathFormat": "path"})
    launched = client.send_request("launch", {
        "type": "distdev", "request": "launch", "app": str(APP), "port": 0,
        "out": str(tmp_path / "out"), "state": str(tmp_path / "state")})
    client.wait_event("initialized")
    send("setBreakpoints", {"source": {"path": str(ORDERS)},
                            "breakpoints": [{"line": marker(ORDERS, "orders-call-charge")}]})
    send("setFunctionBreakpoints", {"breakpoints": []})
    send("setExceptionBreakpoints", {"filters": []})
    send("breakpointLocations", {"source": {"path": str(ORDERS)}, "line": 5})
    assert send("configurationDone")
    assert client.wait_response(launched).success
    answered["launch"] = True

    thread = client.wait_stopped()["threadId"]
    assert send("stackTrace", {"threadId": thread, "startFrame": 0, "levels": 1})
    frame = client.top(thread)["id"]
    source = {"path": str(ORDERS)}
    # Everything that inspects (or refuses to change) a stopped program.
    for command, arguments in [
        ("threads", {}), ("scopes", {"frameId": frame}), ("evaluate", {"expression": "note",
                                                                       "frameId": frame}),
        ("completions", {"text": "no", "column": 3, "frameId": frame}),
        ("source", {"source": source, "sourceReference": 0}), ("modules", {}),
        ("loadedSources", {}), ("exceptionInfo", {"threadId": thread}),
        ("stepInTargets", {"frameId": frame}), ("gotoTargets", {"source": source, "line": 20}),
        ("goto", {"threadId": thread, "targetId": 1}), ("restartFrame", {"frameId": frame}),
        ("setVariable", {"variablesReference": 1, "name": "note", "value": "''"}),
        ("setExpression", {"expression": "note", "value": "''", "frameId": frame}),
        ("dataBreakpointInfo", {"variablesReference": 0, "name": "note"}),
        ("setDataBreakpoints", {"breakpoints": []}),
        ("setInstructionBreakpoints", {"breakpoints": []}),
        ("readMemory", {"memoryReference": "0", "count": 4}),
        ("writeMemory", {"memoryReference": "0", "data": ""}),
        ("disassemble", {"memoryReference": "0", "instructionCount": 1}),
        ("locations", {"locationReference": 1}), ("terminateThreads", {"threadIds": [thread]}),
        ("cancel", {"requestId": 1}), ("runInTerminal", {"args": ["true"], "cwd": "/"}),
        ("startDebugging", {"configuration": {}, "request": "launch"}),
        ("attach", {}), ("stepBack", {"threadId": thread}),
        ("reverseContinue", {"threadId": thread}), ("restart", {}),
        ("initialize", {"clientID": "again", "adapterID": "distdev"}),
        ("launch", {"type": "distdev", "request": "launch", "app": str(APP)}),
    ]:
        send(command, arguments)
        # Still usable: the stopped frame answers.
        assert client.request("evaluate", {"expression": "cents", "frameId": frame,
                                           "context": "watch"}).body["result"] == "1200", command
    scopes = client.request("scopes", {"frameId": frame}).body["scopes"]
    assert send("variables", {"variablesReference": scopes[0]["variablesReference"]})
    assert answered["goto"] is False and answered["setVariable"] is False
    assert answered["loadedSources"] is True

    # Stepping, then running on.
    for command in ("stepIn", "next", "stepOut"):
        assert send(command, {"threadId": thread})
        client.wait_stopped()
    assert send("continue", {"threadId": thread})
    url = client.wait_event("output", lambda body: "serving app on" in body.get("output", ""))
    # The application is idle, waiting for calls: a pause says so, and stops when one comes.
    assert send("pause", {"threadId": thread})
    client.wait_event("output", lambda body: "waits for calls" in body.get("output", ""))
    address = re.search(r"http://127\.0\.0\.1:\d+", url["output"])
    assert address is not None
    request = urllib.request.Request(f"{address.group(0)}/place_order", method="POST",
                                     data=b'{"user": "bob", "cents": 5}',
                                     headers={"Content-Type": "application/json"})

    def call() -> None:
        try:
            urllib.request.urlopen(request, timeout=60).read()
        except OSError:
            pass  # the session ends the application while the call is paused

    threading.Thread(target=call, daemon=True).start()
    paused = client.wait_stopped(timeout=30)
    assert paused["reason"] in ("pause", "breakpoint"), paused
    send("terminate", {})

    pids = list(iter_descendants(client.process.pid))
    assert pids
    send("disconnect", {"terminateDebuggee": False})
    assert answered.keys() == SPEC_REQUESTS, SPEC_REQUESTS - answered.keys()
    wait_gone(client, pids)


def test_every_request_disconnect_keeping_the_debuggee_leaves_no_process(
    adapter: Start, tmp_path: Path,
) -> None:
    client = adapter()
    client.start({"app": str(APP), "out": str(tmp_path / "out"),
                  "state": str(tmp_path / "state")},
                 {str(BILLING): [marker(BILLING, "billing-charge-first")]})
    client.wait_stopped()
    pids = list(iter_descendants(client.process.pid))
    answer = client.request("disconnect", {"terminateDebuggee": False})
    assert answer.success
    wait_gone(client, pids)
    assert client.process.returncode == 0, "".join(client.stderr)
    assert "ends with the session" in "".join(client.output)


def test_every_request_sigint_of_the_adapter_ends_the_session_without_a_traceback(
    adapter: Start, tmp_path: Path,
) -> None:
    client = adapter()
    client.start({"app": str(APP), "out": str(tmp_path / "out"),
                  "state": str(tmp_path / "state")},
                 {str(BILLING): [marker(BILLING, "billing-charge-first")]})
    client.wait_stopped()
    pids = list(iter_descendants(client.process.pid))
    client.process.send_signal(signal.SIGINT)
    wait_gone(client, pids)
    assert client.process.returncode == 0
    assert "Traceback" not in "".join(client.stderr), "".join(client.stderr)
