"""Which call each record of a journal belongs to.

A service that interleaves its calls (``host.process(interleave=True)``) writes one journal
that is a linearization of a cooperative schedule: a call runs alone until it calls out or ends,
and while it waits another may run. Its records say whose turn it is with as little as possible:
a ``call-in`` starts its call; when a call ends, the call that was running when it began runs
again (so calls that nest — a re-entry A -> B -> A, or any schedule of a service that does not
interleave — need nothing more); and a ``switch`` names the call that resumes whenever that
rule would name another. The recorder, the replayer and the restore's dedup table all follow
this one model, so they agree on every record.
"""

from __future__ import annotations

from ._events import CallIn, Event, Raise, Return, Switch

__all__ = ["Schedule", "TOP_LEVEL"]

TOP_LEVEL = 0
"""The strand of the module's top level (the header's seq: it began with the journal)."""


class Schedule:
    """The running call (by its ``call-in`` seq) as a journal's records go by."""

    def __init__(self) -> None:
        self.running: int | None = TOP_LEVEL
        """The call the next record belongs to; None when no call is running (the last one
        ended and the call it interrupted had ended before it)."""
        self.open: dict[int, int | None] = {}
        """Open call -> the call that was running when it began."""

    def opened(self, call: int) -> None:
        self.open[call] = self.running
        self.running = call

    def switched(self, call: int) -> None:
        self.running = call

    def closed(self) -> int | None:
        """The running call ended: return it; the call it interrupted runs again, if open."""
        ended = self.running
        parent = self.open.pop(ended, None) if ended is not None else None
        self.running = parent if parent == TOP_LEVEL or parent in self.open else None
        return ended

    def see(self, event: Event) -> int | None:
        """Follow ``event``; return the call it belongs to (for an end: the call it ended)."""
        kind = type(event)
        if kind is CallIn:
            self.opened(event.seq)
        elif kind is Switch:
            self.switched(event.call)  # type: ignore[union-attr]
        elif kind is Return or kind is Raise:
            return self.closed()
        return self.running
