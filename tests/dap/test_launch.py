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


EDITED_APP = {
    "app.py": 'from distdev import import_service\n\nbilling = import_service("./billing.py")\n'
              "billing.charge(5)\n",
    "billing.py": "from fmt import label\n\ntotal = 0\n\n\ndef charge(cents: int) -> str:\n"
                  "    global total\n    total += cents  # @charge-add\n"
                  "    return label(total)  # @charge-label\n",
    "fmt.py": 'def label(cents: int) -> str:\n    return f"{cents} cents"  # @fmt-label\n',
}


def test_launch_replay_of_code_changed_on_disk_binds_to_the_code_that_runs(
    adapter: Start, tmp_path: Path,
) -> None:
    """fmt.py changed after the journal was recorded: the replay runs the journal's code from the
    bundle cache. A breakpoint in the unchanged billing.py binds to its copy there (and its
    frames show billing.py); one in the changed fmt.py is unverified, saying why, and its frames
    show the journal's copy."""
    folder = tmp_path / "app"
    folder.mkdir()
    for name, text in EDITED_APP.items():
        (folder / name).write_text(text)
    distdev.App(folder / "app.py", out=tmp_path / "out", state=tmp_path / "state").start().close()
    journal = tmp_path / "out" / "services" / "app" / "billing" / "journal.cbor"
    fmt = folder / "fmt.py"
    fmt.write_text("# edited after the journal was recorded\n\n" + EDITED_APP["fmt.py"])

    billing = folder / "billing.py"
    client = adapter(PYTHONHASHSEED="0")
    client.initialize()
    launched = client.send_request("launch", {"type": "distdev", "request": "launch",
                                              "journal": str(journal)})
    client.wait_event("initialized")
    answers = client.set_breakpoints_all({
        str(billing): [marker(billing, "charge-add")], str(fmt): [marker(fmt, "fmt-label")]})
    client.request("configurationDone")
    assert client.wait_response(launched).success
    (bound,) = answers[str(billing)].body["breakpoints"]
    assert bound["verified"] is True
    (refused,) = answers[str(fmt)].body["breakpoints"]
    assert refused["verified"] is False and "changed since the journal" in refused["message"]
    assert "bundle cache" in "".join(client.output)
    stop = client.wait_stopped()
    assert stop["reason"] == "breakpoint", (stop, "".join(client.output))
    thread = stop["threadId"]
    top = client.top(thread)
    assert (top["line"], top["source"]["path"]) == (marker(billing, "charge-add"), str(billing))
    client.step("next", thread)
    client.step("stepIn", thread)
    inner = client.top(thread)
    assert inner["source"]["path"] != str(fmt)
    assert Path(inner["source"]["path"]).read_text() == EDITED_APP["fmt.py"]  # the journal's
    assert inner["line"] == 2
