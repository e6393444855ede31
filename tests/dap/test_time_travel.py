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
from distdev.journal import is_boundary

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


def test_after_a_step_back_into_a_call_its_live_frame_stops_at_a_breakpoint_further_on(
    adapter: Start, journal: Path,
) -> None:
    """A step back runs to its target unseen by the debugger (it passes every stop on the way);
    the call's frame on the stack there began in that run, and must still stop at a
    breakpoint set further on in it."""
    calls = seqs(journal, "CallIn")
    client = adapter(PYTHONHASHSEED="0")
    assert client.start({"journal": str(journal), "stopAtEvent": calls[2]}).success
    thread = client.wait_stopped()["threadId"]
    client.wait_event("distdev/journalPosition")
    travel(client, "stepBack", thread)
    stop, _ = travel(client, "stepBack", thread)  # before add(2)'s clock read, inside add(2)
    frames = client.stack(stop["threadId"]).body["stackFrames"]
    assert frames[1]["name"] == f"app/counter{SEP}add"
    assert client.set_breakpoints(str(COUNTER), [marker(COUNTER, "counter-after-clock")]).success
    client.request("continue", {"threadId": thread})
    stop = client.wait_stopped()
    assert stop["reason"] == "breakpoint"
    frames = client.stack(stop["threadId"]).body["stackFrames"]
    assert frames[0]["line"] == marker(COUNTER, "counter-after-clock")
    assert client.locals_of(frames[0]["id"])["n"] == "2"  # the frame the step back ran into
    client.set_breakpoints(str(COUNTER), [])
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


def test_timeline_step_back_goes_before_the_last_event_delivered() -> None:
    from distdev.dap_adapter._time_travel import Position, Timeline

    timeline = Timeline()
    # Stopped before event 6: event 5 was the last delivered, so back is before event 5.
    timeline.stopped("journal event", Position("app/c", 5, 1, "boundary", 6))
    before, trip = timeline.plan_step_back()
    assert (before, trip.run, trip.kind, trip.hit) == (5, 2, "stepBack", None)
    # Nothing delivered yet: the earliest boundary, before event 1.
    timeline.stopped("journal event", Position("app/c", 0, 1, "boundary", 1))
    assert timeline.plan_step_back()[0] == 1


def test_timeline_reverse_continue_without_an_earlier_hit_goes_to_the_first_boundary() -> None:
    from distdev.dap_adapter._time_travel import Position, Timeline

    timeline = Timeline()
    timeline.stopped("breakpoint", Position("app/c", 2, 1, None))  # the first hit, shown
    before, trip = timeline.plan_reverse_continue()
    assert (before, trip.kind, trip.hit) == (1, "reverseContinue", None)


def test_timeline_names_its_own_stops_and_the_end_of_the_journal_ends_any_trip() -> None:
    from distdev.dap_adapter._time_travel import END_REASON, Arrival, Position, Timeline

    timeline = Timeline()
    assert timeline.stopped("pause", Position("app/c", 3, 1, "boundary", 4)) == Arrival(
        "journal event", "before event 4 of app/c")
    assert timeline.stopped("step", Position("app/c", 2, 1, None)) == Arrival("step")
    before, trip = timeline.plan_reverse_continue()  # no hit yet: to the first boundary
    timeline.depart(trip)
    # A run that never reaches its destination stops at the end: the trip is over there.
    assert timeline.stopped("pause", Position("app/c", 9, 2, "end")) == Arrival(
        END_REASON, "app/c's journal ends here")
    assert not timeline.travelling


def test_timeline_cancel_ends_a_trip_and_allows_another() -> None:
    from distdev.dap_adapter._time_travel import Position, Timeline

    timeline = Timeline()
    timeline.stopped("breakpoint", Position("app/c", 4, 1, None))
    timeline.depart(timeline.plan_step_back()[1])
    assert timeline.travelling
    timeline.cancel()
    assert not timeline.travelling
    assert timeline.plan_step_back()[1].run == 2  # from the last known position


def test_reverse_continue_with_a_breakpoint_set_mid_replay_lands_on_the_previous_hit(
    adapter: Start, journal: Path,
) -> None:
    """The breakpoint is set while the replay stands before add(4): its three earlier hits
    were never met under it, yet Reverse Continue goes to the last of them, then the one
    before."""
    calls = seqs(journal, "CallIn")
    first = marker(COUNTER, "counter-add-first")
    client = adapter(PYTHONHASHSEED="0")
    assert client.start({"journal": str(journal), "stopAtEvent": calls[3]}).success
    thread = client.wait_stopped()["threadId"]
    assert client.wait_event("distdev/journalPosition")["seq"] == calls[3] - 1
    client.set_breakpoints(str(COUNTER), [first])

    for n in ("3", "2"):
        stop, position = travel(client, "reverseContinue", thread)
        assert stop["reason"] == "breakpoint", stop
        top = client.top(stop["threadId"])
        assert top["line"] == first
        assert client.locals_of(top["id"])["n"] == n
        assert position["seq"] == calls[int(n) - 1]
    # Forward again: the next hit is add(3)'s.
    stop, _ = travel(client, "continue", thread)
    assert client.locals_of(client.top(stop["threadId"])["id"])["n"] == "3"


def test_timeline_counts_the_hits_of_breakpoints_changed_mid_run_over_the_whole_past() -> None:
    from distdev.dap_adapter._time_travel import Leg, Position, Timeline

    timeline = Timeline()
    timeline.configured()
    timeline.stopped("journal event", Position("app/c", 9, 1, "boundary", 10))
    timeline.breakpoints_changed()
    # The current run met no hit, but the past has some: first a counting leg up to here.
    before, trip = timeline.plan_reverse_continue()
    assert before == 10 and trip.counting is not None and trip.run == 2
    timeline.depart(trip)
    for seq in (2, 5, 8):
        assert timeline.stopped("breakpoint", Position("app/c", seq, 2, None)) is None
    leg = timeline.stopped("pause", Position("app/c", 9, 2, "boundary", 10))
    assert isinstance(leg, Leg) and (leg.before, leg.trip.run, leg.trip.hit) == (None, 3, 3)
    for seq in (2, 5):
        assert timeline.stopped("breakpoint", Position("app/c", seq, 3, None)) is None
    arrival = timeline.stopped("breakpoint", Position("app/c", 8, 3, None))
    assert arrival is not None and arrival.reason == "breakpoint"
    # Now the run's hits are the current breakpoints': back once more is one run, to hit 2.
    before, trip = timeline.plan_reverse_continue()
    assert (before, trip.hit, trip.counting) == (None, 2, None)


def test_timeline_counting_leg_from_the_middle_of_code_keeps_only_the_hits_before_it() -> None:
    from distdev.dap_adapter._time_travel import Leg, Position, Timeline

    timeline = Timeline()
    timeline.configured()
    # After event 4: a hit, then a step; the breakpoints then change.
    timeline.stopped("breakpoint", Position("app/c", 4, 1, None))
    timeline.stopped("step", Position("app/c", 4, 1, None))
    timeline.breakpoints_changed()
    before, trip = timeline.plan_reverse_continue()
    assert before == 5 and trip.hits_since_event == 1
    timeline.depart(trip)
    for seq in (1, 4, 4):  # the second hit after event 4 comes after the step's stop
        assert timeline.stopped("breakpoint", Position("app/c", seq, 2, None)) is None
    leg = timeline.stopped("pause", Position("app/c", 4, 2, "boundary", 5))
    assert isinstance(leg, Leg) and leg.trip.hit == 2
    # No hit in the past at all: the counting leg goes on to the first boundary.
    timeline = Timeline()
    timeline.configured()
    timeline.stopped("journal event", Position("app/c", 3, 1, "boundary", 4))
    timeline.breakpoints_changed()
    timeline.depart(timeline.plan_reverse_continue()[1])
    leg = timeline.stopped("pause", Position("app/c", 3, 2, "boundary", 4))
    assert isinstance(leg, Leg) and (leg.before, leg.trip.hit) == (1, None)


@pytest.fixture
def checkpointed(tmp_path: Path, journal: Path) -> Path:
    """The counter restored live from its build journal (as a host restores it), called 40
    more times with a checkpoint every 30 records: a journal with checkpoints to step through."""
    from distdev.engines._live import go_live
    from distdev.replayer import CheckpointPolicy

    class Alone:
        def send(self, *args: Any) -> Any:
            raise AssertionError("the counter calls nobody")

        def exports(self, target: str) -> None:
            return None

    state = tmp_path / "live" / "journal.cbor"
    state.parent.mkdir()
    state.write_bytes(journal.read_bytes())
    live = go_live(state, Alone(), durable=False, app_files=None, log=lambda line: None,
                   checkpoints=CheckpointPolicy(events=30, growth=None, share=None))
    for n in range(5, 45):
        live.restored.proxy().add(n)
    live.close()
    live.service.compartment.unload()
    return state


def test_step_back_starts_its_run_from_the_nearest_checkpoint(
    adapter: Start, checkpointed: Path,
) -> None:
    events = distdev.read_journal(checkpointed).events
    calls, checkpoints = seqs(checkpointed, "CallIn"), seqs(checkpointed, "Checkpoint")
    assert len(checkpoints) >= 3
    target = calls[-3]  # before add(42) is delivered
    nearest = max(c for c in checkpoints if c < calls[-4])  # the last one before add(41)
    client = adapter(PYTHONHASHSEED="0")
    assert client.start({"journal": str(checkpointed), "stopAtEvent": target}).success
    stop = client.wait_stopped()
    thread = stop["threadId"]
    delivered = max(e.seq for e in events[:target] if is_boundary(e))
    assert client.wait_event("distdev/journalPosition")["seq"] == delivered
    assert client.globals_of(client.top(thread)["id"])["total"] == str(sum(range(1, 42)))

    # Back two events: before add(41)'s clock read, inside the call, its frame live; the run
    # that got there started from the checkpoint before add(41), not from the journal's start.
    travel(client, "stepBack", thread)
    stop, position = travel(client, "stepBack", thread)
    assert client.wait_event("output", lambda body: "starts from the checkpoint at record "
                             f"{nearest}" in body.get("output", ""))
    clock = next(e.seq for e in events[calls[-4]:] if type(e).__name__ == "Effect")
    assert position["seq"] == clock - 1
    frames = client.stack(stop["threadId"]).body["stackFrames"]
    assert frames[1]["line"] == marker(COUNTER, "counter-clock")
    assert client.locals_of(frames[1]["id"])["n"] == "41"
    assert client.globals_of(frames[0]["id"])["total"] == str(sum(range(1, 42)))
    assert client.globals_of(frames[0]["id"])["history"].endswith("39, 40]")

    # Forward again: the run goes on to the end of the journal, with the state it recorded.
    stop, position = travel(client, "continue", thread)
    assert stop["reason"] == "end of journal"
    assert client.globals_of(client.top(stop["threadId"])["id"])["total"] == \
        str(sum(range(1, 45)))
    client.request("continue", {"threadId": thread})
    client.wait_event("terminated")
