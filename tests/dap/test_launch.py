"""Launch configurations: replaying a journal under the debugger, and malformed ones refused."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import distdev
from dap.dap_client import TINYSHOP, DapClient, marker

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
    assert client.wait_event("distdev/journalPosition") == {"service": "app/billing",
                                                             "seq": call_in}
    top = client.top(thread)
    assert (top["name"], top["line"], top["source"]["path"]) == (
        f"app/billing{SEP}charge", first, str(BILLING))
    assert client.locals_of(top["id"])["cents"] == "1200"

    client.request("continue", {"threadId": thread})
    client.wait_stopped()
    assert client.wait_event("distdev/journalPosition") == {"service": "app/billing",
                                                             "seq": call_out - 1}
    stop = client.stack(thread).body
    assert stop["totalFrames"] == 1
    frame = stop["stackFrames"][0]
    assert frame["name"].startswith(f"app/billing{SEP}")
    assert f"before event {call_out}" in Path(frame["source"]["path"]).read_text()
    # The restored service's state: replay stopped as ledger.record was about to be called.
    scopes = client.request("scopes", {"frameId": frame["id"]}).body["scopes"]
    globals_ref = next(s["variablesReference"] for s in scopes if s["name"] == "Globals")
    names = {v["name"]: v["value"] for v in
             client.request("variables", {"variablesReference": globals_ref}).body["variables"]}
    assert names["charged"] == "0"
    assert f"replayed {call_out - 1} events" in "".join(client.output)

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
