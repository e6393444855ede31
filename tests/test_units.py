"""The runtime's pure logic on its own: the call gate, the replaying tape, the export rule and
service paths, without processes or sockets around them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from support import write_files

from distdev import ReplayDivergenceError, rules
from distdev.journal import CallOut, Effect, Header, Output, ResultIn
from distdev.replayer import Replayer
from distdev.service import CallGate, CallGateReference, StopReplay
from distdev.testing import load_app

# -- the call gate ---------------------------------------------------------------------------


def _in_thread(target: Any) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


@pytest.fixture(params=[CallGate, CallGateReference], ids=["c", "reference"])
def gate_type(request: pytest.FixtureRequest) -> type[CallGate]:
    """The gate services use (in C where built) and its Python reference: the same rules."""
    gate: type[CallGate] = request.param
    return gate


def test_call_gate_keeps_a_second_chain_out_until_the_first_leaves(gate_type: type[CallGate]) -> None:
    gate, entered = gate_type(), threading.Event()
    gate.enter("chain-a")

    def other() -> None:
        gate.enter("chain-b")
        entered.set()
        gate.exit()

    thread = _in_thread(other)
    assert not entered.wait(0.3)  # a bound on waiting for something that must not happen
    gate.exit()
    assert entered.wait(10)
    thread.join(10)


def test_call_gate_lets_its_chain_back_in_only_while_it_waits_in_a_call_out(
        gate_type: type[CallGate]) -> None:
    gate, back_in = gate_type(), threading.Event()
    gate.enter("chain-a")
    gate.suspend()  # chain-a calls out; the callee calls back on chain-a (A -> B -> A)

    def reentry() -> None:
        gate.enter("chain-a")
        back_in.set()
        gate.exit()

    thread = _in_thread(reentry)
    assert back_in.wait(10)
    thread.join(10)
    gate.resume()
    assert gate.held()
    gate.exit()
    assert not gate.held()


def test_call_gate_makes_a_same_chain_call_wait_while_the_chain_runs(gate_type: type[CallGate]) -> None:
    gate, back_in = gate_type(), threading.Event()
    gate.enter("chain-a")  # running, not waiting in a call out

    def same_chain() -> None:
        gate.enter("chain-a")
        back_in.set()
        gate.exit()

    thread = _in_thread(same_chain)
    assert not back_in.wait(0.3)
    gate.exit()
    assert back_in.wait(10)
    thread.join(10)


@pytest.mark.parametrize("interleaving", [False, True], ids=["nested", "interleaving"])
def test_call_gate_enters_if_free_only_where_no_call_is_inside_or_waiting_and_never_waits(
        gate_type: type[CallGate], interleaving: bool) -> None:
    """What a checkpoint after an answer enters by: never past a call inside, running or
    waiting in a call out (whose chain may come back through the very thread asking), and
    holding out every call while it is in."""
    gate = gate_type()
    if interleaving:
        gate.interleave()
    gate.enter("chain-a")
    assert not gate.enter_if_free()  # running
    gate.suspend()
    assert not gate.enter_if_free()  # waiting in a call out: its chain may come back
    gate.resume()
    gate.exit()
    assert gate.enter_if_free() and gate.held() and gate.alone()
    entered = threading.Event()

    def call() -> None:
        gate.enter("chain-b")
        entered.set()
        gate.exit()

    thread = _in_thread(call)
    assert not entered.wait(0.3)  # a bound on waiting for something that must not happen
    assert not gate.enter_if_free()
    gate.exit()
    assert entered.wait(10)
    thread.join(10)
    assert not gate.held() and gate.enter_if_free()
    gate.exit()
    gate.enter("chain-c")  # the gate works as before once the one that entered has left
    gate.exit()
    assert not gate.held()


# -- the replaying tape ----------------------------------------------------------------------


class _Service:
    """What the tape asks of a service: its id and where its code stands."""

    id = "app/clock"

    def code_location(self) -> str:
        return "clock.py:3 (now = time.time())"


def _header() -> Header:
    return Header(0, "distdev-journal", 1, "app/clock", "0.1.0", "3.11", "0", "/app", "clock.py",
                  [])


def _tape(*events: Any) -> Replayer:
    return Replayer(_Service(), [_header(), *events], 1, None)  # type: ignore[arg-type]


def test_replayer_answers_an_effect_from_the_journal_and_never_performs_it() -> None:
    tape = _tape(Effect(1, "time.time", [], 12.5))
    assert tape.effect("time.time", [], lambda: pytest.fail("performed for real")) == 12.5
    assert tape.at_end


def test_replayer_skips_output_the_code_need_not_reproduce() -> None:
    tape = _tape(Output(1, "stdout", "hello\n"), Effect(2, "random.seed", [], 7))
    assert tape.effect("random.seed", [], lambda: 0) == 7


def test_replayer_reports_the_first_difference_and_keeps_reporting_it() -> None:
    tape = _tape(Effect(1, "time.time", [], 12.5), Effect(2, "uuid.uuid4", [], "x"))
    with pytest.raises(ReplayDivergenceError) as raised:
        tape.effect("time.monotonic", [], lambda: 0.0)
    message = str(raised.value)
    assert "event 1" in message and "time.time" in message and "time.monotonic" in message
    assert "clock.py:3" in message
    with pytest.raises(ReplayDivergenceError):
        tape.effect("uuid.uuid4", [], lambda: "y")  # code that caught it gets it again


def test_replayer_checks_a_call_out_and_answers_with_the_recorded_result() -> None:
    tape = _tape(CallOut(1, "app/bank", "balance", ["ann"], {}), ResultIn(2, 40))
    assert tape.call_out("app/bank", "balance", ["ann"], {},
                         lambda _: pytest.fail("called for real")) == 40
    with pytest.raises(StopReplay):
        tape.effect("time.time", [], lambda: 0.0)  # past the journal's end: the replay stops


def test_replayer_refuses_a_call_out_with_other_arguments() -> None:
    tape = _tape(CallOut(1, "app/bank", "balance", ["ann"], {}), ResultIn(2, 40))
    with pytest.raises(ReplayDivergenceError, match=r"balance\('bob'\)"):
        tape.call_out("app/bank", "balance", ["bob"], {}, lambda _: 0)


# -- exports and paths -----------------------------------------------------------------------


def test_export_rule_takes_public_defs_decorated_or_not_and_leaves_effects_out() -> None:
    candidates = [rules.ExportCandidate("charge", True), rules.ExportCandidate("_fee", True),
                  rules.ExportCandidate("rate", True),  # @lru_cache def rate
                  rules.ExportCandidate("helper", False),  # imported, or an alias
                  rules.ExportCandidate("audit", True, effect=True)]
    assert rules.export_names(candidates, None) == ["charge", "rate"]
    assert rules.export_names(candidates, ["helper", "_fee"]) == ["_fee", "helper"]


def test_export_rule_applied_to_a_live_module(tmp_path: Path) -> None:
    root = write_files(tmp_path / "app", {
        "app.py": """
            import functools
            from distdev import effect, import_service

            from helpers import imported

            def plain() -> int:
                return 1

            @functools.lru_cache(maxsize=None)
            def cached(n: int) -> int:
                return n * 2

            def _private() -> int:
                return 3

            alias = functools.lru_cache(_private)

            @effect
            def audit() -> int:
                return 4
        """,
        "helpers.py": "def imported() -> int:\n    return 5\n",
    })
    app = load_app(root / "app.py", tmp_path / "out", tmp_path / "state")
    try:
        assert sorted(app.services["app"].exports()) == ["cached", "plain"]
        assert app.service("app").cached(21) == 42
    finally:
        app.close()


@pytest.mark.parametrize("importer, path, expected", [
    ("app.py", "./billing.py", "billing.py"),
    ("orders/orders.py", "../billing/billing.py", "billing/billing.py"),
    ("orders/orders.py", "./items/item.py", "orders/items/item.py"),
])
def test_service_path_is_relative_to_the_importing_file(importer: str, path: str,
                                                       expected: str) -> None:
    assert rules.resolve_service_path(importer, path) == expected


@pytest.mark.parametrize("importer, path, kind", [
    ("app.py", "../elsewhere.py", "outside"),
    ("orders/orders.py", "../../x.py", "outside"),
    ("app.py", "/abs/x.py", "absolute"),
    ("app.py", "./billing.txt", "not-py"),
    ("app.py", "", "empty"),
])
def test_service_path_refuses_what_cannot_name_a_service_file(importer: str, path: str,
                                                              kind: str) -> None:
    with pytest.raises(rules.ServicePathError) as raised:
        rules.resolve_service_path(importer, path)
    assert raised.value.kind == kind


def test_importing_distdev_changes_nothing_process_wide_until_a_service_exists(
        tmp_path: Path) -> None:
    import subprocess
    import sys

    app = write_files(tmp_path / "app", {"app.py": "x = 1\n"})
    probe = (
        "import logging, sys\n"
        "original = logging.Logger.handle\n"
        "import distdev, distdev.tools, distdev.journal, distdev.rules\n"
        "from distdev.compartment import _guard\n"
        "assert logging.Logger.handle is original, 'logging patched at import'\n"
        "assert not _guard._installed, 'audit hook installed at import'\n"
        "from distdev.testing import load_app\n"
        f"load_app({str(app / 'app.py')!r}).close()\n"
        "assert _guard._installed and logging.Logger.handle is not original\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.stdout.strip() == "ok", result.stderr
