"""Measurement 6: the debug adapter against plain debugpy, on the same program, in the same run.

The program: a two-service app. The root (``app.py``) loops at its top level calling the child
(``worker.py``) ``work(i)``; ``work`` runs a loop of its own (``acc += j``, the breakpoint line).

* distdev: a DAP client on stdio talking to ``python -m distdev.dap_adapter`` (which relays to
  ``python -m debugpy.adapter``), launching ``{"type": "distdev", "app": "app.py"}`` in dev mode
  (fresh ``out``/``state`` folders per launch): the root's top level runs under the membranes
  and journals, so the child is a real service.
* baseline: the same client talking to ``python -m debugpy.adapter`` directly, launching
  ``plain_app.py`` (the same loop, ``worker.py`` imported as an ordinary module) with
  ``{"type": "python", "request": "launch", "justMyCode": true,
  "console": "internalConsole"}``. ``worker.py`` is the same file for both.

Per system: launches (the systems take turns), each timed from sending ``launch`` to the
``stopped`` event at the breakpoint in ``work`` (``initialize`` before, untimed; the adapter's
start-up before that is reported in a note as spawn-to-stop). In the last launch of each system
the breakpoint is cleared and ``next`` is run repeatedly inside ``work``'s loop: each ``next``
timed from the request to its ``stopped`` event, each followed by a timed ``stackTrace`` (top
frame, as an editor asks after a step); then four ``evaluate`` requests are sent at once at that
stop, timed until the last answer (editors send scopes and variables together). Figures are
medians. The issue's goals: a step at least
3x faster than plain debugpy's; a launch at most 1.2x plain debugpy's.

Step back, on a 10k-event journal: ``counter.py`` is called 5,000 times at build time (a CallIn
and a Return each). distdev launches a replay of that journal stopped before its last event,
then sends ``stepBack`` repeatedly, each timed from the request to its ``stopped`` event (the
adapter runs the journal again from the start, in the same process, to the previous event).
Plain debugpy has no step back; what its user does instead is restart the session at the
earlier point: launch ``replay_to.py`` (``distdev.replay(journal, until=N)``, then a breakpoint
line), timed from ``launch`` to the ``stopped`` event, with distdev's modules excluded from
"my code" as distdev's adapter excludes them.

The DAP client is a copy of the test suite's (``tests/dap/dap_client.py``), reduced. Every
adapter is disconnected (``terminateDebuggee``) and waited for, or killed, even on error.
Nothing is asserted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_util import Row, Settings, progress, write_app

from distdev.dap_adapter._wire import encode_message, read_message

Json = dict[str, Any]
TIMEOUT = 30.0
STEP_GOAL = 3.0  # steps at least 3x faster than plain debugpy
LAUNCH_GOAL = 1.2  # launch within 1.2x of plain debugpy
BASELINE = "plain debugpy"

APP_FILES = {
    "app.py": '''
        from distdev import import_service

        worker = import_service("./worker.py")

        total = 0
        for i in range(1_000_000):
            total += worker.work(i)
    ''',
    "plain_app.py": '''
        import worker

        total = 0
        for i in range(1_000_000):
            total += worker.work(i)
    ''',
    "journal_app.py": '''
        from distdev import import_service

        counter = import_service("./counter.py")
        for n in range(5_000):
            counter.add(n)
    ''',
    "counter.py": '''
        total = 0


        def add(n: int) -> int:
            global total
            total += n
            return total
    ''',
    "replay_to.py": '''
        import sys

        import distdev

        restored = distdev.replay(sys.argv[1], until=int(sys.argv[2]))
        state = restored.state()  # @stopped
    ''',
    "worker.py": '''
        calls = 0


        def work(n: int) -> int:
            global calls
            calls += 1
            acc = 0
            for j in range(100_000):
                acc += j  # @breakpoint
            return acc + n
    ''',
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    launches: int  # timed launches per system
    steps: int  # timed next + stackTrace pairs, in the last launch


QUICK_SIZES = Sizes(launches=2, steps=8)
FULL_SIZES = Sizes(launches=5, steps=20)
STEP_BACKS = 5  # timed step backs (distdev) and restarts (plain debugpy)


# -- a minimal DAP client, on the adapter's own framing ---------------------------------------------

class DapError(RuntimeError):
    """A request failed, or an expected message did not arrive in time."""


class DapClient:
    """One adapter process on pipes: requests matched to responses, events waited for."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
        self.spawned = time.perf_counter()
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._seq = itertools.count(1)
        self._responses: dict[int, queue.Queue[Json]] = {}
        self._lock = threading.Lock()
        self._events: list[Json] = []
        self._cond = threading.Condition()
        self.output: list[str] = []
        self.capabilities: Json = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        while True:
            message = read_message(self.process.stdout)
            if message is None:
                with self._cond:
                    self._events.append({"event": "<closed>", "body": {}})
                    self._cond.notify_all()
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
                with self._cond:
                    self._events.append(message)
                    self._cond.notify_all()

    def send(self, command: str, arguments: Json | None = None) -> queue.Queue[Json]:
        seq = next(self._seq)
        box: queue.Queue[Json] = queue.Queue()
        with self._lock:
            self._responses[seq] = box
        assert self.process.stdin is not None
        self.process.stdin.write(encode_message({"seq": seq, "type": "request",
                                                 "command": command,
                                                 "arguments": arguments or {}}))
        self.process.stdin.flush()
        return box

    def response(self, box: queue.Queue[Json], command: str, *, ok: bool = True,
                 timeout: float = TIMEOUT) -> Json:
        try:
            message = box.get(timeout=timeout)
        except queue.Empty:
            raise DapError(f"no response to {command} within {timeout} s") from None
        if ok and not message.get("success"):
            raise DapError(f"{command} failed: {message.get('message')}; "
                           f"output: {''.join(self.output)[-1000:]}")
        return message.get("body") or {}

    def request(self, command: str, arguments: Json | None = None, *, ok: bool = True,
                timeout: float = TIMEOUT) -> Json:
        return self.response(self.send(command, arguments), command, ok=ok, timeout=timeout)

    def wait_event(self, name: str, timeout: float = TIMEOUT) -> Json:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, event in enumerate(self._events):
                    if event["event"] == name:
                        del self._events[i]
                        return event.get("body") or {}
                    if event["event"] == "<closed>":
                        raise DapError(f"the adapter closed before {name!r}; "
                                       f"output: {''.join(self.output)[-1000:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DapError(f"no {name!r} event within {timeout} s; "
                                   f"output: {''.join(self.output)[-1000:]}")
                self._cond.wait(left)

    def initialize(self, adapter_id: str) -> None:
        self.capabilities = self.request("initialize", {
            "clientID": "distdev-bench", "adapterID": adapter_id, "linesStartAt1": True,
            "columnsStartAt1": True, "pathFormat": "path", "supportsRunInTerminalRequest": False,
        })

    def launch_to_stop(self, launch: Json, breakpoints: dict[str, list[int]]) -> Json:
        """launch, breakpoints, configurationDone, then the first ``stopped`` event."""
        launched = self.send("launch", launch)
        self.wait_event("initialized")
        for path, lines in breakpoints.items():
            self.set_breakpoints(path, lines)
        self.request("configurationDone")
        self.response(launched, "launch")
        return self.wait_event("stopped")

    def set_breakpoints(self, path: str, lines: list[int]) -> None:
        self.request("setBreakpoints", {"source": {"path": path},
                                        "breakpoints": [{"line": n} for n in lines]})

    def close(self, timeout: float = 15) -> None:
        """Disconnect (terminating the debuggee) and wait for the adapter, or kill it."""
        if self.process.poll() is None:
            with contextlib.suppress(DapError, OSError):
                self.request("disconnect", {"terminateDebuggee": True}, ok=False,
                             timeout=timeout)
            with contextlib.suppress(OSError):
                assert self.process.stdin is not None
                self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def _adapter(argv: list[str], cwd: Path) -> Iterator[DapClient]:
    client = DapClient(argv, cwd)
    try:
        yield client
    finally:
        client.close()


# -- the two systems --------------------------------------------------------------------------

@dataclasses.dataclass
class System:
    name: str
    argv: list[str]
    adapter_id: str
    launch: Callable[[int], Json]  # launch arguments for launch number i
    launches: list[float] = dataclasses.field(default_factory=list)
    spawn_to_stop: list[float] = dataclasses.field(default_factory=list)
    steps: list[float] = dataclasses.field(default_factory=list)
    stacks: list[float] = dataclasses.field(default_factory=list)
    together: list[float] = dataclasses.field(default_factory=list)
    step_back: bool | None = None


def _run_once(system: System, i: int, cwd: Path, worker: Path, line: int, steps: int) -> None:
    with _adapter(system.argv, cwd) as client:
        client.initialize(system.adapter_id)
        system.step_back = bool(client.capabilities.get("supportsStepBack"))
        started = time.perf_counter()
        stopped = client.launch_to_stop(system.launch(i), {str(worker): [line]})
        now = time.perf_counter()
        if stopped.get("reason") != "breakpoint":
            raise DapError(f"{system.name}: the first stop is not the breakpoint: {stopped}")
        system.launches.append(now - started)
        system.spawn_to_stop.append(now - client.spawned)
        if not steps:
            return
        thread = stopped["threadId"]
        client.set_breakpoints(str(worker), [])
        for _ in range(steps):
            t = time.perf_counter()
            client.request("next", {"threadId": thread})
            client.wait_event("stopped")
            system.steps.append(time.perf_counter() - t)
            t = time.perf_counter()
            frames = client.request("stackTrace", {"threadId": thread, "startFrame": 0,
                                                   "levels": 1})["stackFrames"]
            system.stacks.append(time.perf_counter() - t)
            if not frames or frames[0]["source"]["path"] != str(worker):
                raise DapError(f"{system.name}: a step left work(): {frames[:1]}")
        # Requests sent together, as an editor sends scopes and variables after a stop.
        frame_id = frames[0]["id"]
        for _ in range(steps):
            t = time.perf_counter()
            boxes = [client.send("evaluate", {"expression": expression, "frameId": frame_id,
                                              "context": "watch"})
                     for expression in ("acc", "j", "n", "calls")]
            for box in boxes:
                client.response(box, "evaluate")
            system.together.append(time.perf_counter() - t)


def _step_backs(folder: Path, journal: Path, count: int) -> tuple[list[float], bool]:
    """distdev: a replay stopped before the journal's last event, then ``count`` step backs."""
    last = _last_event(journal)
    times: list[float] = []
    with _adapter([sys.executable, "-m", "distdev.dap_adapter"], folder) as client:
        client.initialize("distdev")
        supported = bool(client.capabilities.get("supportsStepBack"))
        stop = client.launch_to_stop({"type": "distdev", "request": "launch",
                                      "journal": str(journal), "stopAtEvent": last}, {})
        thread = stop["threadId"]
        for _ in range(count):
            t = time.perf_counter()
            client.request("stepBack", {"threadId": thread})
            stopped = client.wait_event("stopped")
            times.append(time.perf_counter() - t)
            if stopped.get("reason") != "step":
                raise DapError(f"distdev: a step back ended with {stopped}")
    return times, supported


def _restarts(folder: Path, journal: Path, count: int) -> tuple[list[float], bool]:
    """Plain debugpy: launch the replay to the earlier event and stop there, ``count`` times."""
    last = _last_event(journal)
    script = folder / "replay_to.py"
    line = _marker(script, "stopped")
    times: list[float] = []
    supported = False
    for i in range(count):
        with _adapter([sys.executable, "-m", "debugpy.adapter"], folder) as client:
            client.initialize("python")
            supported = bool(client.capabilities.get("supportsStepBack"))
            t = time.perf_counter()
            stop = client.launch_to_stop({
                "type": "python", "request": "launch", "program": str(script),
                "args": [str(journal), str(last - 2 - i)], "cwd": str(folder),
                "justMyCode": True, "rules": [{"module": "distdev", "include": False}],
                "env": {"PYTHONHASHSEED": "0"}, "console": "internalConsole",
            }, {str(script): [line]})
            times.append(time.perf_counter() - t)
            if stop.get("reason") != "breakpoint":
                raise DapError(f"{BASELINE}: the restart did not stop at its breakpoint: {stop}")
    return times, supported


def _build_journal(folder: Path, tmp: Path) -> Path:
    import distdev

    app = distdev.App(folder / "journal_app.py", out=tmp / "journal-out",
                      state=tmp / "journal-state")
    app.start().close()
    return tmp / "journal-out" / "services" / "journal_app" / "counter" / "journal.cbor"


def _last_event(journal: Path) -> int:
    import distdev

    return int(distdev.read_journal(journal).events[-1].seq)


def _marker(path: Path, name: str) -> int:
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if f"# @{name}" in text:
            return number
    raise LookupError(f"no marker @{name} in {path}")


def measure(tmp: Path, settings: Settings) -> list[Row]:
    sizes = QUICK_SIZES if settings.quick else FULL_SIZES
    folder = write_app(tmp / "debug-app", APP_FILES).resolve()
    worker = folder / "worker.py"
    line = _marker(worker, "breakpoint")
    python = sys.executable
    distdev = System(
        "distdev", [python, "-m", "distdev.dap_adapter"], "distdev",
        lambda i: {"type": "distdev", "request": "launch", "app": str(folder / "app.py"),
                   "cwd": str(folder), "out": str(tmp / f"out-{i}"),
                   "state": str(tmp / f"state-{i}"), "console": "internalConsole"})
    plain = System(
        BASELINE, [python, "-m", "debugpy.adapter"], "python",
        lambda i: {"type": "python", "request": "launch", "program": str(folder / "plain_app.py"),
                   "cwd": str(folder), "justMyCode": True, "console": "internalConsole"})
    progress(f"debugger: {sizes.launches} launches each (+1 warm-up), {sizes.steps} steps + "
             f"stackTraces, distdev adapter vs plain debugpy")
    for system in (plain, distdev):  # warm-up: bytecode caches, page cache
        _run_once(system, -1, folder, worker, line, 0)
        system.launches.clear()
        system.spawn_to_stop.clear()
    for i in range(sizes.launches):
        last = i == sizes.launches - 1
        for system in (plain, distdev) if i % 2 == 0 else (distdev, plain):
            _run_once(system, i, folder, worker, line, sizes.steps if last else 0)

    journal = _build_journal(folder, tmp)
    events = _last_event(journal)
    progress(f"debugger: step back on a {events}-event journal, {STEP_BACKS} times; plain "
             f"debugpy restarts the replay {STEP_BACKS} times")
    backs, distdev.step_back = _step_backs(folder, journal, STEP_BACKS)
    restarts, plain.step_back = _restarts(folder, journal, STEP_BACKS)

    med = statistics.median
    launch_d, launch_p = med(distdev.launches), med(plain.launches)
    step_d, step_p = med(distdev.steps), med(plain.steps)
    stack_d, stack_p = med(distdev.stacks), med(plain.stacks)
    together_d, together_p = med(distdev.together), med(plain.together)
    spawn = (f"spawn-to-stop (adapter start-up included) {med(distdev.spawn_to_stop) * 1e3:.0f} "
             f"ms vs {med(plain.spawn_to_stop) * 1e3:.0f} ms")
    return [
        Row(key="debugger.launch", title="debugger: launch to first stop", unit="s",
            distdev=launch_d, baseline_name=BASELINE, baseline=launch_p,
            higher_is_better=False, goal=f"<= {LAUNCH_GOAL}x plain debugpy",
            met=launch_d <= LAUNCH_GOAL * launch_p,
            note=f"two-service app, breakpoint in the child; launch request -> stopped event, "
                 f"median of {sizes.launches} launches after a warm-up; distdev's includes the "
                 f"dev build (membranes, journals); {spawn}"),
        Row(key="debugger.step", title="debugger: next (request -> stopped)", unit="s",
            distdev=step_d, baseline_name=BASELINE, baseline=step_p,
            higher_is_better=False, goal=f">= {STEP_GOAL:g}x faster",
            met=step_p >= STEP_GOAL * step_d,
            note=f"median of {sizes.steps} `next` inside the child's loop (one session per "
                 "system); distdev's runner sets TCP_NODELAY on pydevd's socket, plain debugpy "
                 "waits out a delayed ACK (~40 ms) per response"),
        Row(key="debugger.stacktrace", title="debugger: stackTrace round trip", unit="s",
            distdev=stack_d, baseline_name=BASELINE, baseline=stack_p,
            higher_is_better=False, goal="no target", met=None,
            note=f"median of {sizes.steps}, top frame, right after each `next`"),
        Row(key="debugger.together", title="debugger: 4 evaluates sent together",
            unit="s", distdev=together_d, baseline_name=BASELINE, baseline=together_p,
            higher_is_better=False, goal="no target", met=None,
            note=f"median of {sizes.steps}: four `evaluate` requests sent at once at a stop, "
                 "until the last answer (an editor sends scopes and variables so); a stopped "
                 "pydevd thread runs one request per wake-up and then waits up to 200 ms, which "
                 "distdev's runner avoids"),
        Row(key="debugger.step_back", title=f"debugger: step back ({events}-event journal)",
            unit="s", distdev=med(backs), baseline_name=f"{BASELINE} restart",
            baseline=med(restarts), higher_is_better=False, goal="no target", met=None,
            note=f"median of {STEP_BACKS}: distdev's stepBack request -> stopped (the journal "
                 f"runs again in the same process); plain debugpy has none (supportsStepBack "
                 f"{plain.step_back}; distdev's {distdev.step_back}), so its figure is a "
                 "restarted session: launch -> stopped at the earlier event"),
    ]
