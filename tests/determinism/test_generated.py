"""The differential generator: random multi-service programs (generated.py), each recorded in
this process and every journal of it replayed in another — a fresh process started under
another PYTHONHASHSEED (it re-executes itself under the journals' own, as `distdev replay`
does), another TZ and HOME, changed environment variables, from an empty working folder, with
the application folder moved away — whose replayed states must equal the live ones.

200 programs in the normal suite, the same ones every run (derandomized); more with
``DISTDEV_FUZZ_EXAMPLES=5000``. A failure is shrunk and printed as a corpus case.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from determinism import generated
from determinism.generated import Program, coverage_programs, programs
from determinism.harness import REPLAY_SEED, normal, process_kept, replay_env
from hypothesis import HealthCheck, Phase, example, given, note, settings
from support import write_files

from distdev._version import recorded_hash_seed
from distdev.testing import load_app

EXAMPLES = int(os.environ.get("DISTDEV_FUZZ_EXAMPLES", "200"))
SERVER = Path(__file__).with_name("replay_server.py")


class ReplayServer:
    """replay_server.py, in the background: one request (a program's journals) at a time."""

    def __init__(self, base: Path) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        elsewhere = base / "elsewhere"
        elsewhere.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in generated.ENV}
        env.update(replay_env(generated.ENV, base))
        self.process = subprocess.Popen(
            [sys.executable, "-P", str(SERVER), recorded_hash_seed() or "random"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, cwd=elsewhere, env=env)
        self.hello = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the replay server exited ({self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def replay(self, journals: dict[str, Path]) -> dict[str, dict[str, Any]]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"journals": {k: str(v) for k, v in
                                                          journals.items()}}) + "\n")
        self.process.stdin.flush()
        results: dict[str, dict[str, Any]] = self._answer()["results"]
        return results

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayServer]:
    server = ReplayServer(tmp_path_factory.mktemp("replay-server"))
    yield server
    server.close()


def test_the_replay_server_runs_fresh_under_another_seed_then_the_journals_own(
        server: ReplayServer) -> None:
    assert server.hello["started_under"] == REPLAY_SEED
    assert server.hello["replaying_under"] == (recorded_hash_seed() or None)
    assert recorded_hash_seed() != REPLAY_SEED


def test_the_vocabulary_covers_every_journaled_kind_of_the_table() -> None:
    import importlib

    from distdev.compartment._surface import SURFACE, Journaled

    missing = []
    for module_name, rules in SURFACE.items():
        module = importlib.import_module(module_name)
        for name, rule in rules().items():
            kind = f"{module_name}.{name}"
            if (isinstance(rule, Journaled) and callable(getattr(module, name, None))
                    and kind not in generated.JOURNALED and kind not in generated.SKIPPED):
                missing.append(kind)
    assert missing == []


def record_program(program: Program, base: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """Record ``program`` in this process, from its app folder; (live states, journals)."""
    app_dir = write_files(base / "app", program.files())
    saved_cwd = os.getcwd()
    saved_env = {k: os.environ.get(k) for k in generated.ENV}
    # GC off while recording: hypothesis measures collections with a gc callback that reads
    # time.perf_counter, and distdev journals it as the service's when a collection happens
    # in service code (corpus: "a host's gc callback").
    gc.collect()
    gc.disable()
    with process_kept():
        os.environ.update(generated.ENV)
        os.chdir(app_dir)
        try:
            app = load_app(app_dir / "app.py", out=base / "build", state=base / "state")
            try:
                for service, export, arg in program.calls:
                    try:
                        getattr(app.service(f"app/{service}"), export)(arg)
                    except Exception:
                        pass  # an export's exception is the program's behaviour
                live = {sid: normal(app.state(sid)) for sid in app.services}
                journals = {sid: app.journal(sid) for sid in app.services}
            finally:
                app.close()
        finally:
            gc.enable()
            os.chdir(saved_cwd)
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    shutil.move(str(app_dir), str(base / "app-moved-away"))
    return live, journals


# No explain phase: its tracer (sys.settrace) runs above the service's frames, and distdev takes
# the os.lstat of its Path.resolve for the service's (corpus: "a tool's trace function").
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck), print_blob=False,
          phases=[Phase.explicit, Phase.generate, Phase.shrink])
@given(program=programs())
@pytest.mark.slow
def test_generated_programs_replay_to_their_live_state(server: ReplayServer,
                                                       program: Program) -> None:
    note(f"the program, as a corpus case:{program!r}")
    base = Path(tempfile.mkdtemp(prefix="distdev-fuzz-", dir=server.base))
    try:
        live, journals = record_program(program, base)
        replayed = server.replay(journals)
        problems = []
        for sid, result in replayed.items():
            if "error" in result:
                problems.append(f"{sid}: {result['error']}: {result['message']}")
            elif result["state"] != live[sid]:
                problems.append(f"{sid}: replayed state differs:\n  live     {live[sid]!r}\n"
                                f"  replayed {result['state']!r}")
        assert not problems, "\n".join(problems)
    finally:
        shutil.rmtree(base, ignore_errors=True)


for _program in coverage_programs():  # every kind of the vocabulary, every run
    test_generated_programs_replay_to_their_live_state = example(program=_program)(
        test_generated_programs_replay_to_their_live_state)


def _reentrant(program: Program) -> bool:
    """Whether some chain of calls leaves a service and comes back into it (A -> B -> A)."""
    calls = {e.number: {int(stmt.code.split("lambda: ")[1].split("(")[0].rsplit("f", 1)[1])
                        for stmt in e.body if stmt.code.startswith("_c('s")
                        or stmt.code.startswith("_c('f")}
             for e in program.exports}
    owner = {e.number: e.service for e in program.exports}

    def back_home(start: int) -> bool:
        todo = [(n, owner[n] != owner[start]) for n in calls[start]]
        seen = set()
        while todo:
            number, left = todo.pop()
            if left and owner[number] == owner[start]:
                return True
            if (number, left) not in seen:
                seen.add((number, left))
                todo += [(n, left or owner[n] != owner[number]) for n in calls[number]]
        return False

    return any(back_home(e.number) for e in program.exports)


def test_the_generated_programs_reach_every_part_of_the_vocabulary() -> None:
    """The programs the differential test runs (200 draws of the same strategy) nest calls,
    re-enter services, cross membranes with refused values and raise across them."""
    drawn: list[Program] = []

    @settings(max_examples=200, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(program=programs())
    def draw(program: Program) -> None:
        drawn.append(program)

    draw()
    code = "\n".join("\n".join(p.files().values()) for p in drawn)
    covering = "\n".join("\n".join(p.files().values()) for p in coverage_programs())
    missing = [k for k in generated.vocabulary() if f"_e({k!r}," not in covering]
    assert missing == []
    assert all(map(_reentrant, coverage_programs()))
    assert sum(map(_reentrant, drawn)) >= 10
    for feature in ["_c('refused arg'", "return object()", "raise Oops(x)", "_refused(",
                    "fail_with_status(", "s.add(", "box.n += 1", "d.setdefault('nest'"]:
        assert feature in code, feature
    assert sum(len(p.services) > 1 for p in drawn) >= 100
