"""Step Back and Reverse Continue in a journal replay: where to go, and which stops to show.

A replay is deterministic, so the debuggee travels back by running the journal again from the
start (``_replay_loop``). This module is the adapter's bookkeeping for that, free of protocol:

- **Step Back** goes to the previous journal event boundary: just before the last event the
  service was delivered. From a stop "before event N" that is before the event delivered
  before N; from a stop in the middle of the code, before the event that code is running after.
  Its run starts from the journal's last checkpoint before that event, when it has one, instead
  of the start: the time a step takes does not grow with the journal's length.
- **Reverse Continue** goes to the previous breakpoint hit, or to the first event boundary
  when there was none. Hits are counted in the order a run meets them; a run again from the
  start meets the same hits in the same order, so "hit number k" names one moment. The hits the
  current run met count only while the breakpoints stay those it ran with: after the client
  changes them mid-run, Reverse Continue first runs the journal again up to where it stands,
  counting the hits of the current breakpoints over the whole replayed past (a *counting leg*),
  then once more to the last of them (``Leg``). The count is exact from a stop at a journal
  event boundary or at the end; from a stop in the middle of code, the hits after the last
  event delivered are counted as this run met them.

While the new run travels to its destination, every stop it makes on the way (and any stop the
abandoned run makes on its way out) is passed silently; only the destination is shown.

Standard library only, and no lock of its own: the relay's session lock guards the timeline, and
the debuggee builds its ``Position`` answers from this module too (through ``_evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Position", "Timeline", "Trip", "Arrival", "Leg", "TravelError"]

HIT_REASONS = frozenset(["breakpoint", "function breakpoint"])
BOUNDARY_REASON = "journal event"
END_REASON = "end of journal"


class TravelError(Exception):
    """Travel is not possible from here; the message says why."""


@dataclass(frozen=True)
class Position:
    """Where a replay stands at a stop: the debuggee's answer to ``_evaluate.JOURNAL_POSITION``."""

    service: str
    seq: int
    """The last event delivered in this run (0: none yet)."""
    run: int
    at: Literal["boundary", "end"] | None
    """A stop the replay itself made (before an event, at the end), or None (a breakpoint,
    a step, an exception)."""
    next: int | None = None
    """At a boundary: the event about to be delivered."""
    checkpoint: int | None = None
    """The journal's checkpoint this run started from (None: its start): its breakpoint hits
    are not all of the past's."""


@dataclass(frozen=True)
class Trip:
    """A journey back: the run that makes it, and where it ends."""

    run: int
    kind: Literal["stepBack", "reverseContinue"]
    hit: int | None
    """End at this breakpoint hit of the new run; None: at its first event boundary."""
    counting: Position | None = None
    """A counting leg: pass every hit, counting, up to this moment (where the trip left from),
    then go on to the last hit before it (``Leg``)."""
    hits_since_event: int = 0
    """On a counting leg from the middle of code: the hits the departed run met after the last
    event delivered, before the stop it left from."""


@dataclass(frozen=True)
class Arrival:
    """A stop to show the client, with the reason to give it."""

    reason: str
    description: str | None = None


@dataclass(frozen=True)
class Leg:
    """A trip goes on: run the journal again, stopping before event ``before`` (None: only
    where the trip ends), as run ``trip.run``."""

    before: int | None
    trip: Trip


class Timeline:
    """The replay's time as the adapter sees it: the current stop, the breakpoint hits of the
    current run, and the trip under way."""

    def __init__(self) -> None:
        self.position: Position | None = None
        self._hit_seqs: list[int] = []
        """The journal position of each breakpoint hit the current run met, in order."""
        self._hits_counted = True
        """Whether ``_hit_seqs`` are the hits of the current breakpoints over the whole run."""
        self._configured = False
        self._stopped_on_hit = False
        self.trip: Trip | None = None

    @property
    def travelling(self) -> bool:
        return self.trip is not None

    @property
    def hits(self) -> int:
        return len(self._hit_seqs)

    def configured(self) -> None:
        """The first run starts with the breakpoints set so far."""
        self._configured = True

    def breakpoints_changed(self) -> None:
        """The client changed breakpoints: the current run's hits no longer count them all."""
        if self._configured:
            self._hits_counted = False

    # -- planning: (the event to stop before in the new run, or None; the trip) ---------------

    def plan_step_back(self) -> tuple[int | None, Trip]:
        here = self._here()
        return max(here.seq, 1), Trip(here.run + 1, "stepBack", None)

    def plan_reverse_continue(self) -> tuple[int | None, Trip]:
        here = self._here()
        if not self._hits_counted:
            since_event = self._hit_seqs.count(here.seq) - (1 if self._stopped_on_hit else 0)
            until = here.next if here.at == "boundary" else (
                None if here.at == "end" else here.seq + 1)
            return until, Trip(here.run + 1, "reverseContinue", None, counting=here,
                               hits_since_event=max(since_event, 0))
        earlier = self.hits - 1 if self._stopped_on_hit else self.hits
        return self._to_hit(here.run + 1, earlier)

    @staticmethod
    def _to_hit(run: int, earlier: int) -> tuple[int | None, Trip]:
        """Where Reverse Continue goes with ``earlier`` hits before the current moment."""
        if earlier >= 1:
            return None, Trip(run, "reverseContinue", earlier)
        return 1, Trip(run, "reverseContinue", None)

    def _here(self) -> Position:
        if self.trip is not None:
            raise TravelError("the replay is already travelling back; wait for it to stop")
        if self.position is None:
            raise TravelError("the replay has not stopped at a known journal position yet")
        return self.position

    def depart(self, trip: Trip) -> None:
        """A new run starts from the top, with the current breakpoints."""
        self.trip = trip
        self._hit_seqs = []
        self._hits_counted = True

    def cancel(self) -> None:
        self.trip = None

    # -- observing the stops -------------------------------------------------------------------

    def stopped(self, reason: str, position: Position) -> Arrival | Leg | None:
        """A stop of the debuggee: the arrival to show, the next leg of a trip (the adapter
        runs the journal again), or None to pass it silently."""
        hit = reason in HIT_REASONS and position.at is None
        trip = self.trip
        if trip is not None and position.run < trip.run:
            return None  # the abandoned run, on its way out
        if position.checkpoint is not None:
            self._hits_counted = False  # the hits before the checkpoint were not met again
        if hit:
            self._hit_seqs.append(position.seq)
        if trip is not None:
            if not self._arrived(trip, position, hit):
                return None
            if trip.counting is not None:
                before, onward = self._to_hit(position.run + 1, self._hits_before(trip))
                self.depart(onward)
                return Leg(before, onward)
            self.trip = None
        self.position, self._stopped_on_hit = position, hit
        if position.at == "boundary":
            reason = "step" if trip is not None and trip.kind == "stepBack" else BOUNDARY_REASON
            return Arrival(reason, f"before event {position.next} of {position.service}")
        if position.at == "end":
            return Arrival(END_REASON, f"{position.service}'s journal ends here")
        return Arrival(reason)

    def _hits_before(self, trip: Trip) -> int:
        """On a counting leg's arrival: how many hits came before the moment it counted to."""
        here = trip.counting
        assert here is not None
        earlier = [seq for seq in self._hit_seqs if seq < here.seq]
        same = self._hit_seqs.count(here.seq)
        if here.at is None:  # in the middle of code: only the hits met before it, after the event
            same = min(same, trip.hits_since_event)
        return len(earlier) + same

    def _arrived(self, trip: Trip, position: Position, hit: bool) -> bool:
        if position.at == "end":
            return True  # nowhere further to go
        if trip.hit is None:
            return position.at == "boundary"
        return hit and self.hits >= trip.hit
