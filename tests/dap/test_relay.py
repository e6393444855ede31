"""The adapter driven over stdio by a DAP client, debugging a real application under debugpy."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dap.dap_client import TINYSHOP, DapClient, iter_descendants, marker

import distdev

APP, ORDERS, BILLING, LEDGER = (TINYSHOP / f for f in
                                ("app.py", "orders.py", "billing.py", "ledger.py"))
RUNTIME = Path(distdev.__file__).resolve().parent
SEP = " \u203a "

Start = Callable[..., DapClient]


def frames_of(client: DapClient, thread_id: int) -> list[dict]:
    return client.stack(thread_id).body["stackFrames"]  # type: ignore[no-any-return]


def assert_user_frames_only(frames: list[dict]) -> None:
    for frame in frames:
        path = Path(frame["source"]["path"]).resolve()
        assert RUNTIME not in path.parents, frame
        assert "dap_adapter" not in path.parts, frame


def test_relay_breakpoint_in_nested_service_hits_with_service_labelled_stack(
    adapter: Start,
) -> None:
    client = adapter()
    line = marker(LEDGER, "ledger-record")
    launched = client.start({"app": str(APP)}, {str(LEDGER): [line]})
    assert launched.success, launched.message
    thread = client.wait_stopped()["threadId"]

    whole = client.stack(thread).body
    names = [f["name"] for f in whole["stackFrames"]]
    assert names == [f"app/billing/ledger{SEP}record", f"app/billing{SEP}charge",
                     f"app/orders{SEP}place", f"app{SEP}<module>"]
    assert whole["totalFrames"] == 4
    assert whole["stackFrames"][0]["line"] == line
    assert_user_frames_only(whole["stackFrames"])

    # The client pages: the first frame, then the rest; totalFrames counts user frames only.
    first = client.stack(thread, 0, 1).body
    rest = client.stack(thread, 1, 20).body
    assert [f["name"] for f in first["stackFrames"] + rest["stackFrames"]] == names
    assert first["totalFrames"] == rest["totalFrames"] == 4
    assert client.locals_of(whole["stackFrames"][0]["id"]) ["cents"] == "1200"


def test_relay_step_into_proxy_call_lands_on_callee_and_step_out_returns(adapter: Start) -> None:
    client = adapter()
    call = marker(ORDERS, "orders-call-charge")
    client.start({"app": str(APP)}, {str(ORDERS): [call]})
    thread = client.wait_stopped()["threadId"]
    caller = client.top(thread)
    assert caller["name"] == f"app/orders{SEP}place" and caller["line"] == call
    assert client.locals_of(caller["id"])["note"] == "'ann pays 1200'"

    assert client.step("stepIn", thread)["reason"] == "step"
    frames = frames_of(client, thread)
    assert (frames[0]["name"], frames[0]["line"]) == (
        f"app/billing{SEP}charge", marker(BILLING, "billing-charge-first"))
    assert frames[0]["source"]["path"] == str(BILLING)
    assert [f["name"] for f in frames[1:]] == [f"app/orders{SEP}place", f"app{SEP}<module>"]
    assert_user_frames_only(frames)
    callee_locals = client.locals_of(frames[0]["id"])
    assert (callee_locals["user"], callee_locals["cents"]) == ("'ann'", "1200")
    # The caller's frame is still readable from the callee's stop.
    assert client.locals_of(frames[1]["id"])["note"] == "'ann pays 1200'"

    client.step("stepOut", thread)
    back = client.top(thread)
    assert back["name"] == f"app/orders{SEP}place"
    assert back["line"] in (call, marker(ORDERS, "orders-after-charge"))
    if back["line"] == call:  # stopped on the call's line as it returns: one more step
        client.step("next", thread)
        assert client.top(thread)["line"] == marker(ORDERS, "orders-after-charge")
    assert "'receipt-0'" in client.locals_of(client.top(thread)["id"]).values()


def test_relay_step_over_proxy_call_runs_the_whole_call(adapter: Start) -> None:
    client = adapter()
    client.start({"app": str(APP)}, {str(ORDERS): [marker(ORDERS, "orders-call-charge")]})
    thread = client.wait_stopped()["threadId"]
    client.step("next", thread)
    top = client.top(thread)
    assert (top["name"], top["line"]) == (f"app/orders{SEP}place",
                                          marker(ORDERS, "orders-after-charge"))
    assert client.locals_of(top["id"])["receipt"] == "'receipt-0'"


def test_relay_build_time_top_level_breakpoint_hits_and_disconnect_ends_every_process(
    adapter: Start,
) -> None:
    client = adapter()
    line = marker(APP, "app-import-orders")
    client.start({"app": str(APP)}, {str(APP): [line]})
    thread = client.wait_stopped()["threadId"]
    assert client.top(thread)["line"] == line
    assert client.top(thread)["name"] == f"app{SEP}<module>"
    children = list(iter_descendants(client.process.pid))
    assert children, "the adapter runs debugpy's adapter and the debuggee as descendants"
    assert client.close() == 0
    left = [pid for pid in children if os.path.exists(f"/proc/{pid}")
            and "Z" not in Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]]
    assert not left, f"processes left behind: {left}"


def test_relay_breakpoint_in_distdev_code_is_unverified_with_a_reason(adapter: Start) -> None:
    client = adapter()
    client.start({"app": str(APP)}, {str(ORDERS): [marker(ORDERS, "orders-call-charge")]})
    client.wait_stopped()
    for path in (Path(distdev.__file__), RUNTIME / "_app.py"):  # installed link and source
        answer = client.set_breakpoints(str(path), [10, 20]).body["breakpoints"]
        assert len(answer) == 2
        for breakpoint in answer:
            assert breakpoint["verified"] is False
            assert "distdev's own code" in breakpoint["message"]


def test_relay_evaluations_observe_without_acting_and_journals_replay_exactly(
    adapter: Start, tmp_path: Path
) -> None:
    import json
    import subprocess
    import sys

    client = adapter()
    out, state = tmp_path / "out", tmp_path / "state"
    client.start({"app": str(APP), "out": str(out), "state": str(state)},
                 {str(ORDERS): [marker(ORDERS, "orders-call-charge")]})
    thread = client.wait_stopped()["threadId"]
    frame = client.top(thread)["id"]

    def evaluate(expression: str) -> str:
        answer = client.request("evaluate", {"expression": expression, "frameId": frame,
                                             "context": "repl"}, ok=False)
        return str(answer.body.get("result") if answer.success else answer.message)

    assert float(evaluate("__import__('time').time()")) > 0  # a clock read, not journaled
    refused = evaluate("_billing.charge('eve', 1)")
    assert "refused" in refused, refused
    client.request("continue", {"threadId": thread})
    # The journals are complete once the build is: wait for it before ending the session.
    client.wait_event("output", lambda body: "built " in str(body.get("output", "")))
    assert client.close() == 0

    distdev_cli = Path(sys.executable).with_name("distdev")
    for service in ("app/orders", "app/billing"):
        journal = out / "services" / service / "journal.cbor"
        kinds = [e.effect for e in distdev.read_journal(journal).events
                 if type(e).__name__ == "Effect"]
        assert "time.time" not in kinds
        replayed = subprocess.run([str(distdev_cli), "replay", "--json", str(journal)],
                                  capture_output=True, text=True, timeout=60)
        assert replayed.returncode == 0, replayed.stderr
        if service == "app/billing":
            assert "eve" not in json.dumps(json.loads(replayed.stdout)["state"])


def test_relay_thread_running_only_distdevs_code_shows_a_waiting_frame(
    adapter: Start, tmp_path: Path,
) -> None:
    """Two orders through the ingress: the first stops in the ledger; the second's request
    thread (queued behind the service's gate) and the ingress's own threads show a label
    saying they wait in distdev, not an empty stack."""
    import json
    import re
    import threading
    import time
    import urllib.request

    client = adapter(PYTHONHASHSEED="0")
    client.start({"app": str(APP), "port": 0, "out": str(tmp_path / "out"),
                  "state": str(tmp_path / "state")})
    served = client.wait_event("output", lambda b: "serving app on" in b.get("output", ""))
    address = re.search(r"http://127\.0\.0\.1:\d+", served["output"])
    assert address is not None
    client.set_breakpoints(str(LEDGER), [marker(LEDGER, "ledger-record")])

    def order(user: str) -> None:
        request = urllib.request.Request(
            f"{address.group(0)}/place_order", method="POST",
            data=json.dumps({"user": user, "cents": 5}).encode(),
            headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=60).read()
        except OSError:
            pass  # the session ends the application while the call waits

    threading.Thread(target=order, args=("ann",), daemon=True).start()
    stopped = client.wait_stopped()["threadId"]
    threading.Thread(target=order, args=("bob",), daemon=True).start()
    deadline = time.monotonic() + 20
    while True:  # the second request's thread exists once the ingress accepted it
        threads = [t["id"] for t in client.request("threads").body["threads"]]
        if len(threads) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    others = [t for t in threads if t != stopped]
    assert len(others) >= 3, threads
    for thread in others:
        frames = client.stack(thread).body["stackFrames"]
        assert [(f["name"].startswith("waiting in distdev"), f["presentationHint"])
                for f in frames] == [(True, "label")], frames
        assert client.request("scopes", {"frameId": frames[0]["id"]}).body["scopes"] == []
    assert client.top(stopped)["name"] == f"app/billing/ledger{SEP}record"
