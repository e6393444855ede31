"""Interleaving a service's calls (``host.process(interleave=True)``): the gate lets another call
run while one waits in a call-out, the journal records the schedule, and every replay follows
it — ``distdev replay``, a restart under ``up``, and code that parts from it is a divergence.

The application (tests/apps/interleaving) holds a call of the root inside its child until the
test opens a gate (a file); nothing here sleeps: each step waits for what it asserts."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from support import run_distdev, write_files
from support.dev import DevServer
from support.engines import TESTS, LocalDeployment, running, wait_until

import distdev
from distdev import ReplayDivergenceError
from distdev.engines._restore import DedupTable, StillRunning
from distdev.journal import (
    FORMAT_VERSION,
    TOP_LEVEL,
    CallIn,
    CallOut,
    ResultIn,
    Return,
    Schedule,
    Switch,
    read_journal,
)
from distdev.replayer._strands import threaded_calls
from distdev.service import CallGate, CallGateReference, StopReplay

INTERLEAVING = TESTS / "apps" / "interleaving"


def _in_thread(target: Any) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


@pytest.fixture(params=[CallGate, CallGateReference], ids=["c", "reference"])
def gate_type(request: pytest.FixtureRequest) -> type[CallGate]:
    """The gate services use (in C where built) and its Python reference: the same rules."""
    gate: type[CallGate] = request.param
    return gate


# -- the gate --------------------------------------------------------------------------------


def test_interleaving_gate_lets_another_chain_in_while_one_waits_in_a_call_out(
        gate_type: type[CallGate]) -> None:
    gate, entered = gate_type(), threading.Event()
    gate.interleave()
    gate.enter("chain-a")
    gate.suspend()  # chain-a waits on another service

    def other() -> None:
        gate.enter("chain-b")
        entered.set()
        gate.exit()

    thread = _in_thread(other)
    assert entered.wait(10)
    thread.join(10)
    gate.resume()
    gate.exit()
    assert not gate.held()


def test_interleaving_gate_keeps_another_chain_out_while_a_call_runs(gate_type: type[CallGate]) -> None:
    gate, entered = gate_type(), threading.Event()
    gate.interleave()
    gate.enter("chain-a")  # running: no call-out, so no switch

    def other() -> None:
        gate.enter("chain-b")
        entered.set()
        gate.exit()

    thread = _in_thread(other)
    assert not entered.wait(0.3)  # a bound on waiting for something that must not happen
    gate.exit()
    assert entered.wait(10)
    thread.join(10)


def test_interleaving_gate_makes_a_returning_call_wait_for_the_running_one(gate_type: type[CallGate]) -> None:
    gate, resumed, b_inside, b_may_leave = (gate_type(), threading.Event(), threading.Event(),
                                            threading.Event())
    gate.interleave()
    gate.enter("chain-a")
    gate.suspend()

    def b() -> None:
        gate.enter("chain-b")
        b_inside.set()
        b_may_leave.wait(10)
        gate.exit()

    def a_resumes() -> None:
        gate.resume()  # its call-out answered while b runs
        resumed.set()

    b_thread = _in_thread(b)
    assert b_inside.wait(10)
    a_thread = _in_thread(a_resumes)
    assert not resumed.wait(0.3)
    b_may_leave.set()
    assert resumed.wait(10)
    a_thread.join(10)
    b_thread.join(10)
    gate.exit()


def test_a_gate_declared_interleaving_by_the_top_level_holding_it_is_left_free(
        gate_type: type[CallGate]) -> None:
    gate = gate_type()
    gate.enter("build")  # the top level runs, and calls host.process(interleave=True)
    gate.interleave()
    gate.exit()
    assert not gate.held()
    gate.enter("chain-a")  # a serial gate's chain lock would still be held: this would hang
    gate.exit()


# -- the schedule model ----------------------------------------------------------------------


def _call_in(seq: int) -> CallIn:
    return CallIn(seq, "", f"chain-{seq}", "f", [], {})


def test_schedule_names_the_call_that_resumes_after_a_nested_call_ends() -> None:
    schedule = Schedule()
    assert schedule.see(_call_in(1)) == 1
    assert schedule.see(_call_in(2)) == 2  # a re-entry while 1 waits
    assert schedule.see(Return(3, None)) == 2
    assert schedule.running == 1  # no switch needed: calls nest
    assert schedule.see(Return(4, None)) == 1
    assert schedule.running == TOP_LEVEL


def test_schedule_follows_a_switch_and_forgets_a_parent_that_ended() -> None:
    schedule = Schedule()
    for event in (_call_in(1), _call_in(2), Switch(3, 1), Return(4, None), Switch(5, 2)):
        schedule.see(event)
    assert schedule.running == 2
    assert schedule.see(Return(6, None)) == 2
    assert schedule.running is None  # 2 began inside 1, which had ended: nobody runs


def test_threaded_calls_are_those_whose_lifetime_holds_a_switch() -> None:
    events = [_call_in(1), _call_in(2), Return(3, None), Return(4, None),  # nested: no thread
              _call_in(5), _call_in(6), Switch(7, 5), Return(8, None), Switch(9, 6),
              Return(10, None)]
    assert threaded_calls(events) == {5, 6}
    assert threaded_calls(events[:4]) == set()
    assert threaded_calls(events[:7]) == {5, 6}  # open at the journal's end


def test_dedup_table_pairs_each_outcome_with_its_own_call_when_calls_interleave() -> None:
    x = CallIn(1, "client", "chain-x", "slow", ["x"], {}, 11)
    y = CallIn(3, "client", "chain-y", "slow", ["y"], {}, 12)
    events = [x, CallOut(2, "app/left", "wait_for", ["x"], {}),
              y, CallOut(4, "app/right", "wait_for", ["y"], {}),
              Switch(5, 1), ResultIn(6, "X"), Return(7, "X"),  # x ends first
              Switch(8, 3), ResultIn(9, "Y"), Return(10, "Y")]
    table = DedupTable.from_journal(types.SimpleNamespace(events=events))  # type: ignore[arg-type]
    assert table.get("client", 11, ["x"], {}) == (True, "X")
    assert table.get("client", 12, ["y"], {}) == (True, "Y")


def test_a_re_send_of_a_running_call_waits_for_its_end() -> None:
    """A call re-sent while its first delivery runs waits for that delivery's outcome (or, if
    it ended without one, runs afresh), and a deadline ends the wait; the many calls nobody
    re-sends never make what such a wait needs."""
    table = DedupTable()
    got: dict[int, Any] = {}

    def re_send(seq: int, deadline: float | None = None) -> threading.Thread:
        def claim() -> None:
            try:
                got[seq] = table.claim("client", seq, [seq], {}, deadline=deadline)
            except Exception as exc:
                got[seq] = exc
        return _in_thread(claim)

    def waiting(seq: int) -> bool:
        return table._entries[("client", seq)].waiters is not None

    assert table.claim("client", 1, [1], {}) is None  # the first delivery runs
    assert table._entries[("client", 1)].waiters is None
    threads = [re_send(1), re_send(1)]
    wait_until(lambda: waiting(1), 10, "the re-sends to wait")
    table.put("client", 1, [1], {}, True, "one")
    for thread in threads:
        thread.join(10)
    assert got[1] == (True, "one")
    assert table.claim("client", 1, [1], {}) == (True, "one")  # ended: no wait

    assert table.claim("client", 2, [2], {}) is None
    thread = re_send(2)
    wait_until(lambda: waiting(2), 10, "the re-send to wait")
    table.abandon("client", 2)  # the service stopped inside it: the re-send runs it
    thread.join(10)
    assert got[2] is None
    assert table._entries[("client", 2)].ended is False  # claimed by the re-send now

    assert table.claim("client", 3, [3], {}) is None
    thread = re_send(3, deadline=0.0)  # its caller stopped waiting long ago
    thread.join(10)
    assert isinstance(got[3], StillRunning)


# -- real processes under `distdev up` ----------------------------------------------------------


def _build(tmp_path: Path, interleave: bool) -> Path:
    shutil.copytree(INTERLEAVING, tmp_path / "src")
    result = run_distdev("build", tmp_path / "src" / "app.py", "-o", tmp_path / "out",
                         env={"ROOT_INTERLEAVE": "1" if interleave else "0"})
    assert result.returncode == 0, result.stdout + result.stderr
    return tmp_path / "out"


class _Held:
    """A call of ``root.slow`` made on a thread of its own, held inside a child."""

    def __init__(self, deployment: LocalDeployment, gates: Path, name: str,
                 via: str = "left", export: str = "slow") -> None:
        self.gates, self.name = gates, name
        self.result: list[Any] = []
        self.error: list[BaseException] = []
        args = (str(gates), name, via) if export == "slow" else (str(gates), name)

        def call() -> None:
            try:
                self.result.append(deployment.call("app", export, *args))
            except (OSError, EOFError) as exc:  # the root was killed while it waited
                self.error.append(exc)

        self.thread = _in_thread(call)
        wait_until(lambda: (gates / f"{name}.waiting").exists(), 30,
                   f"slow({name!r}) to wait inside the child")

    def release(self) -> Any:
        (self.gates / self.name).touch()
        self.thread.join(60)
        assert self.result, f"slow({self.name!r}) did not return"
        return self.result[0]


def _replayed_state(journal: Path) -> dict[str, Any]:
    result = run_distdev("replay", journal, "--json")
    assert result.returncode == 0, result.stderr
    state: dict[str, Any] = json.loads(result.stdout)["state"]
    return state


@pytest.mark.slow
def test_interleaving_root_answers_a_second_request_while_the_first_waits_and_replays_it(
    tmp_path: Path,
) -> None:
    out = _build(tmp_path, interleave=True)
    gates = tmp_path / "gates"
    gates.mkdir()
    with running(out, tmp_path / "state") as deployment:
        a = _Held(deployment, gates, "a")
        b = _Held(deployment, gates, "b", "right")
        assert deployment.call("app", "fast", "x") == 3  # ran while both wait
        assert a.thread.is_alive() and b.thread.is_alive()
        assert a.release() == "A"
        assert deployment.call("app", "fast", "y") == 5
        assert b.release() == "B"
        history = deployment.call("app", "history")
        assert history == ["start a", "start b", "fast x", "end a", "fast y", "end b"]

        journal = deployment.journal("app")
        kinds = [type(e) for e in read_journal(journal).events]
        assert Switch in kinds
        assert _replayed_state(journal)["log"] == history

        deployment.kill_and_wait_for_restart("app")  # restore replays the interleaved journal
        assert deployment.call("app", "history") == history
        assert deployment.call("app", "fast", "z") == 7


@pytest.mark.slow
def test_many_clients_at_once_leave_a_journal_that_replays_and_restores_exactly(
    tmp_path: Path,
) -> None:
    out = _build(tmp_path, interleave=True)
    with running(out, tmp_path / "state") as deployment:
        failures: list[BaseException] = []

        def client(k: int) -> None:
            connection = deployment.connect("app", f"client-{k}")
            try:
                for i in range(20):
                    if i % 3 == 2:
                        connection.call(f"client-{k}", f"c{k}-{i}", None, "fast", [f"{k}.{i}"],
                                        {})
                    else:
                        connection.call(f"client-{k}", f"c{k}-{i}", None, "relay",
                                        [f"{k}.{i}", "left" if (k + i) % 2 else "right"], {})
            except BaseException as exc:
                failures.append(exc)
            finally:
                connection.close()

        threads = [_in_thread(lambda k=k: client(k)) for k in range(8)]
        for thread in threads:
            thread.join(120)
        assert failures == []
        history = deployment.call("app", "history")
        assert len(history) == 8 * (6 + 14 * 2)  # 6 fast and 14 relays each: every record once
        journal = deployment.journal("app")
        assert _replayed_state(journal)["log"] == history
        deployment.kill_and_wait_for_restart("app")
        assert deployment.call("app", "history") == history


@pytest.mark.slow
def test_a_restart_inside_interleaved_calls_keeps_those_answered_and_resumes_the_open_ones(
    tmp_path: Path,
) -> None:
    """Killed while two calls wait in the children, after others were answered: nothing
    answered is cut. The restore replays to the journal's end and the open calls go on live,
    each sending its call-out again under its id, which the child, still running it, answers
    once; the journal then replays, and restores, to the same state."""
    out = _build(tmp_path, interleave=True)
    gates = tmp_path / "gates"
    gates.mkdir()
    with running(out, tmp_path / "state") as deployment:
        deployment.call("app", "fast", "before")
        a = _Held(deployment, gates, "a")
        assert deployment.call("app", "fast", "x") == 3  # answered while a waits
        b = _Held(deployment, gates, "b", "right")
        assert deployment.call("app", "fast", "z") == 5  # and while both wait: b is durable
        deployment.kill_and_wait_for_restart("app")
        a.thread.join(60)
        b.thread.join(60)
        assert a.error and b.error  # their callers were told the connection broke
        log = deployment.wait_for_log("app", "the calls still open go on from where they stood")
        assert "cut it back" not in log
        assert deployment.call("app", "history") == ["fast before", "start a", "fast x",
                                                     "start b", "fast z"]
        (gates / "b").touch()  # the child ends the call it ran; the re-send gets that outcome
        wait_until(lambda: deployment.call("app", "history")[-1] == "end b", 30,
                   "slow(b) to go on to its end")
        assert deployment.call("app", "fast", "y") == 7  # between the two
        (gates / "a").touch()
        wait_until(lambda: deployment.call("app", "history")[-1] == "end a", 30,
                   "slow(a) to go on to its end")
        assert deployment.call("app/left", "seen_so_far") == ["a"]  # each ran once
        assert deployment.call("app/right", "seen_so_far") == ["b"]
        history = ["fast before", "start a", "fast x", "start b", "fast z", "end b", "fast y",
                   "end a"]
        assert deployment.call("app", "history") == history
        wait_until(lambda: deployment.log("app").count("went on to its end") == 2, 30,
                   "both resumed calls to be logged")
        journal = deployment.journal("app")
        assert _replayed_state(journal)["log"] == history
        deployment.kill_and_wait_for_restart("app")
        assert deployment.call("app", "history") == history


@pytest.mark.slow
def test_a_root_that_does_not_interleave_still_serializes_and_writes_no_switch(
    tmp_path: Path,
) -> None:
    out = _build(tmp_path, interleave=False)
    gates = tmp_path / "gates"
    gates.mkdir()
    with running(out, tmp_path / "state") as deployment:
        a = _Held(deployment, gates, "a")
        fast: list[int] = []
        thread = _in_thread(lambda: fast.append(deployment.call("app", "fast", "x")))
        thread.join(0.5)  # a bound on waiting for something that must not happen
        assert fast == []
        assert a.release() == "A"
        thread.join(60)
        assert fast == [3]
        journal = deployment.journal("app")
        assert Switch not in [type(e) for e in read_journal(journal).events]
        assert read_journal(journal).header.version == FORMAT_VERSION


# -- replaying an interleaved journal with other code --------------------------------------------


def _interleaved_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The root's journal, in one process (the dev host's way: calls run on the caller's
    thread), of: slow('a') and slow('b') wait, fast('x') runs and ends, slow('a') resumes and
    ends, then slow('b') does: calls that end out of nesting order."""
    app = distdev.App(INTERLEAVING / "app.py", out=tmp_path / "out", state=tmp_path / "state")
    gates = tmp_path / "gates"
    gates.mkdir()
    monkeypatch.setenv("ROOT_INTERLEAVE", "1")
    try:
        app.start()
        root = app.service("app")
        results: dict[str, str] = {}
        threads = {}
        for name, via in (("a", "left"), ("b", "right")):
            threads[name] = _in_thread(
                lambda name=name, via=via: results.__setitem__(
                    name, root.slow(str(gates), name, via)))
            wait_until(lambda name=name: (gates / f"{name}.waiting").exists(), 30,
                       f"slow({name!r}) to wait")
        assert root.fast("x") == 3
        for name in ("a", "b"):
            (gates / name).touch()
            threads[name].join(60)
        assert results == {"a": "A", "b": "B"}
        journal = app.journal("app")
    finally:
        app.close()
    return Path(journal)


CHANGES = {
    "fast calls out": ("    log.append(f\"fast {name}\")\n",
                       "    log.append(f\"fast {name}\")\n    children['left'].wait_for('', 'x')\n",
                       Return, "called app/left.wait_for"),
    "slow records after its call-out": ("    log.append(f\"start {name}\")\n", "",
                                        Return, "returned 1"),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_other_code_that_parts_from_the_recorded_schedule_diverges_at_that_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str,
) -> None:
    journal = _interleaved_journal(tmp_path, monkeypatch)
    events = read_journal(journal).events
    fast_in = next(e for e in events if type(e) is CallIn and e.export == "fast")
    old, new, kind, doing = CHANGES[change]
    source = tmp_path / "changed"
    shutil.copytree(INTERLEAVING, source)
    text = (source / "app.py").read_text()
    assert old in text
    (source / "app.py").write_text(text.replace(old, new))
    with pytest.raises(ReplayDivergenceError) as caught:
        distdev.replay(journal, source=source)
    divergence = caught.value
    expected = next(e for e in events if e.seq > fast_in.seq and type(e) is kind)
    assert divergence.seq == expected.seq, str(divergence)
    assert doing in str(divergence)


def test_a_switch_to_a_call_that_is_not_waiting_is_a_divergence_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    journal = _interleaved_journal(tmp_path, monkeypatch)
    contents = read_journal(journal)
    switch = next(e for e in contents.events if type(e) is Switch)
    fast_in = next(e for e in contents.events if type(e) is CallIn and e.export == "fast")
    bad = [Switch(e.seq, fast_in.seq) if e is switch else e for e in contents.events]
    with pytest.raises(ReplayDivergenceError) as caught:
        distdev.replay(dataclasses.replace(contents, events=bad))
    assert caught.value.seq == switch.seq
    assert f"had no call {fast_in.seq} waiting" in str(caught.value)


def test_dev_host_interleaves_the_same_way(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    journal = _interleaved_journal(tmp_path, monkeypatch)  # in one process: calls on the caller's thread
    kinds = [type(e).__name__ for e in read_journal(journal).events]
    assert "Switch" in kinds
    assert distdev.replay(journal).state()["log"] == ["start a", "start b", "fast x", "end a",
                                                      "end b"]


def test_an_interleaved_call_whose_call_out_fails_replays_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = distdev.App(INTERLEAVING / "app.py", out=tmp_path / "out", state=tmp_path / "state")
    gates = tmp_path / "gates"
    gates.mkdir()
    monkeypatch.setenv("ROOT_INTERLEAVE", "1")
    outcomes: dict[str, Any] = {}

    def slow(name: str, via: str) -> None:
        try:
            outcomes[name] = root.slow(str(gates), name, via)
        except ValueError as exc:
            outcomes[name] = str(exc)

    try:
        app.start()
        root = app.service("app")
        threads = {}
        for name, via in (("a", "left"), ("b", "right")):
            threads[name] = _in_thread(lambda name=name, via=via: slow(name, via))
            wait_until(lambda name=name: (gates / f"{name}.waiting").exists(), 30,
                       f"slow({name!r}) to wait")
        # a resumes first, with an error, while b waits; the gate appears with what it says
        # (written beside it, then renamed: the child must never read it half written)
        (gates / "a.tmp").write_text("fail")
        os.replace(gates / "a.tmp", gates / "a")
        threads["a"].join(60)
        (gates / "b").touch()
        threads["b"].join(60)
        journal = app.journal("app")
        live = app.state("app")
    finally:
        app.close()
    assert outcomes == {"a": "the gate of a says fail", "b": "B"}
    kinds = [type(e).__name__ for e in read_journal(journal).events]
    assert kinds.count("Switch") == 2 and "ErrorIn" in kinds and "Raise" in kinds
    assert _replayed_state(Path(journal)) == live


def test_distdev_dev_answers_a_second_request_while_the_first_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    shutil.copytree(INTERLEAVING, tmp_path / "src")
    gates = tmp_path / "gates"
    gates.mkdir()
    monkeypatch.setenv("ROOT_INTERLEAVE", "1")
    server = DevServer(tmp_path / "src" / "app.py", tmp_path / "work")
    try:
        answers: list[tuple[int, Any]] = []
        held = _in_thread(lambda: answers.append(
            server.post("slow", {"gates": str(gates), "name": "a"})))
        wait_until(lambda: (gates / "a.waiting").exists(), 30, "slow('a') to wait")
        assert server.post("fast", {"name": "x"}) == (200, 2)  # one process, the same rule
        (gates / "a").touch()
        held.join(60)
        assert answers == [(200, "A")]
    finally:
        code, output = server.stop()
    assert code == 0, output


def test_a_service_file_declares_interleaving_in_the_manifest(tmp_path: Path) -> None:
    write_files(tmp_path / "app", {"app.py": """
        from distdev import host
        host.process(interleave=True)
        def ping() -> int:
            return 1
        """})
    out = tmp_path / "out"
    result = run_distdev("build", tmp_path / "app" / "app.py", "-o", out)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["services"][0]["host"]["interleave"] is True


def test_host_process_refuses_an_interleave_that_is_not_a_bool(tmp_path: Path) -> None:
    write_files(tmp_path / "app", {"app.py": """
        from distdev import host
        host.process(interleave="yes")
        """})
    result = run_distdev("build", tmp_path / "app" / "app.py", "-o", tmp_path / "out")
    assert result.returncode != 0
    assert "interleave=...) needs True or False" in result.stdout + result.stderr


def test_a_replay_stopped_anywhere_in_interleaved_calls_unwinds_them_and_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    journal = _interleaved_journal(tmp_path, monkeypatch)
    events = read_journal(journal).events
    threads_before = threading.active_count()
    for event in events[1:]:
        restored = distdev.replay(journal, until=event.seq)  # as the debugger's stops do
        assert restored.events <= event.seq
    assert threading.active_count() == threads_before  # no replay thread left behind

    def stop_at_the_first_switch(service: Any, event: Any) -> None:
        if type(event) is Switch:
            raise StopReplay()

    restored = distdev.replay(journal, before_event=stop_at_the_first_switch)
    assert restored.stopped_inside_call is False  # stopped by the caller, not by the journal
    assert restored.state()["log"][:3] == ["start a", "start b", "fast x"]
