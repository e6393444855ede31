"""Busy-polling a socket before blocking on it: bounded, adaptive, and off where it cannot help.

A cross-process round trip that blocks on both sides pays two wake-ups: the callee sleeps until
the call arrives, the caller until the answer does. Across vCPUs each costs tens of µs, more
than everything distdev does for the call. Polling the socket for a moment before blocking
catches an answer that is about to arrive without sleeping at all. Unbounded, it is ruinous: on
one vCPU the poller takes the CPU from the very process whose answer it waits for (a call took
426 µs instead of 65), and an idle connection would burn a CPU for nothing. So a poll is:

* **off** when this process may run on one CPU only (``os.sched_getaffinity``), and when
  ``DISTDEV_BUSY_POLL_US`` is 0;
* **capped** at ``DISTDEV_BUSY_POLL_US`` µs of polling per wait (default 200), after which the
  socket blocks as it always did;
* **adaptive**: each connection end keeps an exponentially weighted average of how long its
  recent waits took, and polls until at most twice that; when that average is over the cap (a
  slow callee, an idle connection) and the wait cannot nap first (below), it does not poll at
  all, since the answer would not come within the cap anyway. Waits are measured whether
  they were polled or blocked, so a connection that becomes busy again starts polling again;
* **napping through a long wait**: a caller's wait expected to take a while (a durable
  callee's ``fdatasync``, about 100-150 µs) first sleeps until shortly before its answer is
  due, woken at once if the answer comes sooner, and polls from there: the answer still finds
  its caller polling, without the caller spinning through the whole wait. A nap ends late by
  the timer's lateness (measured, about 40 µs on a virtual machine once the thread's timer
  slack, 50 µs by default, is cut to nothing), so a nap is ``NAP_SHARE`` of the average wait
  less that lateness, taken only when it comes to at least ``NAP_MIN``; waits longer than
  ``NAP_LIMIT`` on average block, as a wake-up is a small part of them. Blocking instead cost
  a durable round trip about 40 µs more (the caller's wake-up, and the callee's ``send``,
  which wakes its peer: 22 µs instead of 6). A callee's end does not nap (``Channel``'s
  ``naps``): its wait for the next call is as long as its caller makes it, and a thread woken
  from a nap there finds the calls in flight on the process's other threads holding the
  interpreter's lock (with 16 in flight, such naps cost a durable deployment 7% of its
  throughput);
* **one at a time per process**: a thread naps or polls only while no other thread of its
  process does (the others block), so a process never spends more than one CPU polling, and
  its other threads keep the interpreter's lock between polls;
* **backing off when it misses**: a poll that ends without its frame was CPU spent for
  nothing, and where the peer shares this CPU it delays the very frame it waits for (the peer
  runs once the poll gives up). After each miss in a row, twice as many waits block at once
  (up to 256); a poll that catches its frame ends the run;
* **backing off, alone, when its own process keeps it waiting**: a poll that got little CPU
  while the process's other threads ran (calls in flight on them) was kept from the
  interpreter's lock, not from a CPU. The machine is not crowded, so the process does not
  pause; that connection end backs off as after a miss, since its polling takes the lock from
  the threads it waits behind;
* **off for a while on a crowded machine**: a poll that got much less CPU time than the time it
  took was kept waiting for a CPU. One such poll says little (a moment's preemption, measured
  in about 1% of polls on a loaded machine where polling still caught 98% of its frames and
  cut the round trip by a quarter); polls kept waiting again and again say that the processes
  it waits for are kept waiting too, and polling then only takes CPU from them. So the process
  keeps the share of its recent polls that were kept waiting (an average over about the last
  eight), and when a poll kept waiting takes that share past ``CROWDED_SHARE`` (three such
  polls in a row do it) it stops polling for ``PAUSE_FIRST`` seconds (10 ms). A poll kept
  waiting after that pause, the share still past it, pauses for twice as long, and so on up to
  ``PAUSE_MAX`` (a second): a machine that stays crowded costs one poll a second, and a moment
  of crowding (a burst of calls in flight, whose threads keep the polling one from the
  interpreter's lock; a process starting beside it) stops polling for milliseconds, not for
  the calls that follow it. Only a poll kept waiting starts a pause, and a poll that caught
  its frame within moments counts as one that was not kept waiting (too short to be timed
  against the CPU it got, it had the CPU when it mattered): otherwise the share, which polls
  alone move, would stay where the pause found it, and the first long poll after every pause,
  however well it went, would pause the process again. Measured before these rules: after 16
  calls in flight, a client's next 3,000 calls one at a time all blocked (polling paused), and
  a server whose first polls were kept waiting as its client started polled in 28 of 17,000
  waits.

Only how long a wait takes changes, never what it returns: every outcome (a frame, an end, a
timeout) is the one a blocking receive would have given.
"""

from __future__ import annotations

import ctypes
import os
import threading

__all__ = ["BusyPoll", "POLL_CAP", "poll_enabled", "precise_timers"]


def _cap_seconds(environ: dict[str, str] | os._Environ[str] = os.environ) -> float:
    raw = environ.get("DISTDEV_BUSY_POLL_US", "200")
    try:
        micros = float(raw)
    except ValueError:
        raise ValueError(f"DISTDEV_BUSY_POLL_US={raw!r} is not a number of microseconds: set it "
                         "to the longest a wait may poll before blocking (0 turns polling "
                         "off)") from None
    if micros < 0:
        raise ValueError(f"DISTDEV_BUSY_POLL_US={raw!r} is negative: set it to 0 or more µs")
    return micros / 1e6


def _cpus_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux: what the machine has
        return os.cpu_count() or 1


POLL_CAP = _cap_seconds()
"""The longest one wait polls before it blocks, in seconds."""


def poll_enabled(cap: float = POLL_CAP, cpus: int | None = None) -> bool:
    """Whether polling can help here: a cap above 0 and more than one CPU to run on."""
    return cap > 0 and (_cpus_available() if cpus is None else cpus) > 1


_ENABLED = poll_enabled()
_polling = threading.Lock()
"""Held by the one thread of this process that polls."""
_paused_until = 0.0
"""``time.monotonic()`` before which no thread of this process polls: the machine is crowded."""
_kept_waiting = 0.0
"""The share of this process's recent polls that were kept waiting for a CPU (updated by the
one thread that polls)."""
_pause = 0.0
"""Seconds the last pause of the present crowding lasted (0: none yet, so the next lasts
``BusyPoll.PAUSE_FIRST``)."""


_PR_SET_TIMERSLACK = 29
_precise = threading.local()


def precise_timers() -> None:
    """End this thread's timed waits on time: by default Linux lets one end up to 50 µs late
    (timer slack, for fewer wake-ups), a third of a nap before a durable answer. Once per
    thread; where ``prctl`` is not there, waits keep their slack (the naps measure it)."""
    if getattr(_precise, "done", False):
        return
    _precise.done = True
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        pass


class BusyPoll:
    """One connection end's polling policy: how long its next wait may poll.

    ``budget()`` is the seconds to poll before blocking (0: block at once), ``observe(waited)``
    records how long a wait took, polled or not. ``claim()``/``release()`` take the process's
    one polling slot around a poll."""

    ALPHA = 0.125
    """Weight of the newest wait in the average: about the last eight waits count."""
    STRETCH = 2.0
    """A wait polls up to this many times the average: a little jitter still lands in it."""

    PAUSE_FIRST = 0.01
    """Seconds the process does not poll after a poll kept from the CPU took the share of such
    polls past ``CROWDED_SHARE``; each further pause while the share stays there lasts twice
    the one before, up to ``PAUSE_MAX``."""
    PAUSE_MAX = 1.0
    """The longest pause: on a machine that stays crowded, one poll a second."""
    MAX_SKIP = 256
    """After polls that ended without the frame, the waits that block at once: 2, 4, ... up
    to this many, after each further miss; one poll that catches its frame ends the run."""
    CROWDED = 0.5
    """A poll that got less than this share of its time on a CPU was kept waiting for one."""
    CROWDED_SHARE = 0.3
    """The share of recent polls kept waiting that pauses polling: three in a row (0.33)."""
    UNCLOCKED = 10e-6
    """The first part of a poll, not timed against the CPU's clocks (a system call each, of
    about 0.8 us on a virtual machine): a poll that ends within it (a callee's, whose caller
    was about to send) pays for no clock but the monotonic one on its frame's path."""
    JUDGED = 20e-6
    """Polls whose timed part is shorter than this say nothing about the machine (the clocks'
    own cost)."""

    NAP_SHARE = 0.8
    """A nap ends this share of the average wait after the wait began (less its lateness): an
    answer that comes sooner wakes it, at the cost of the wake-up polling saves."""
    NAP_MIN = 50e-6
    """A shorter nap is not taken: it would save less CPU than its timer costs."""
    NAP_LIMIT = 500e-6
    """Waits longer than this on average neither nap nor poll: they block."""
    LATE = 50e-6
    """How late a nap is taken to end until naps have measured it: Linux's default slack."""

    def __init__(self, cap: float = POLL_CAP, *, enabled: bool | None = None,
                 naps: bool = True) -> None:
        self.cap = cap
        self.enabled = (_ENABLED if enabled is None else enabled) and cap > 0
        self.naps = naps
        """Whether a long wait may nap before it polls (its socket can be waited on)."""
        self.average = cap / 2  # start out polling: the first waits say whether that pays
        self.late = self.LATE  # how late this end's naps ended, on average
        self._longest = 2 * (self.NAP_LIMIT if naps else cap)  # the longest wait counted
        self.misses = 0  # polls in a row that ended without their frame
        self._skip = 0  # waits left that block at once
        self._slot = _polling

    def nap(self) -> float:
        """Seconds the next wait sleeps before it polls (0: it polls at once)."""
        if not self.naps or self.average > self.NAP_LIMIT:
            return 0.0
        nap = self.NAP_SHARE * self.average - self.late
        return nap if nap >= self.NAP_MIN else 0.0

    def budget(self, now: float) -> float:
        """Seconds the wait starting at ``now`` (``time.monotonic()``) may poll, after its
        ``nap()``: never more than the cap, and 0 for a wait that blocks at once."""
        if not self.enabled or now < _paused_until:
            return 0.0
        nap = self.nap()
        if self.average > self.cap and not nap:
            return 0.0
        if self._skip:
            self._skip -= 1
            return 0.0
        return min(self.cap, self.STRETCH * self.average - nap)

    def napped(self, late: float) -> None:
        """A nap that ran out ended ``late`` seconds after it was due."""
        self.late += self.ALPHA * (min(max(late, 0.0), self.NAP_LIMIT) - self.late)

    def polled(self, seconds: float, cpu: float, now: float, caught: bool,
               others: float = 0.0) -> None:
        """A poll's timed part (after ``UNCLOCKED``; 0 for a poll over before it) took
        ``seconds``, of which ``cpu`` on a CPU, and ended at ``now``, with its frame
        (``caught``) or without; meanwhile the process's other threads ran for ``others``
        seconds (measured only for a poll kept waiting, else 0).

        A miss is CPU spent for nothing, and where the peer shares this CPU (a crowded
        machine, or one CPU left to both) it is worse: the peer runs only once the poll gives
        up, so the frame arrives just after it. Misses in a row make ever more waits block at
        once. A poll kept waiting while its own process's threads ran was kept from the
        interpreter's lock, not from a CPU (calls in flight on other threads): the machine is
        not crowded, but this end's polling takes the lock from them, so it backs off as after
        a miss, and the process's other ends poll on."""
        global _paused_until, _kept_waiting, _pause
        if seconds >= self.JUDGED:
            kept = cpu < self.CROWDED * seconds
            if kept and others >= self.CROWDED * (seconds - cpu):
                caught = False  # kept by its own process: this end backs off, alone
                kept = False
            _kept_waiting += self.ALPHA * (kept - _kept_waiting)
            if kept and _kept_waiting > self.CROWDED_SHARE:
                _pause = min(self.PAUSE_MAX, 2 * _pause) or self.PAUSE_FIRST
                _paused_until = now + _pause
        elif caught:  # its frame came within moments while it had the CPU: not kept waiting
            _kept_waiting -= self.ALPHA * _kept_waiting
        if _kept_waiting <= self.CROWDED_SHARE:
            _pause = 0.0  # the crowding is over: the next pause is a short one again
        if caught:
            self.misses = 0
        else:
            self.misses += 1
            self._skip = min(self.MAX_SKIP, 1 << self.misses)

    def observe(self, waited: float) -> None:
        # A long wait (an idle connection) counts as just over the longest that naps or polls:
        # it turns polling off, and a few quick waits turn it back on.
        sample = min(waited, self._longest)
        self.average += self.ALPHA * (sample - self.average)

    def claim(self) -> bool:
        """Take the process's polling slot, if free; True if this end may poll now."""
        return self._slot.acquire(blocking=False)

    def release(self) -> None:
        self._slot.release()
