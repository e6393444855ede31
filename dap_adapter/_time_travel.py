"""Step Back and Reverse Continue in a journal replay: where to go, and which stops to show.

A replay is deterministic, so the debuggee travels back by running the journal again from the
start (``_replay_loop``). This module is the adapter's bookkeeping for that, free of protocol:

- **Step Back** goes to the previous journal event boundary: just before the last event the
  service was delivered. From a stop "before event N" that is before the event delivered
  before N; from a stop in the middle of the code, before the event that code is running after.
- **Reverse Continue** goes to the previous breakpoint hit, or to the first event boundary
  when there was none. Hits are counted in the order a run meets them; a run again from the
  start meets the same hits in the same order, so "hit number k" names one moment.

While the new run travels to its destination, every stop it makes on the way (and any stop the
abandoned run makes on its way out) is passed silently; only the destination is shown.

Standard library only, and no lock of its own: the relay's session lock guards the timeline, and
the debuggee builds its ``Position`` answers from this module too (through ``_evaluate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Position", "Timeline", "Trip", "Arrival", "TravelError"]

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


@dataclass(frozen=True)
class Trip:
    """A journey back: the run that makes it, and where it ends."""

    run: int
    kind: Literal["stepBack", "reverseContinue"]
    hit: int | None
    """End at this breakpoint hit of the new run; None: at its first event boundary."""


@dataclass(frozen=True)
class Arrival:
    """A stop to show the client, with the reason to give it."""

    reason: str
    description: str | None = None


class Timeline:
    """The replay's time as the adapter sees it: the current stop, the breakpoint hits of the
    current run, and the trip under way."""

    def __init__(self) -> None:
        self.position: Position | None = None
        self.hits = 0
        self._stopped_on_hit = False
        self.trip: Trip | None = None

    @property
    def travelling(self) -> bool:
        return self.trip is not None

    # -- planning: (the event to stop before in the new run, or None; the trip) ---------------

    def plan_step_back(self) -> tuple[int | None, Trip]:
        here = self._here()
        return max(here.seq, 1), Trip(here.run + 1, "stepBack", None)

    def plan_reverse_continue(self) -> tuple[int | None, Trip]:
        here = self._here()
        earlier = self.hits - 1 if self._stopped_on_hit else self.hits
        if earlier >= 1:
            return None, Trip(here.run + 1, "reverseContinue", earlier)
        return 1, Trip(here.run + 1, "reverseContinue", None)

    def _here(self) -> Position:
        if self.trip is not None:
            raise TravelError("the replay is already travelling back; wait for it to stop")
        if self.position is None:
            raise TravelError("the replay has not stopped at a known journal position yet")
        return self.position

    def depart(self, trip: Trip) -> None:
        self.trip = trip
        self.hits = 0

    def cancel(self) -> None:
        self.trip = None

    # -- observing the stops -------------------------------------------------------------------

    def stopped(self, reason: str, position: Position) -> Arrival | None:
        """A stop of the debuggee: the arrival to show, or None to pass it silently."""
        hit = reason in HIT_REASONS and position.at is None
        trip = self.trip
        if trip is not None and position.run < trip.run:
            return None  # the abandoned run, on its way out
        if hit:
            self.hits += 1
        if trip is not None:
            if not self._arrived(trip, position, hit):
                return None
            self.trip = None
        self.position, self._stopped_on_hit = position, hit
        if position.at == "boundary":
            reason = "step" if trip is not None and trip.kind == "stepBack" else BOUNDARY_REASON
            return Arrival(reason, f"before event {position.next} of {position.service}")
        if position.at == "end":
            return Arrival(END_REASON, f"{position.service}'s journal ends here")
        return Arrival(reason)

    def _arrived(self, trip: Trip, position: Position, hit: bool) -> bool:
        if position.at == "end":
            return True  # nowhere further to go
        if trip.hit is None:
            return position.at == "boundary"
        return hit and self.hits >= trip.hit
