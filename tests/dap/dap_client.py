"""A small DAP client for the tests and the benchmark (benchmarks/bench_debugger.py): starts an
adapter on pipes (``python -m distdev.dap_adapter`` unless told another, such as plain
``python -m debugpy.adapter``), frames messages with Content-Length, matches responses to
requests by ``request_seq`` and waits for events with timeouts (never sleeps)."""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Json = dict[str, Any]
TIMEOUT = 20.0
DISTDEV_ADAPTER = [sys.executable, "-m", "distdev.dap_adapter"]


def read_message(stream: Any) -> Json | None:
    length = None
    while True:
        line = stream.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            if length is not None:
                break
            continue
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return json.loads(stream.read(length))  # type: ignore[no-any-return]


class DapError(AssertionError):
    """A request failed, or an expected message did not arrive in time."""


@dataclass
class Response:
    success: bool
    message: str | None
    body: Json
    raw: Json


class DapClient:
    """One adapter process and its message streams."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None,
                 command: list[str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
        full_env.update(env or {})
        self.spawned = time.perf_counter()
        self.process = subprocess.Popen(
            command or DISTDEV_ADAPTER, cwd=cwd, env=full_env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self._seq = itertools.count(1)
        self._responses: dict[int, queue.Queue[Json]] = {}
        self._lock = threading.Lock()
        self._events: list[Json] = []
        self._event_cond = threading.Condition()
        self.capabilities: Json = {}
        self.output: list[str] = []
        self.stderr: list[str] = []
        self.reverse_requests: list[Json] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # Read, so that an adapter that writes much there never blocks on a full pipe.
        threading.Thread(target=self._read_stderr, daemon=True).start()

    # -- plumbing -------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.process.stdout is not None
        while True:
            message = read_message(self.process.stdout)
            if message is None:
                with self._event_cond:
                    self._events.append({"type": "event", "event": "<closed>", "body": {}})
                    self._event_cond.notify_all()
                return
            kind = message.get("type")
            if kind == "response":
                with self._lock:
                    box = self._responses.get(message["request_seq"])
                if box is not None:
                    box.put(message)
            elif kind == "event":
                if message["event"] == "output":
                    self.output.append((message.get("body") or {}).get("output", ""))
                with self._event_cond:
                    self._events.append(message)
                    self._event_cond.notify_all()
            elif kind == "request":
                self.reverse_requests.append(message)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def _send(self, message: Json) -> None:
        assert self.process.stdin is not None
        body = json.dumps(message).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def send_request(self, command: str, arguments: Json | None = None) -> queue.Queue[Json]:
        seq = next(self._seq)
        box: queue.Queue[Json] = queue.Queue()
        with self._lock:
            self._responses[seq] = box
        self._send({"seq": seq, "type": "request", "command": command,
                    "arguments": arguments or {}})
        return box

    @staticmethod
    def wait_response(box: queue.Queue[Json], timeout: float = TIMEOUT) -> Response:
        try:
            message = box.get(timeout=timeout)
        except queue.Empty:
            raise DapError(f"no response within {timeout} s") from None
        return Response(bool(message.get("success")), message.get("message"),
                        message.get("body") or {}, message)

    def request(self, command: str, arguments: Json | None = None, *, ok: bool = True,
                timeout: float = TIMEOUT) -> Response:
        response = self.wait_response(self.send_request(command, arguments), timeout)
        if ok and not response.success:
            raise DapError(f"{command} failed: {response.message}")
        return response

    def wait_event(self, name: str, predicate: Callable[[Json], bool] | None = None,
                   timeout: float = TIMEOUT) -> Json:
        """The first not-yet-taken event ``name`` (matching ``predicate``); taken events are
        removed, so successive calls see successive events."""
        deadline = time.monotonic() + timeout
        with self._event_cond:
            while True:
                for i, event in enumerate(self._events):
                    if event["event"] == name and (predicate is None or predicate(event.get("body") or {})):
                        del self._events[i]
                        return event.get("body") or {}  # type: ignore[no-any-return]
                    if event["event"] == "<closed>" and name != "<closed>":
                        raise DapError(f"the adapter closed before event {name!r}; "
                                       f"output: {''.join(self.output)[-2000:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [e["event"] for e in self._events]
                    raise DapError(f"no {name!r} event within {timeout} s (pending: {seen}); "
                                   f"output: {''.join(self.output)[-2000:]}")
                self._event_cond.wait(left)

    def pending(self, name: str) -> list[Json]:
        """The bodies of the events ``name`` that came and were not taken yet."""
        with self._event_cond:
            return [e.get("body") or {} for e in self._events if e["event"] == name]

    # -- conveniences ---------------------------------------------------------------------

    def start(self, launch: Json, breakpoints: dict[str, list[int]] | None = None,
              function_breakpoints: list[str] | None = None) -> Response:
        """initialize, then a ``distdev`` launch with its breakpoints (``configure``); returns
        the launch response."""
        self.initialize()
        return self.configure({"type": "distdev", "request": "launch", **launch}, breakpoints,
                              function_breakpoints)

    def initialize(self, adapter_id: str = "distdev", client_id: str = "distdev-tests") -> Json:
        """The initialize request; returns (and keeps) the adapter's capabilities."""
        self.capabilities = self.request("initialize", {
            "clientID": client_id, "adapterID": adapter_id, "linesStartAt1": True,
            "columnsStartAt1": True, "pathFormat": "path", "supportsRunInTerminalRequest": False,
        }).body
        return self.capabilities

    def configure(self, launch: Json, breakpoints: dict[str, list[int]] | None = None,
                  function_breakpoints: list[str] | None = None) -> Response:
        """launch (arguments as given), breakpoints, configurationDone; returns the launch
        response."""
        launched = self.send_request("launch", launch)
        self.wait_event("initialized")
        self.set_breakpoints_all(breakpoints or {})
        if function_breakpoints is not None:
            self.request("setFunctionBreakpoints",
                         {"breakpoints": [{"name": n} for n in function_breakpoints]})
        self.request("configurationDone")
        return self.wait_response(launched)

    def set_breakpoints_all(self, breakpoints: dict[str, list[int]]) -> dict[str, Response]:
        return {path: self.set_breakpoints(path, lines) for path, lines in breakpoints.items()}

    def set_breakpoints(self, path: str, lines: list[int]) -> Response:
        return self.request("setBreakpoints", {"source": {"path": path},
                                               "breakpoints": [{"line": n} for n in lines]})

    def wait_stopped(self, timeout: float = TIMEOUT) -> Json:
        return self.wait_event("stopped", timeout=timeout)

    def stack(self, thread_id: int, start: int = 0, levels: int = 0) -> Response:
        return self.request("stackTrace", {"threadId": thread_id, "startFrame": start,
                                           "levels": levels})

    def top(self, thread_id: int) -> Json:
        return self.stack(thread_id, 0, 1).body["stackFrames"][0]  # type: ignore[no-any-return]

    def locals_of(self, frame_id: int) -> dict[str, str]:
        return self.scope_of(frame_id, "locals")

    def globals_of(self, frame_id: int) -> dict[str, str]:
        return self.scope_of(frame_id, "globals")

    def scope_of(self, frame_id: int, name: str) -> dict[str, str]:
        """A frame's variables in one scope ("locals", "globals"), as name -> value."""
        scopes = self.request("scopes", {"frameId": frame_id}).body["scopes"]
        ref = next(s["variablesReference"] for s in scopes if s["name"].lower() == name)
        variables = self.request("variables", {"variablesReference": ref}).body["variables"]
        return {v["name"]: v["value"] for v in variables}

    def step(self, command: str, thread_id: int) -> Json:
        """Run one step command; returns the stopped event that ends it."""
        self.request(command, {"threadId": thread_id})
        return self.wait_stopped()

    def close(self, timeout: float = 15) -> int:
        """Disconnect (terminating the debuggee) and wait for the adapter to exit."""
        if self.process.poll() is None:
            try:
                self.request("disconnect", {"terminateDebuggee": True}, ok=False, timeout=timeout)
            except (DapError, OSError):
                pass
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
            except OSError:
                pass
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def __enter__(self) -> DapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def marker(path: Path, name: str) -> int:
    """The line of ``# @name`` in ``path``."""
    pattern = re.compile(rf"#\s*@{re.escape(name)}\b")
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if pattern.search(line):
            return number
    raise LookupError(f"no marker @{name} in {path}")


def iter_descendants(pid: int) -> Iterator[int]:
    """Process ids of ``pid``'s descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        yield child
        todo.extend(children.get(child, []))


FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINYSHOP = FIXTURES / "tinyshop"
