"""Replaying interleaved calls: each on a thread of its own, one running at a time, the turn
handed over exactly where the journal says.

A service that interleaves its calls recorded them as a cooperative schedule: a call ran until
it called out or ended, and then another ran (``journal.Schedule`` says which, record by
record). A call that was still waiting when another call's records resumed cannot be replayed
by delivering calls inside one another on one thread: its frames would sit under the other's.
So such a call — one whose lifetime holds a ``switch`` (``threaded_calls``) — is re-delivered on
a thread of its own, and the threads pass one turn between them (``Strands``): whoever holds it
reads the next record; a ``switch``, or a call's end, hands it on. Every other call is delivered
as before, nested on the thread that reads its ``call-in`` (no switch happens while it is open,
so nothing else needs to run meanwhile), and a journal without a switch replays on one thread.

The replay's own thread is the top level's strand (``TOP_LEVEL``): it runs the module's top
level, then reads the calls that arrive when no call is running. A replay that stops — at its
end, at ``until``, on a divergence — hands the turn to each waiting thread in turn so that it
unwinds (its ``finally`` blocks run one at a time, as they would have), and joins it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from ..compartment import running
from ..journal import TOP_LEVEL, CallIn, Event, Raise, Return, Schedule, Switch

__all__ = ["Strands", "threaded_calls"]


def threaded_calls(events: Iterable[Event], *, open_at_end: bool = False) -> set[int]:
    """The calls (their ``call-in`` seqs) during whose lifetime the journal switches: the ones
    a replay runs on threads of their own. Empty for a journal without a ``switch``.
    ``open_at_end``: every call still open at the journal's end too (each is to go on live
    where it stands, so none may sit under another's frames)."""
    schedule = Schedule()
    switches = 0
    began: dict[int, int] = {}  # open call -> switches seen before it began
    threaded: set[int] = set()
    for event in events:
        kind = type(event)
        if kind is Switch:
            switches += 1
        elif kind is CallIn:
            began[event.seq] = switches
        call = schedule.see(event)
        if (kind is not Return and kind is not Raise) or call is None or call not in began:
            continue
        if began.pop(call) != switches:
            threaded.add(call)
    threaded.update(call for call, seen in began.items() if open_at_end or seen != switches)
    return threaded


class _Worker:
    """A replay thread: runs one threaded call at a time, then waits for the next. ``baton``
    is held (acquired) while it waits; whoever hands it the turn releases it."""

    def __init__(self, strands: Strands) -> None:
        self.baton = threading.Lock()
        self.baton.acquire()
        self.job: tuple[int, Callable[[], None]] | None = None
        self.thread = threading.Thread(target=strands._work, args=(self,), daemon=True,
                                       name="distdev-replay-call")


class Strands:
    """The threads of one replay and the turn they pass (a strand is named by its call's
    ``call-in`` seq; the replay's own thread is ``TOP_LEVEL``).

    Exactly one strand runs; each other one blocks on its own baton (a lock), released by the
    strand that hands it the turn — a direct hand-over, no thread woken in vain. Threads are
    kept for the next threaded call once theirs ends: a journal of many interleaved calls
    starts only as many threads as were ever waiting at once."""

    def __init__(self, threaded: set[int], schedule: Schedule,
                 stopped: Callable[[], BaseException]) -> None:
        self.threaded = threaded
        self._schedule = schedule
        self._stopped = stopped  # what a strand woken to unwind raises
        main = threading.Lock()
        main.acquire()
        self._batons: dict[int, threading.Lock] = {TOP_LEVEL: main}
        """Strand -> its thread's baton, for every strand that has begun and not ended."""
        self._waiting: set[int] = set()
        self._running: dict[int, _Worker] = {}
        self._idle: list[_Worker] = []
        self._halted = False
        self._live = False
        """The replay is over and its open calls went on live: nobody passes a turn."""
        self.failure: BaseException | None = None
        """What ended the delivery that stopped the replay (a ``StopReplay``, a divergence, or
        anything else the replayed code let out)."""

    @property
    def halted(self) -> bool:
        """Whether the replay stopped: what still runs only unwinds."""
        return self._halted

    def threaded_open(self) -> bool:
        """Whether a call on a thread of its own still waits (the journal ended inside it)."""
        return bool(self._running)

    def is_waiting(self, strand: int) -> bool:
        return strand in self._waiting

    def start(self, call: int, deliver: Callable[[], None], me: int) -> None:
        """Deliver ``call`` on a thread of its own, which gets the turn; return when the turn
        comes back to ``me``."""
        worker = self._idle.pop() if self._idle else _Worker(self)
        worker.job = (call, deliver)
        self._running[call] = worker
        self._batons[call] = worker.baton
        self._waiting.add(me)
        if worker.thread.ident is None:
            with running(None, None):  # a thread of the replay's, not of the service's code
                worker.thread.start()
        worker.baton.release()
        self._wait(me)

    def hand_to(self, strand: int, me: int) -> None:
        """Give the turn to waiting ``strand``; return when it comes back to ``me``."""
        self._waiting.add(me)
        self._batons[strand].release()
        self._wait(me)

    def park(self, me: int) -> None:
        """``me`` reached the journal's end: give the replay's thread the turn (the replay
        ends) and wait for ``go_live``."""
        self._waiting.add(me)
        self._batons[TOP_LEVEL].release()
        self._wait(me)

    def go_live(self) -> None:
        """Wake every waiting strand at once: from here they run live, taking turns by the
        service's gate, not by batons."""
        self._live = True
        for strand in list(self._waiting):
            if strand != TOP_LEVEL:
                self._batons[strand].release()

    def _wait(self, me: int) -> None:
        self._batons[me].acquire()
        self._waiting.discard(me)
        if self._halted:
            raise self._stopped()

    def _work(self, worker: _Worker) -> None:
        while True:
            worker.baton.acquire()
            if worker.job is None:
                return  # the replay is over
            call, deliver = worker.job
            worker.job = None
            try:
                deliver()
            except BaseException as exc:
                if self.failure is None:
                    self.failure = exc
                self._halted = True  # the replay stops; ``stopped`` says why
            del self._running[call], self._batons[call]
            if self._live:
                return  # it ran on live: nothing more comes to this thread
            self._idle.append(worker)
            following = self._schedule.running
            if self._halted or following is None or following not in self._waiting:
                following = TOP_LEVEL  # no call runs: the replay's thread reads on
            self._batons[following].release()

    def unwind(self) -> None:
        """Stop: let every waiting thread unwind, one at a time, then end every thread."""
        self._halted = True
        main = self._batons[TOP_LEVEL]
        while self._running:
            call = next(iter(self._running))
            self._batons[call].release()
            main.acquire()  # handed back once that call has unwound
        for worker in self._idle:
            worker.job = None
            worker.baton.release()
            worker.thread.join()
        self._idle.clear()
