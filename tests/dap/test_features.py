"""Function breakpoints by export, stopOnEntry, exceptionInfo and exception breakpoints, the
Modules view, over the real adapter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dap.dap_client import FIXTURES, TINYSHOP, DapClient, marker

import distdev

Start = Callable[..., DapClient]
APP, ORDERS, BILLING, LEDGER = (TINYSHOP / f for f in
                                ("app.py", "orders.py", "billing.py", "ledger.py"))
FAULTY = FIXTURES / "faulty"
RUNTIME = Path(distdev.__file__).resolve().parent
SEP = " \u203a "


def launch_with_function_breakpoints(client: DapClient, names: list[str],
                                     breakpoints: dict[str, list[int]] | None = None) -> list[dict]:
    """Like ``DapClient.start``, keeping the setFunctionBreakpoints answer."""
    client.request("initialize", {"clientID": "distdev-tests", "adapterID": "distdev",
                                  "linesStartAt1": True, "pathFormat": "path"})
    launched = client.send_request("launch", {"type": "distdev", "request": "launch",
                                              "app": str(APP)})
    client.wait_event("initialized")
    client.set_breakpoints_all(breakpoints or {})
    answer = client.request("setFunctionBreakpoints",
                            {"breakpoints": [{"name": n} for n in names]}).body["breakpoints"]
    client.request("configurationDone")
    assert client.wait_response(launched).success
    return answer  # type: ignore[no-any-return]


def test_function_breakpoint_on_nested_export_stops_there_and_bad_names_are_unverified(
    adapter: Start,
) -> None:
    client = adapter()
    answer = launch_with_function_breakpoints(
        client, ["app/billing/ledger.record", "billing.nope", "shipping.send", "nodot"])
    assert len(answer) == 4
    assert answer[0]["verified"] is True
    assert answer[0]["line"] == marker(LEDGER, "ledger-record")
    assert answer[0]["source"]["path"] == str(LEDGER)
    assert [a["verified"] for a in answer[1:]] == [False, False, False]
    assert 'no function "nope"' in answer[1]["message"]
    assert 'no service "shipping"' in answer[2]["message"]
    assert "service.export" in answer[3]["message"]

    stopped = client.wait_stopped()
    assert stopped.get("hitBreakpointIds") == [answer[0]["id"]]
    thread = stopped["threadId"]
    frames = client.stack(thread).body["stackFrames"]
    assert (frames[0]["name"], frames[0]["line"]) == (f"app/billing/ledger{SEP}record",
                                                      marker(LEDGER, "ledger-record"))
    assert frames[1]["name"] == f"app/billing{SEP}charge"
    assert client.locals_of(frames[0]["id"])["cents"] == "1200"


def test_function_breakpoint_by_short_name_merges_with_the_clients_breakpoints(
    adapter: Start,
) -> None:
    client = adapter()
    last = marker(BILLING, "billing-charge-return")
    answer = launch_with_function_breakpoints(client, ["billing.charge"], {str(BILLING): [last]})
    assert answer[0]["verified"] is True
    assert answer[0]["line"] == marker(BILLING, "billing-charge-first")

    thread = client.wait_stopped()["threadId"]
    assert client.top(thread)["line"] == marker(BILLING, "billing-charge-first")
    # The client's own breakpoint in the same file still hits, and a setBreakpoints answer
    # lists only the client's breakpoints.
    client.request("continue", {"threadId": thread})
    client.wait_stopped()
    assert client.top(thread)["line"] == last
    again = client.set_breakpoints(str(BILLING), [last]).body["breakpoints"]
    assert [b["line"] for b in again] == [last]
    # Cleared function breakpoints unbind; the client's stay.
    assert client.request("setFunctionBreakpoints", {"breakpoints": []}).body["breakpoints"] == []


def test_stop_on_entry_stops_on_the_roots_first_line_once(adapter: Start) -> None:
    client = adapter()
    later = marker(APP, "app-build-call")
    client.request("initialize", {"clientID": "distdev-tests", "adapterID": "distdev",
                                  "linesStartAt1": True, "pathFormat": "path"})
    launched = client.send_request("launch", {"type": "distdev", "request": "launch",
                                              "app": str(APP), "stopOnEntry": True})
    client.wait_event("initialized")
    own = client.set_breakpoints(str(APP), [later]).body["breakpoints"]
    assert [b["line"] for b in own] == [later]  # the entry breakpoint is not the client's
    client.request("configurationDone")
    assert client.wait_response(launched).success
    stopped = client.wait_stopped()
    assert stopped["reason"] == "entry"
    thread = stopped["threadId"]
    top = client.top(thread)
    assert (top["name"], top["line"], top["source"]["path"]) == (
        f"app{SEP}<module>", 5, str(APP))  # line 5: the first statement after the docstring
    client.request("continue", {"threadId": thread})
    second = client.wait_stopped()
    assert second["reason"] == "breakpoint"
    assert second.get("hitBreakpointIds") == [own[0]["id"]]
    assert client.top(thread)["line"] == later


def test_exception_info_names_the_raising_service_without_distdev_frames(
    adapter: Start,
) -> None:
    client = adapter()
    client.request("initialize", {"clientID": "distdev-tests", "adapterID": "distdev",
                                  "linesStartAt1": True, "pathFormat": "path"})
    launched = client.send_request("launch", {"type": "distdev", "request": "launch",
                                              "app": str(FAULTY / "app.py")})
    client.wait_event("initialized")
    client.request("setExceptionBreakpoints", {"filters": ["raised"]})
    client.request("configurationDone")
    assert client.wait_response(launched).success
    stopped = client.wait_stopped()
    assert stopped["reason"] == "exception"
    thread = stopped["threadId"]
    assert client.top(thread)["line"] == marker(FAULTY / "billing.py", "faulty-raise")

    info = client.request("exceptionInfo", {"threadId": thread}).body
    assert "in service app/billing" in info["description"]
    details = info["details"]
    assert "in service app/billing" in details["message"]
    trace = details["stackTrace"]
    assert str(FAULTY / "billing.py") in trace and str(FAULTY / "app.py") in trace
    assert str(RUNTIME) not in trace and "dap_adapter" not in trace, trace

    # The exception re-raised in the caller, across the membrane: now the root's.
    client.request("continue", {"threadId": thread})
    assert client.wait_stopped()["reason"] == "exception"
    assert client.top(thread)["line"] == marker(FAULTY / "app.py", "faulty-call")
    info = client.request("exceptionInfo", {"threadId": thread}).body
    assert info["description"].endswith("(in service app)")
    trace = info["details"]["stackTrace"]
    assert "CallFailed" not in trace and str(RUNTIME) not in trace, trace


def test_journal_positions_of_every_service_follow_each_stop(adapter: Start,
                                                             tmp_path: Path) -> None:
    client = adapter(PYTHONHASHSEED="0")
    out = tmp_path / "out"
    launched = client.start({"app": str(APP), "out": str(out), "state": str(tmp_path / "state")},
                            {str(LEDGER): [marker(LEDGER, "ledger-record")]})
    assert launched.success, launched.message
    thread = client.wait_stopped()["threadId"]  # build time: ledger.record, called by billing
    client.stack(thread)  # as every client does after a stop: the positions come with it
    at_record = client.wait_event("distdev/journalPosition")
    client.request("continue", {"threadId": thread})
    client.wait_event("output", lambda body: "built " in body.get("output", ""))
    client.close()

    def journal(service: str) -> list[Any]:
        return distdev.read_journal(out / "services" / service / "journal.cbor").events

    call_in = next(e.seq for e in journal("app/billing/ledger") if type(e).__name__ == "CallIn")
    call_out = next(e.seq for e in journal("app/billing") if type(e).__name__ == "CallOut")
    assert at_record["service"] == "app/billing/ledger"
    assert at_record["seq"] == call_in  # the call being run is the last event it journaled
    positions = at_record["positions"]
    assert set(positions) == {"app", "app/orders", "app/billing", "app/billing/ledger"}
    assert positions["app/billing/ledger"] == call_in
    assert positions["app/billing"] == call_out  # waiting for ledger.record's result
    assert all(positions[s] < len(journal(s)) for s in positions)


COUNTER_APP, COUNTER = FIXTURES / "counter" / "app.py", FIXTURES / "counter" / "counter.py"


def launch_counter(client: DapClient, tmp_path: Path, functions: list[dict[str, Any]],
                   breakpoints: list[dict[str, Any]] | None = None) -> tuple[list[dict], list]:
    """The counter app (add(1) .. add(4) at build time) with these function breakpoints and
    source breakpoints in counter.py; returns both answers."""
    client.initialize()
    launched = client.send_request("launch", {
        "type": "distdev", "request": "launch", "app": str(COUNTER_APP),
        "out": str(tmp_path / "out"), "state": str(tmp_path / "state")})
    client.wait_event("initialized")
    own = client.request("setBreakpoints", {"source": {"path": str(COUNTER)},
                                            "breakpoints": breakpoints or []}).body["breakpoints"]
    answer = client.request("setFunctionBreakpoints",
                            {"breakpoints": functions}).body["breakpoints"]
    client.request("configurationDone")
    assert client.wait_response(launched).success
    return answer, own


def test_function_breakpoint_honours_its_condition_and_hit_condition(
    adapter: Start, tmp_path: Path,
) -> None:
    client = adapter(PYTHONHASHSEED="0")
    answer, _ = launch_counter(client, tmp_path, [
        {"name": "counter.add", "condition": "n == 3"},
    ])
    assert answer[0]["verified"] is True
    stop = client.wait_stopped()
    assert (stop["reason"], stop.get("hitBreakpointIds")) == (
        "function breakpoint", [answer[0]["id"]])
    top = client.top(stop["threadId"])
    assert client.locals_of(top["id"])["n"] == "3"
    # Now by hit count: the 2nd call from here on (add(4) is the 1st after the change).
    again = client.request("setFunctionBreakpoints", {"breakpoints": [
        {"name": "counter.add", "hitCondition": "1"}]}).body["breakpoints"]
    client.request("continue", {"threadId": stop["threadId"]})
    stop = client.wait_stopped()
    assert (stop["reason"], stop.get("hitBreakpointIds")) == (
        "function breakpoint", [again[0]["id"]])
    assert client.locals_of(client.top(stop["threadId"])["id"])["n"] == "4"
    client.request("continue", {"threadId": stop["threadId"]})
    client.wait_event("output", lambda body: "built " in str(body.get("output", "")))


def test_function_breakpoint_on_a_line_breakpoints_line_keeps_its_own_id_and_condition(
    adapter: Start, tmp_path: Path,
) -> None:
    first = marker(COUNTER, "counter-add-first")
    client = adapter(PYTHONHASHSEED="0")
    answer, own = launch_counter(client, tmp_path, [
        {"name": "counter.add", "condition": "n == 2"},
    ], [{"line": first, "condition": "n == 4"}])
    assert answer[0]["line"] == first and own[0]["line"] == first
    assert answer[0]["id"] != own[0]["id"]
    stop = client.wait_stopped()  # add(2): the function breakpoint's condition, not the line's
    assert (stop["reason"], stop.get("hitBreakpointIds")) == (
        "function breakpoint", [answer[0]["id"]])
    assert client.locals_of(client.top(stop["threadId"])["id"])["n"] == "2"
    client.request("continue", {"threadId": stop["threadId"]})
    stop = client.wait_stopped()  # add(4): the line breakpoint's
    assert (stop["reason"], stop.get("hitBreakpointIds")) == ("breakpoint", [own[0]["id"]])
    assert client.locals_of(client.top(stop["threadId"])["id"])["n"] == "4"
    client.request("continue", {"threadId": stop["threadId"]})
    client.wait_event("output", lambda body: "built " in str(body.get("output", "")))


def test_modules_lists_the_services_by_id_and_hides_distdevs(adapter: Start) -> None:
    client = adapter()
    client.start({"app": str(APP)}, {str(LEDGER): [marker(LEDGER, "ledger-record")]})
    thread = client.wait_stopped()["threadId"]
    client.stack(thread)  # debugpy learns of modules as it describes frames
    names = {m["name"]: m.get("path") for m in client.request("modules", {}).body["modules"]}
    assert {"app", "app/orders", "app/billing", "app/billing/ledger"} <= names.keys(), names
    assert names["app/billing/ledger"] == str(LEDGER)
    assert not [n for n in names if n.startswith("distdev") or n == "__main__"], names
    assert not [p for p in names.values() if p and Path(p).resolve().is_relative_to(RUNTIME)]


def launch_with_exception_filter(client: DapClient, app: Path, filters: list[str],
                                 tmp_path: Path) -> None:
    client.initialize()
    launched = client.send_request("launch", {
        "type": "distdev", "request": "launch", "app": str(app),
        "out": str(tmp_path / "out"), "state": str(tmp_path / "state")})
    client.wait_event("initialized")
    client.request("setExceptionBreakpoints", {"filters": filters})
    client.request("configurationDone")
    assert client.wait_response(launched).success


@pytest.mark.parametrize("filters", [["userUnhandled"], ["uncaught"]])
def test_user_unhandled_does_not_stop_where_the_calling_service_catches_it(
    adapter: Start, tmp_path: Path, filters: list[str],
) -> None:
    """billing.refund raises into the membrane, which raises it again in app, which catches
    it: nothing was unhandled, so the build runs to its end without a stop."""
    client = adapter()
    launch_with_exception_filter(client, FAULTY / "app.py", filters, tmp_path)
    client.wait_event("output", lambda body: "built " in str(body.get("output", "")))
    assert client.pending("stopped") == []


def test_user_unhandled_stops_where_the_exception_leaves_the_last_services_code(
    adapter: Start, tmp_path: Path,
) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "billing.py").write_text((FAULTY / "billing.py").read_text())
    (folder / "app.py").write_text('from distdev import import_service\n\n'
                                   'billing = import_service("./billing.py")\n'
                                   'billing.refund("ann", -5)  # @uncaught-call\n')
    client = adapter()
    launch_with_exception_filter(client, folder / "app.py", ["userUnhandled"], tmp_path)
    stopped = client.wait_stopped()
    assert stopped["reason"] == "exception"
    top = client.top(stopped["threadId"])
    assert (top["name"].split(" (")[0], top["line"]) == (
        f"app{SEP}<module>", marker(folder / "app.py", "uncaught-call"))
    info = client.request("exceptionInfo", {"threadId": stopped["threadId"]}).body
    assert info["exceptionId"] == "ValueError", info


def test_uncaught_stops_where_an_export_called_through_the_ingress_raises(
    adapter: Start, tmp_path: Path,
) -> None:
    """The ingress catches what an export raises, to answer 500: to debugpy it is never
    uncaught. Here it stops where the exception leaves the export, then the answer is a 500."""
    import json
    import re
    import threading
    import urllib.error
    import urllib.request

    client = adapter()
    client.initialize()
    launched = client.send_request("launch", {
        "type": "distdev", "request": "launch", "app": str(FAULTY / "billing.py"), "port": 0,
        "out": str(tmp_path / "out"), "state": str(tmp_path / "state")})
    client.wait_event("initialized")
    client.request("setExceptionBreakpoints", {"filters": ["uncaught"]})
    client.request("configurationDone")
    assert client.wait_response(launched).success
    served = client.wait_event("output", lambda b: "serving billing on" in b.get("output", ""))
    address = re.search(r"http://127\.0\.0\.1:\d+", served["output"])
    assert address is not None
    answers: list[int] = []

    def refund() -> None:
        request = urllib.request.Request(
            f"{address.group(0)}/refund", method="POST",
            data=json.dumps({"user": "ann", "cents": -5}).encode(),
            headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=60)
        except urllib.error.HTTPError as error:
            answers.append(error.code)

    caller = threading.Thread(target=refund, daemon=True)
    caller.start()
    stopped = client.wait_stopped()
    assert stopped["reason"] == "exception"
    top = client.top(stopped["threadId"])
    assert (top["name"].split(" (")[0], top["line"]) == (
        f"billing{SEP}refund", marker(FAULTY / "billing.py", "faulty-raise"))
    assert client.request("exceptionInfo", {
        "threadId": stopped["threadId"]}).body["exceptionId"] == "ValueError"
    client.request("continue", {"threadId": stopped["threadId"]})
    caller.join(30)
    assert answers == [500]
