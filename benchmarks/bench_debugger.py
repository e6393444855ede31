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

Step back from the nearest checkpoint, on a long journal (100k records; 10k with ``--quick``):
``bench_restore``'s counter recorded live under the default ``CheckpointPolicy`` (a checkpoint
every 1,000 records or so), and the same calls recorded without checkpoints. The same
``stepBack`` loop runs on both: with checkpoints, the adapter replays from the checkpoint
before the target event; without, from the start.

What distdev's changes to pydevd save (``dap_adapter/_pydevd.py``): the last launch's steps,
stackTraces and evaluates are run a third time by distdev with them switched off
(``DISTDEV_DAP_NODELAY=0``, ``DISTDEV_DAP_PIPELINE=0``); the rows' notes give those figures.

The DAP client is the test suite's (``tests/dap/dap_client.py``). Every adapter is disconnected
(``terminateDebuggee``) and waited for, or killed, even on error. Nothing is asserted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_util import Row, Settings, progress, write_app

TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if TESTS not in sys.path:
    sys.path.append(TESTS)  # after everything else: tests/ must shadow no module

from dap.dap_client import DapClient, DapError, marker  # noqa: E402  (needs TESTS on sys.path)

Json = dict[str, Any]
STEP_GOAL = 3.0  # steps at least 3x faster than plain debugpy
LAUNCH_GOAL = 1.2  # launch within 1.2x of plain debugpy
BASELINE = "plain debugpy"
UNPATCHED = {"DISTDEV_DAP_NODELAY": "0", "DISTDEV_DAP_PIPELINE": "0"}

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


# -- sessions, on the tests' DAP client ------------------------------------------------------------

@contextlib.contextmanager
def _adapter(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Iterator[DapClient]:
    client = DapClient(cwd, env=env, command=argv)
    try:
        yield client
    finally:
        client.close()


def _launch_to_stop(client: DapClient, launch: Json, breakpoints: dict[str, list[int]]) -> Json:
    """launch, breakpoints, configurationDone, then the first ``stopped`` event."""
    launched = client.configure(launch, breakpoints)
    if not launched.success:
        raise DapError(f"launch failed: {launched.message}; output: "
                       f"{''.join(client.output)[-1000:]}")
    return client.wait_stopped()


# -- the systems --------------------------------------------------------------------------

@dataclasses.dataclass
class System:
    name: str
    argv: list[str]
    adapter_id: str
    launch: Callable[[int], Json]  # launch arguments for launch number i
    env: dict[str, str] | None = None
    launches: list[float] = dataclasses.field(default_factory=list)
    spawn_to_stop: list[float] = dataclasses.field(default_factory=list)
    steps: list[float] = dataclasses.field(default_factory=list)
    stacks: list[float] = dataclasses.field(default_factory=list)
    together: list[float] = dataclasses.field(default_factory=list)
    step_back: bool | None = None


def _run_once(system: System, i: int, cwd: Path, worker: Path, line: int, steps: int) -> None:
    with _adapter(system.argv, cwd, system.env) as client:
        system.step_back = bool(client.initialize(system.adapter_id, "distdev-bench")
                                .get("supportsStepBack"))
        started = time.perf_counter()
        stopped = _launch_to_stop(client, system.launch(i), {str(worker): [line]})
        now = time.perf_counter()
        if stopped.get("reason") != "breakpoint":
            raise DapError(f"{system.name}: the first stop is not the breakpoint: {stopped}")
        system.launches.append(now - started)
        system.spawn_to_stop.append(now - client.spawned)
        if steps:
            _time_steps(system, client, stopped["threadId"], worker, steps)


def _time_steps(system: System, client: DapClient, thread: int, worker: Path,
                steps: int) -> None:
    """``next`` and a top-frame ``stackTrace``, ``steps`` times; then four evaluates sent
    together, ``steps`` times."""
    client.set_breakpoints(str(worker), [])
    for _ in range(steps):
        t = time.perf_counter()
        client.step("next", thread)
        system.steps.append(time.perf_counter() - t)
        t = time.perf_counter()
        frames = client.stack(thread, 0, 1).body["stackFrames"]
        system.stacks.append(time.perf_counter() - t)
        if not frames or frames[0]["source"]["path"] != str(worker):
            raise DapError(f"{system.name}: a step left work(): {frames[:1]}")
    # Requests sent together, as an editor sends scopes and variables after a stop.
    frame_id = frames[0]["id"]
    for _ in range(steps):
        t = time.perf_counter()
        boxes = [client.send_request("evaluate", {"expression": expression, "frameId": frame_id,
                                                  "context": "watch"})
                 for expression in ("acc", "j", "n", "calls")]
        for box in boxes:
            if not client.wait_response(box).success:
                raise DapError(f"{system.name}: an evaluate failed")
        system.together.append(time.perf_counter() - t)


def _step_backs(folder: Path, journal: Path, count: int) -> tuple[list[float], bool]:
    """distdev: a replay stopped before the journal's last event, then ``count`` step backs."""
    last = _last_event(journal)
    times: list[float] = []
    with _adapter([sys.executable, "-m", "distdev.dap_adapter"], folder) as client:
        supported = bool(client.initialize("distdev", "distdev-bench").get("supportsStepBack"))
        stop = _launch_to_stop(client, {"type": "distdev", "request": "launch",
                                        "journal": str(journal), "stopAtEvent": last}, {})
        thread = stop["threadId"]
        for _ in range(count):
            t = time.perf_counter()
            stopped = client.step("stepBack", thread)
            times.append(time.perf_counter() - t)
            if stopped.get("reason") != "step":
                raise DapError(f"distdev: a step back ended with {stopped}")
    return times, supported


def _restarts(folder: Path, journal: Path, count: int) -> tuple[list[float], bool]:
    """Plain debugpy: launch the replay to the earlier event and stop there, ``count`` times."""
    last = _last_event(journal)
    script = folder / "replay_to.py"
    line = marker(script, "stopped")
    times: list[float] = []
    supported = False
    for i in range(count):
        with _adapter([sys.executable, "-m", "debugpy.adapter"], folder) as client:
            supported = bool(client.initialize("python", "distdev-bench").get("supportsStepBack"))
            t = time.perf_counter()
            stop = _launch_to_stop(client, {
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


def _long_journals(tmp: Path, records: int) -> tuple[Path, Path]:
    """The counter's journal of about ``records`` records, with checkpoints and without."""
    from bench_restore import record

    from distdev.replayer import CheckpointPolicy

    with_checkpoints, _, _, _ = record(tmp / "with", records, CheckpointPolicy())
    without, _, _, _ = record(tmp / "without", records, None)
    return with_checkpoints, without


def _last_event(journal: Path) -> int:
    import distdev

    return int(distdev.read_journal(journal).events[-1].seq)


def measure(tmp: Path, settings: Settings) -> list[Row]:
    sizes = QUICK_SIZES if settings.quick else FULL_SIZES
    folder = write_app(tmp / "debug-app", APP_FILES).resolve()
    worker = folder / "worker.py"
    line = marker(worker, "breakpoint")
    python = sys.executable

    def distdev_launch(tag: object) -> Json:
        return {"type": "distdev", "request": "launch", "app": str(folder / "app.py"),
                "cwd": str(folder), "out": str(tmp / f"out-{tag}"),
                "state": str(tmp / f"state-{tag}"), "console": "internalConsole"}

    distdev = System("distdev", [python, "-m", "distdev.dap_adapter"], "distdev", distdev_launch)
    unpatched = System("distdev, pydevd unpatched", distdev.argv, "distdev",
                       lambda i: distdev_launch(f"unpatched-{i}"), env=UNPATCHED)
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
    _run_once(unpatched, 0, folder, worker, line, sizes.steps)

    journal = _build_journal(folder, tmp)
    events = _last_event(journal)
    progress(f"debugger: step back on a {events}-event journal, {STEP_BACKS} times; plain "
             f"debugpy restarts the replay {STEP_BACKS} times")
    backs, distdev.step_back = _step_backs(folder, journal, STEP_BACKS)
    restarts, plain.step_back = _restarts(folder, journal, STEP_BACKS)
    long = 10_000 if settings.quick else 100_000
    progress(f"debugger: step back on a {long:,}-record journal, from the nearest checkpoint "
             "and from the start")
    with_checkpoints, without = _long_journals(tmp / "long", long)
    backs_ck, _ = _step_backs(with_checkpoints.parent, with_checkpoints, STEP_BACKS)
    backs_whole, _ = _step_backs(without.parent, without, STEP_BACKS)

    med = statistics.median
    launch_d, launch_p = med(distdev.launches), med(plain.launches)
    step_d, step_p = med(distdev.steps), med(plain.steps)
    stack_d, stack_p = med(distdev.stacks), med(plain.stacks)
    together_d, together_p = med(distdev.together), med(plain.together)
    off = {name: f"{med(figures) * 1e3:.1f} ms" for name, figures in (
        ("steps", unpatched.steps), ("stacks", unpatched.stacks),
        ("together", unpatched.together))}
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
                 f"waits out a delayed ACK (~40 ms) per response; distdev with its pydevd "
                 f"patches off: {off['steps']}"),
        Row(key="debugger.stacktrace", title="debugger: stackTrace round trip", unit="s",
            distdev=stack_d, baseline_name=BASELINE, baseline=stack_p,
            higher_is_better=False, goal="no target", met=None,
            note=f"median of {sizes.steps}, top frame, right after each `next`; distdev with "
                 f"its pydevd patches off: {off['stacks']}"),
        Row(key="debugger.together", title="debugger: 4 evaluates sent together",
            unit="s", distdev=together_d, baseline_name=BASELINE, baseline=together_p,
            higher_is_better=False, goal="no target", met=None,
            note=f"median of {sizes.steps}: four `evaluate` requests sent at once at a stop, "
                 "until the last answer (an editor sends scopes and variables so); a stopped "
                 "pydevd thread runs one request per wake-up and then waits up to 200 ms, which "
                 f"distdev's runner avoids; with its pydevd patches off: {off['together']}"),
        Row(key="debugger.step_back", title=f"debugger: step back ({events}-event journal)",
            unit="s", distdev=med(backs), baseline_name=f"{BASELINE} restart",
            baseline=med(restarts), higher_is_better=False, goal="no target", met=None,
            note=f"median of {STEP_BACKS}: distdev's stepBack request -> stopped (the journal "
                 f"runs again in the same process); plain debugpy has none (supportsStepBack "
                 f"{plain.step_back}; distdev's {distdev.step_back}), so its figure is a "
                 "restarted session: launch -> stopped at the earlier event"),
        Row(key="debugger.step_back_long",
            title=f"debugger: step back ({_last_event(with_checkpoints):,}-record journal)",
            unit="s", distdev=med(backs_ck), baseline_name="the same, no checkpoints",
            baseline=med(backs_whole), higher_is_better=False, goal="no target", met=None,
            note=f"median of {STEP_BACKS}: stepBack request -> stopped at the previous event, "
                 "replayed from the nearest checkpoint before it; the baseline replays the same "
                 "calls' journal, written without checkpoints, from the start"),
    ]
