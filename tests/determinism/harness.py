"""Running one determinism case: record it in this process, replay every journal elsewhere.

A case (``Case``) is a small application (its files), the calls to make, and the outcome the
determinism contract promises (DESIGN.md §4):

* ``exact``: recorded here with ``distdev.testing.load_app``; then every journal is replayed by
  the real ``distdev replay JOURNAL --json`` in a fresh process started under another
  ``PYTHONHASHSEED``, another ``TZ``, another ``HOME``, changed environment variables, from an
  empty working folder, with the application folder moved away (a replay has its journal and
  nothing else). Each replayed state must equal the live state ``app.state(id)``.
* ``refused``: a ``DeterminismError`` whose message contains the case's phrase, at the build or
  at a call; the journals written up to then must still replay exactly.
* ``detected``: the replay of the journal of service ``where`` fails with a divergence naming the
  global (the phrase); every other journal replays exactly.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import decimal
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from support import run_distdev, write_files

from distdev import DeterminismError
from distdev.compartment import install_guards
from distdev.testing import load_app

Outcome = Literal["exact", "refused", "detected"]

REPLAY_SEED = "4242"
"""The PYTHONHASHSEED a replay process is started under (the build pins 0)."""


@dataclasses.dataclass(frozen=True)
class Call:
    """``service.export(*args)`` from outside the application; ``raises``: the exception type
    name the call may raise ("any": whatever it raises), as the case's own behaviour."""

    service: str
    export: str
    args: tuple[Any, ...] = ()
    raises: str | None = None


def call(service: str, export: str, *args: Any, raises: str | None = None) -> Call:
    return Call(service, export, args, raises)


Check = Callable[[Any], bool]


@dataclasses.dataclass(frozen=True)
class Case:
    """One conformance case (see the module docstring)."""

    id: str
    files: dict[str, str]
    outcome: Outcome
    calls: tuple[Call, ...] = ()
    phrase: str = ""
    """refused: a phrase of the DeterminismError; detected: a phrase of the divergence (the
    global it names, quoted: "'count'")."""
    where: str = "app"
    """detected: the service whose replay must diverge."""
    live: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """service -> global -> the value (or a predicate) it must hold live: proof that the case
    really observed what it is about."""
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    """Environment variables set while recording; a replay sees other values."""
    in_app_folder: bool = False
    """Record with the app folder as the working folder (as `distdev build app.py` run there)."""
    up: bool = False
    """Also build with `distdev build`, run under `distdev up` from another working folder
    (the app folder moved away), make the calls there and replay the runtime journals."""
    tick: bool = False
    """Wait for the wall clock's second to change before replaying (a case about the clock)."""
    observer: Literal["trace", "gc"] | None = None
    """Record while a tool of the host observes: "trace", a Python trace function that resolves
    each new code object's file (as coverage.py's tracer and hypothesis's do); "gc", a gc
    callback that reads the clock (as hypothesis's does). What observes is not the service."""
    recorded_after: tuple[str, ...] = ()
    """Record in a fresh process that imported these modules before distdev (as a test runner,
    a notebook or a benchmark harness may have), instead of in this one."""
    xfail: str | None = None
    """Why the case fails today (the hole it lists); None if it passes."""

    def __post_init__(self) -> None:
        if self.outcome != "exact" and not self.phrase:
            raise ValueError(f"case {self.id}: a {self.outcome} case needs its phrase")


# -- the world a replay runs in ----------------------------------------------------------------


def other_tz() -> str:
    """A POSIX TZ whose offset differs from this process's local one."""
    offset = time.localtime().tm_gmtoff
    return "XYZ+03:17" if offset != -(3 * 3600 + 17 * 60) else "XYZ-05:30"


def replay_env(case_env: dict[str, str], base: Path) -> dict[str, str]:
    env = {
        "PYTHONHASHSEED": REPLAY_SEED,
        "TZ": other_tz(),
        "HOME": str(base / "elsewhere-home"),
        "USER": "somebody-else",
        "LOGNAME": "somebody-else",
        "XDG_CACHE_HOME": str(base / "cache"),
        "DISTDEV_CASE_REPLAY": "1",
    }
    env.update({key: f"changed at replay {value!r}" for key, value in case_env.items()})
    return env


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@dataclasses.dataclass
class Replayed:
    journal: Path
    returncode: int
    state: dict[str, Any] | None
    stderr: str

    def describe(self) -> str:
        return f"{self.journal} exited {self.returncode}:\n{self.stderr[-3000:]}"


def replay_journals(journals: dict[str, Path], env: dict[str, str], cwd: Path
                    ) -> dict[str, Replayed]:
    """``distdev replay JOURNAL --json`` for each journal, two at a time."""

    def one(journal: Path) -> Replayed:
        result = run_distdev("replay", journal, "--json", cwd=cwd, env=env, timeout=120)
        state = None
        if result.returncode == 0:
            state = json.loads(result.stdout)["state"]
        return Replayed(journal, result.returncode, state, result.stderr)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {sid: pool.submit(one, path) for sid, path in journals.items()}
        return {sid: f.result() for sid, f in futures.items()}


def normal(value: Any) -> Any:
    """A state as JSON gives it back (what `replay --json` prints)."""
    return json.loads(json.dumps(value))


# -- what one process keeps ---------------------------------------------------------------------


@contextlib.contextmanager
def process_kept() -> Iterator[None]:
    """Put back what a case that leaks may change in this (the recording) process: root logger
    handlers, the main thread's decimal context, builtins, and stdlib module attributes a case
    patches on purpose, so one case's hole cannot become the next case's failure."""
    import builtins
    import string

    install_guards()  # first: what distdev replaces process-wide is not the case's doing
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    context = decimal.getcontext().copy()
    kept = {m: dict(vars(m)) for m in (builtins, string)}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        decimal.setcontext(context)
        for module, namespace in kept.items():
            for key in [k for k in vars(module) if k not in namespace]:
                delattr(module, key)
            for key, value in namespace.items():
                if vars(module).get(key, namespace) is not value:
                    setattr(module, key, value)


# -- a case, run --------------------------------------------------------------------------------


@dataclasses.dataclass
class Recorded:
    live: dict[str, dict[str, Any]]
    results: list[Any]
    journals: dict[str, Path]
    refusal: str | None


@contextlib.contextmanager
def observed(how: str | None) -> Iterator[None]:
    """The host's tool observing while the case records (``Case.observer``)."""
    import gc

    seen: set[str] = set()

    def tracer(frame: Any, event: str, arg: Any) -> None:
        name = frame.f_code.co_filename
        if event == "call" and name not in seen:
            seen.add(name)
            Path(name).resolve()  # what a coverage tool does to decide whether to trace
        return None

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        time.perf_counter()

    if how == "trace":
        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            yield
        finally:
            sys.settrace(previous)
    elif how == "gc":
        gc.callbacks.append(on_gc)
        try:
            yield
        finally:
            gc.callbacks.remove(on_gc)
    else:
        yield


def record(case: Case, base: Path) -> Recorded:
    """Build the case's application in this process, make its calls, close it."""
    app_dir = write_files(base / "app", case.files)
    results: list[Any] = []
    refusal: str | None = None
    journals: dict[str, Path] = {}
    live: dict[str, dict[str, Any]] = {}
    saved_env = {k: os.environ.get(k) for k in case.env}
    saved_cwd = os.getcwd()
    with process_kept():
        os.environ.update(case.env)
        if case.in_app_folder:
            os.chdir(app_dir)
        try:
            try:
                with observed(case.observer):
                    app = load_app(app_dir / "app.py", out=base / "build", state=base / "state")
            except DeterminismError as exc:
                return Recorded({}, [], {}, str(exc))
            try:
                for c in case.calls:
                    try:
                        results.append(getattr(app.service(c.service), c.export)(*c.args))
                    except DeterminismError as exc:
                        refusal = str(exc)
                        break
                    except Exception as exc:
                        if c.raises not in ("any", type(exc).__name__):
                            raise
                        results.append(f"raised {type(exc).__name__}")
                live = {sid: normal(app.state(sid)) for sid in app.services}
                journals = {sid: app.journal(sid) for sid in app.services}
            finally:
                app.close()
        finally:
            os.chdir(saved_cwd)
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return Recorded(live, results, journals, refusal)


_RECORDER = """
import importlib, json, sys
from pathlib import Path
spec = json.loads(sys.argv[1])
for name in spec["first"]:
    importlib.import_module(name)
sys.path.insert(0, spec["tests"])
from determinism.corpus import CASES
from determinism.harness import normal, record
case = next(c for c in CASES if c.id == spec["id"])
got = record(case, Path(spec["base"]))
print("RECORDED " + json.dumps({"live": got.live, "results": normal(got.results),
                                 "journals": {k: str(v) for k, v in got.journals.items()},
                                 "refusal": got.refusal}))
"""


def record_fresh(case: Case, base: Path) -> Recorded:
    """``record`` in a fresh process that first imports ``case.recorded_after``."""
    import subprocess

    spec = {"first": list(case.recorded_after), "tests": str(Path(__file__).parent.parent),
            "id": case.id, "base": str(base)}
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = os.environ.get("PYTHONHASHSEED", "0")
    done = subprocess.run([sys.executable, "-P", "-c", _RECORDER, json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=120)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RECORDED ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    got = json.loads(lines[-1][len("RECORDED "):])
    return Recorded(got["live"], got["results"],
                    {k: Path(v) for k, v in got["journals"].items()}, got["refusal"])


def wait_for_next_second(after: float) -> None:
    """Wait until the wall clock shows a later second than ``after`` did (what a case about
    the clock's second needs before its replay can tell)."""
    deadline = time.monotonic() + 5
    while int(time.time()) <= int(after):
        if time.monotonic() > deadline:
            raise AssertionError("the wall clock did not move on within 5 s")
        time.sleep(0.01)


def check_live(case: Case, live: dict[str, dict[str, Any]]) -> None:
    for sid, expected in case.live.items():
        assert sid in live, f"{case.id}: no service {sid} (services: {sorted(live)})"
        for name, want in expected.items():
            have = live[sid].get(name, "<missing>")
            ok = want(have) if callable(want) else have == want
            assert ok, f"{case.id}: live {sid}.{name} is {have!r}, expected {want!r}"


def move_app_away(base: Path) -> None:
    """The replay must not find the application folder where it was recorded."""
    n = 1
    while (base / f"app-moved-away-{n}").exists():
        n += 1
    shutil.move(str(base / "app"), str(base / f"app-moved-away-{n}"))


def run_case(case: Case, base: Path) -> None:
    """Record ``case`` and check its outcome; AssertionError says what went wrong."""
    started = time.time()
    recorded = record_fresh(case, base) if case.recorded_after else record(case, base)
    if case.outcome == "refused":
        assert recorded.refusal is not None, (
            f"{case.id}: expected a DeterminismError naming {case.phrase!r}; nothing was "
            f"refused (results: {recorded.results!r}, state: {recorded.live!r})")
        assert case.phrase in _flat(recorded.refusal), (
            f"{case.id}: the refusal does not name {case.phrase!r}:\n{recorded.refusal}")
    else:
        assert recorded.refusal is None, f"{case.id}: refused:\n{recorded.refusal}"
        check_live(case, recorded.live)
    if not recorded.journals:
        return  # refused at the build: no journal was written
    move_app_away(base)
    if case.tick:
        wait_for_next_second(started + 1)
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    replayed = replay_journals(recorded.journals, replay_env(case.env, base), elsewhere)
    problems = []
    for sid, result in replayed.items():
        if case.outcome == "detected" and sid == case.where:
            text = _flat(result.stderr)
            if result.returncode != 2 or "replay diverged" not in text:
                problems.append(f"{sid}: expected a divergence naming {case.phrase!r}; "
                                + ("it replayed to " + json.dumps(result.state)
                                   if result.returncode == 0 else result.describe()))
            elif case.phrase not in text:
                problems.append(f"{sid}: the divergence does not name {case.phrase!r}: "
                                + result.stderr[-2000:])
            continue
        if result.returncode != 0:
            problems.append(f"{sid}: the replay failed: {result.describe()}")
        elif result.state != recorded.live[sid]:
            problems.append(f"{sid}: replayed state differs:\n  live     {recorded.live[sid]!r}"
                            f"\n  replayed {result.state!r}")
    assert not problems, f"{case.id}:\n" + "\n".join(problems)


def run_case_under_up(case: Case, base: Path) -> None:
    """The case recorded here, then built by `distdev build` (from the app folder) and run by
    `distdev up` from another working folder with the app folder moved away: the calls must
    answer as they did here, and the runtime journals replay to the state they did here."""
    from support.engines import running

    here = record(case, base)  # the app at base/app, as the build below sees it
    assert here.refusal is None, here.refusal
    move_app_away(base)
    app_dir = write_files(base / "app", case.files)
    built = run_distdev("build", app_dir / "app.py", "-o", base / "up-out", cwd=app_dir)
    assert built.returncode == 0, built.stdout + built.stderr
    move_app_away(base)
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    saved = os.getcwd()
    os.chdir(elsewhere)
    try:
        with running(base / "up-out", base / "up-state") as deployment:
            results = [deployment.call(c.service, c.export, *c.args) for c in case.calls]
            journals = {sid: deployment.journal(sid) for sid in deployment.info.services}
    finally:
        os.chdir(saved)
    assert normal(results) == normal(here.results), (
        f"{case.id}: under `distdev up` the calls answered {results!r}, here {here.results!r}")
    replayed = replay_journals(journals, replay_env(case.env, base), elsewhere)
    for sid, result in replayed.items():
        assert result.returncode == 0, result.describe()
        assert result.state == here.live[sid], (sid, result.state, here.live[sid])
