"""Step Back and Reverse Continue in a journal replay, driven over stdio by a DAP client.

The fixture's root calls ``counter.add(n)`` for n = 1..4 at build time, so the counter's journal
is: CallIn add(1), Effect clock, Return, CallIn add(2), ... — a total that changes with each
call, and an event inside each call for Step Back to stop before.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dap.dap_client import FIXTURES, DapClient, marker

import distdev

Start = Callable[..., DapClient]
COUNTER_APP = FIXTURES / "counter" / "app.py"
COUNTER = FIXTURES / "counter" / "counter.py"
SEP = " \u203a "


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    app = distdev.App(COUNTER_APP, out=tmp_path / "out", state=tmp_path / "state")
    app.start().close()
    return tmp_path / "out" / "services" / "app" / "counter" / "journal.cbor"


def seqs(journal: Path, kind: str) -> list[int]:
    return [e.seq for e in distdev.read_journal(journal).events if type(e).__name__ == kind]


def travel(client: DapClient, command: str, thread: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send stepBack / reverseContinue / continue; the stop that ends it and its position."""
    client.request(command, {"threadId": thread})
    stop = client.wait_stopped()
    return stop, client.wait_event("distdev/journalPosition")


def test_step_back_returns_to_each_earlier_event_boundary_with_earlier_values(
    adapter: Start, journal: Path,
) -> None:
    calls, clocks = seqs(journal, "CallIn"), seqs(journal, "Effect")
    client = adapter(PYTHONHASHSEED="0")
    assert client.start({"journal": str(journal), "stopAtEvent": calls[2]}).success
    assert client.capabilities.get("supportsStepBack") is True

    stop = client.wait_stopped()  # before add(3) is delivered: the service is idle
    thread = stop["threadId"]
    assert stop["reason"] == "journal event"
    assert client.wait_event("distdev/journalPosition")["seq"] == calls[2] - 1
    frames = client.stack(thread).body["stackFrames"]
    assert [f["name"] for f in frames] == [f"app/counter{SEP}before event {calls[2]}"]
    assert client.globals_of(frames[0]["id"])["total"] == "3"

    # Back one event: before add(2)'s Return (the call has run, its outcome not yet checked).
    stop, position = travel(client, "stepBack", thread)
    assert (stop["reason"], stop["description"]) == (
        "step", f"before event {calls[2] - 1} of app/counter")
    assert position == {"service": "app/counter", "seq": calls[2] - 2,
                        "positions": {"app/counter": calls[2] - 2}}

    # Back again: before add(2)'s clock read, inside the call, its frame live on the stack.
    stop, position = travel(client, "stepBack", thread)
    assert position["seq"] == clocks[1] - 1
    frames = client.stack(stop["threadId"]).body["stackFrames"]
    assert [f["name"] for f in frames] == [f"app/counter{SEP}before event {clocks[1]}",
                                           f"app/counter{SEP}add"]
    assert frames[1]["line"] == marker(COUNTER, "counter-clock")
    assert client.locals_of(frames[1]["id"])["n"] == "2"
    assert client.locals_of(frames[1]["id"])["before"] == "1"
    assert client.globals_of(frames[0]["id"])["history"] == "[1]"

    # Back to before add(2) is delivered: the total is the earlier one.
    stop, position = travel(client, "stepBack", thread)
    assert position["seq"] == calls[1] - 1
    frames = client.stack(stop["threadId"]).body["stackFrames"]
    assert [f["name"] for f in frames] == [f"app/counter{SEP}before event {calls[1]}"]
    assert client.globals_of(frames[0]["id"])["total"] == "1"

    # Forward again from the past: the replay runs on to the end of the journal.
    stop, position = travel(client, "continue", thread)
    assert stop["reason"] == "end of journal"
    assert position["seq"] == distdev.read_journal(journal).events[-1].seq
    frames = client.stack(stop["threadId"]).body["stackFrames"]
    assert client.globals_of(frames[0]["id"])["total"] == "10"

    # From the end, Step Back goes before the last event.
    stop, position = travel(client, "stepBack", thread)
    assert stop["reason"] == "step"
    assert position["seq"] == distdev.read_journal(journal).events[-1].seq - 1

    client.request("continue", {"threadId": thread})
    assert client.wait_stopped()["reason"] == "end of journal"
    client.request("continue", {"threadId": thread})
    client.wait_event("terminated")


def test_reverse_continue_returns_to_the_previous_breakpoint_hit(
    adapter: Start, journal: Path,
) -> None:
    first = marker(COUNTER, "counter-add-first")
    client = adapter(PYTHONHASHSEED="0")
    assert client.start({"journal": str(journal)}, {str(COUNTER): [first]}).success

    def stopped_in_add(stop: dict[str, Any]) -> str:
        assert stop["reason"] == "breakpoint", stop
        top = client.top(stop["threadId"])
        assert (top["name"], top["line"]) == (f"app/counter{SEP}add", first)
        return client.locals_of(top["id"])["n"]

    stop = client.wait_stopped()
    thread = stop["threadId"]
    assert stopped_in_add(stop) == "1"
    assert client.wait_event("distdev/journalPosition")["seq"] == seqs(journal, "CallIn")[0]
    for n in ("2", "3"):
        stop, _ = travel(client, "continue", thread)
        assert stopped_in_add(stop) == n

    # Back through the hits in reverse order, each with its own values.
    for n in ("2", "1"):
        stop, _ = travel(client, "reverseContinue", thread)
        assert stopped_in_add(stop) == n

    # No hit before the first: to the start of the journal.
    stop, position = travel(client, "reverseContinue", thread)
    assert stop["reason"] == "journal event"
    assert position["seq"] == 0

    # Forward from the start meets the first hit again, then the ones after it.
    stop, _ = travel(client, "continue", thread)
    assert stopped_in_add(stop) == "1"
    stop, _ = travel(client, "continue", thread)
    assert stopped_in_add(stop) == "2"
    # A step back from a hit goes to the boundary before the event that call runs after.
    stop, position = travel(client, "stepBack", thread)
    assert stop["reason"] == "step"
    assert position["seq"] == seqs(journal, "CallIn")[1] - 1


def test_step_back_outside_a_replay_says_it_needs_one(adapter: Start, tmp_path: Path) -> None:
    client = adapter(PYTHONHASHSEED="0")
    first = marker(COUNTER, "counter-add-first")
    assert client.start({"app": str(COUNTER_APP), "out": str(tmp_path / "out"),
                         "state": str(tmp_path / "state")}, {str(COUNTER): [first]}).success
    thread = client.wait_stopped()["threadId"]
    answer = client.request("stepBack", {"threadId": thread}, ok=False)
    assert not answer.success and "launch a replay" in (answer.message or "")


# -- the adapter's bookkeeping, on its own --------------------------------------------------------

def test_timeline_passes_the_abandoned_run_and_the_hits_before_the_destination() -> None:
    from distdev.dap_adapter._time_travel import Position, Timeline, TravelError

    timeline = Timeline()
    with pytest.raises(TravelError, match="not stopped at a known journal position"):
        timeline.plan_step_back()
    # Three hits in run 1; the third is the current stop.
    for seq in (1, 4, 7):
        shown = timeline.stopped("breakpoint", Position("app/c", seq, 1, None))
        assert shown is not None and shown.reason == "breakpoint"
    before, trip = timeline.plan_reverse_continue()
    assert (before, trip.run, trip.hit) == (None, 2, 2)
    timeline.depart(trip)
    with pytest.raises(TravelError, match="already travelling"):
        timeline.plan_step_back()
    assert timeline.stopped("breakpoint", Position("app/c", 7, 1, None)) is None  # old run
    assert timeline.stopped("breakpoint", Position("app/c", 1, 2, None)) is None  # hit 1
    arrival = timeline.stopped("breakpoint", Position("app/c", 4, 2, None))  # hit 2
    assert arrival is not None and arrival.reason == "breakpoint"
    assert not timeline.travelling

    # Step Back from a hit after event 4: the boundary before event 4, in run 3.
    before, trip = timeline.plan_step_back()
    assert (before, trip.run, trip.hit) == (4, 3, None)
    timeline.depart(trip)
    assert timeline.stopped("breakpoint", Position("app/c", 1, 3, None)) is None
    arrival = timeline.stopped("breakpoint", Position("app/c", 3, 3, "boundary", 4))
    assert arrival is not None and (arrival.reason, arrival.description) == (
        "step", "before event 4 of app/c")
    # One hit was passed on the way: Reverse Continue from the boundary goes back to it.
    before, trip = timeline.plan_reverse_continue()
    assert (before, trip.hit) == (None, 1)


def test_position_parse_refuses_what_the_debuggee_did_not_say() -> None:
    from distdev.dap_adapter._time_travel import Position

    assert Position.parse({"service": "app", "seq": 3, "run": 1, "at": None}) == Position(
        "app", 3, 1, None)
    for junk in (None, "text", {"service": "app", "seq": "3", "run": 1, "at": None},
                 {"service": "app", "seq": 3, "run": 1, "at": "elsewhere"}):
        assert Position.parse(junk) is None
