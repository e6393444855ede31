"""Observing never acts: breakpoint conditions, hit conditions and logpoints run as the console
does (effects not journaled, calls to other services refused), and changing a variable from
the debugger is refused. Every journal recorded under the adapter then replays exactly, in
another process (``distdev replay``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dap.dap_client import TINYSHOP, DapClient, marker

import distdev

Start = Callable[..., DapClient]
APP, ORDERS, BILLING = (TINYSHOP / f for f in ("app.py", "orders.py", "billing.py"))
SERVICES = ("app", "app/orders", "app/billing", "app/billing/ledger")
CLOCK = "__import__('time').time()"


def assert_every_journal_replays(out: Path) -> dict[str, dict]:
    """Each service's journal: no clock read of the debugger's in it, and ``distdev replay``
    restores it exactly; returns each service's replayed state."""
    cli = Path(sys.executable).with_name("distdev")
    states = {}
    for service in SERVICES:
        journal = out / "services" / service / "journal.cbor"
        effects = [e.effect for e in distdev.read_journal(journal).events
                   if type(e).__name__ == "Effect"]
        assert not [e for e in effects if e.startswith(("time.", "datetime."))], (service, effects)
        replayed = subprocess.run([str(cli), "replay", "--json", str(journal)],
                                  capture_output=True, text=True, timeout=60)
        assert replayed.returncode == 0, (service, replayed.stdout, replayed.stderr)
        states[service] = json.loads(replayed.stdout)["state"]
    return states


def built(client: DapClient) -> None:
    """The journals are complete once the build is: wait for it before ending the session."""
    client.wait_event("output", lambda body: "built " in str(body.get("output", "")))


def test_conditions_hit_conditions_and_logpoints_observe_and_journals_replay(
    adapter: Start, tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    client = adapter()
    client.initialize()
    launched = client.send_request("launch", {
        "type": "distdev", "request": "launch", "app": str(APP), "out": str(out),
        "state": str(tmp_path / "state")})
    client.wait_event("initialized")
    client.request("setBreakpoints", {"source": {"path": str(ORDERS)}, "breakpoints": [
        {"line": marker(ORDERS, "orders-place-first"), "logMessage": f"clock read {{{CLOCK} > 0}}"},
        # A hit condition that calls another service: refused, so false (never stops).
        {"line": marker(ORDERS, "orders-call-charge"),
         "hitCondition": "_billing.charge('eve', 4) is None"},
        {"line": marker(ORDERS, "orders-after-charge"),
         "logMessage": "charged again: {_billing.charge('mallory', 2)}"},
    ]})
    client.request("setBreakpoints", {"source": {"path": str(BILLING)}, "breakpoints": [
        # A condition that calls another service: refused, so false; the error is shown.
        {"line": marker(BILLING, "billing-charge-first"),
         "condition": "ledger.record('eve', 1) is None"},
        {"line": marker(BILLING, "billing-call-record"),
         "condition": "__import__('datetime').datetime.now() is None"},  # false: no stop
        {"line": marker(BILLING, "billing-charge-return"), "hitCondition": f"{CLOCK} > 0"},
    ]})
    client.request("configurationDone")
    assert client.wait_response(launched).success

    # The refused condition is false, and says why; the clock hit condition holds; the
    # datetime condition does not.
    thread = client.wait_stopped()["threadId"]
    assert client.top(thread)["line"] == marker(BILLING, "billing-charge-return")
    client.wait_event("output", lambda body: "ledger.record('eve', 1)" in body.get("output", "")
                      and "refused" in body.get("output", ""))
    client.request("continue", {"threadId": thread})
    built(client)
    logged = "".join(client.output)
    assert "clock read True" in logged
    assert "calling app/billing.charge" in logged and "refused" in logged
    assert client.close() == 0

    states = assert_every_journal_replays(out)
    text = json.dumps(states)
    assert "eve" not in text and "mallory" not in text


def test_set_variable_is_refused_in_an_application_and_its_journals_replay(
    adapter: Start, tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    client = adapter()
    client.start({"app": str(APP), "out": str(out), "state": str(tmp_path / "state")},
                 {str(BILLING): [marker(BILLING, "billing-charge-return")]})
    assert client.capabilities.get("supportsSetVariable") is False
    thread = client.wait_stopped()["threadId"]
    frame = client.top(thread)["id"]
    scopes = client.request("scopes", {"frameId": frame}).body["scopes"]
    ref = next(s["variablesReference"] for s in scopes if s["name"].lower() == "locals")
    answer = client.request("setVariable", {"variablesReference": ref, "name": "amount",
                                            "value": "777"}, ok=False)
    assert not answer.success and "refused" in (answer.message or "")
    answer = client.request("setExpression", {"expression": "amount", "value": "777",
                                              "frameId": frame}, ok=False)
    assert not answer.success and "refused" in (answer.message or "")
    assert client.locals_of(frame)["amount"] == "1200"
    client.request("continue", {"threadId": thread})
    built(client)
    assert client.close() == 0
    assert_every_journal_replays(out)


def test_set_variable_in_a_replay_is_refused_and_step_back_still_works(
    adapter: Start, tmp_path: Path,
) -> None:
    app = distdev.App(APP, out=tmp_path / "out", state=tmp_path / "state")
    app.start().close()
    journal = tmp_path / "out" / "services" / "app" / "billing" / "journal.cbor"
    last = distdev.read_journal(journal).events[-1].seq
    client = adapter()
    client.start({"journal": str(journal), "stopAtEvent": last})
    thread = client.wait_stopped()["threadId"]
    frame = client.top(thread)["id"]
    scopes = client.request("scopes", {"frameId": frame}).body["scopes"]
    ref = next(s["variablesReference"] for s in scopes if s["name"].lower() == "globals")
    answer = client.request("setVariable", {"variablesReference": ref, "name": "charged",
                                            "value": "777"}, ok=False)
    assert not answer.success and "refused" in (answer.message or "")
    client.request("stepBack", {"threadId": thread})
    assert client.wait_stopped()["reason"] == "step"
    client.request("continue", {"threadId": thread})
    assert client.wait_stopped()["reason"] == "end of journal"
    assert client.globals_of(client.top(thread)["id"])["charged"] == "1200"
    client.request("continue", {"threadId": thread})
    exited = client.wait_event("exited")
    assert exited["exitCode"] == 0, "".join(client.output)
    assert "Traceback" not in "".join(client.output)
