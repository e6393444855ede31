"""Launch configurations: replaying a journal under the debugger, and malformed ones refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dap.dap_client import TINYSHOP, DapClient, marker

import distdev

Start = Callable[..., DapClient]
BILLING = TINYSHOP / "billing.py"
SEP = " \u203a "


def build_journal(tmp_path: Path, service: str) -> Path:
    app = distdev.App(TINYSHOP / "app.py", out=tmp_path / "out", state=tmp_path / "state")
    app.start().close()
    return tmp_path / "out" / "services" / service / "journal.cbor"


def test_launch_replay_hits_breakpoints_and_stops_before_the_event(
    adapter: Start, tmp_path: Path,
) -> None:
    journal = build_journal(tmp_path, "app/billing")
    events = distdev.read_journal(journal).events
    call_out = next(e.seq for e in events if type(e).__name__ == "CallOut")  # ledger.record
    client = adapter(PYTHONHASHSEED="0")
    first = marker(BILLING, "billing-charge-first")
    launched = client.start({"journal": str(journal), "stopAtEvent": call_out},
                            {str(BILLING): [first]})
    assert launched.success, launched.message

    thread = client.wait_stopped()["threadId"]  # the recorded call to charge, re-delivered
    call_in = next(e.seq for e in events if type(e).__name__ == "CallIn" and e.export == "charge")
    assert client.wait_event("distdev/journalPosition") == {
        "service": "app/billing", "seq": call_in, "positions": {"app/billing": call_in}}
    top = client.top(thread)
    assert (top["name"], top["line"], top["source"]["path"]) == (
        f"app/billing{SEP}charge", first, str(BILLING))
    assert client.locals_of(top["id"])["cents"] == "1200"

    # Stopped before the call out is delivered, with the code waiting for it live on the stack.
    client.request("continue", {"threadId": thread})
    stop = client.wait_stopped()
    assert (stop["reason"], stop["description"]) == (
        "journal event", f"before event {call_out} of app/billing")
    assert client.wait_event("distdev/journalPosition")["seq"] == call_out - 1
    frames = client.stack(thread).body["stackFrames"]
    assert [f["name"] for f in frames] == [f"app/billing{SEP}before event {call_out}",
                                           f"app/billing{SEP}charge"]
    assert f"before event {call_out}" in Path(frames[0]["source"]["path"]).read_text()
    assert frames[1]["line"] == marker(BILLING, "billing-call-record")
    assert client.locals_of(frames[1]["id"])["amount"] == "1200"
    # The service's state is the marker frame's globals: charge has not added to it yet.
    assert client.globals_of(frames[0]["id"])["charged"] == "0"

    # Continue: the replay goes on to the end of the journal and stops there.
    client.request("continue", {"threadId": thread})
    stop = client.wait_stopped()
    assert stop["reason"] == "end of journal"
    assert client.wait_event("distdev/journalPosition")["seq"] == events[-1].seq
    frames = client.stack(thread).body["stackFrames"]
    assert [f["name"] for f in frames] == [f"app/billing{SEP}end of journal"]
    assert client.globals_of(frames[0]["id"])["charged"] == "1200"
    assert f"replayed {events[-1].seq} events" in "".join(client.output)

    client.request("continue", {"threadId": thread})
    client.wait_event("terminated")


def test_launch_malformed_configurations_get_errors_that_say_what_is_wrong(
    adapter: Start, tmp_path: Path,
) -> None:
    journal = build_journal(tmp_path, "app/billing")
    client = adapter()
    client.request("initialize", {"clientID": "tests", "adapterID": "distdev"})
    cases = [
        ({}, '"app"'),
        ({"app": "nowhere/app.py"}, "no such file"),
        ({"journal": "missing.cbor"}, "no such file"),
        ({"app": str(TINYSHOP / "app.py"), "journal": str(journal)}, "not both"),
        ({"app": str(TINYSHOP / "app.py"), "port": "eighty"}, '"port"'),
        ({"journal": str(journal), "stopAtEvent": 999}, "has events 1 to"),
        ({"app": str(TINYSHOP / "app.py"), "stopAtEvent": 3}, "applies to a replay"),
        ({"app": str(TINYSHOP / "ledger.json")}, "no such file"),
        ({"journal": str(journal), "stopOnEntry": True}, "applies to an application launch"),
    ]
    for arguments, expected in cases:
        answer = client.request("launch", {"type": "distdev", "request": "launch", **arguments},
                                ok=False)
        assert not answer.success, arguments
        assert answer.message and expected in answer.message, (arguments, answer.message)
        assert answer.body["error"]["showUser"] is True
    corrupt = tmp_path / "corrupt.cbor"
    corrupt.write_bytes(b"not a journal")
    answer = client.request("launch", {"request": "launch", "journal": str(corrupt)}, ok=False)
    assert not answer.success and "cannot be replayed" in (answer.message or "")
    assert client.request("attach", {}, ok=False).message.startswith("distdev starts")
