"""Bringing a service process back from its state journal.

A journal may end inside a call: the process died after writing some of the call's events but
before its reply (which waits for durability) left. Nobody saw that call finish, so the journal
is cut back to where the service was last idle — the cut bytes kept in a side file — and the
caller's re-sent call runs again from the start. Its outgoing calls get the same call-out seqs as
before, so callees that already ran them answer from their own records instead of running them
twice (see ``DedupTable``).

A service that interleaves its calls may have answered other calls after the unfinished one
began: their callers were told they ran, so nothing after that call may be cut. Such a journal
is replayed to its end and each call still open there goes on live from where it stood
(``Restore.resume_open``): a call-out that had no outcome is sent again under its id, and
a caller's re-sent call waits for the resumed one's outcome instead of running it twice.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..journal import (
    CallIn,
    Checkpoint,
    JournalContents,
    Raise,
    Return,
    Schedule,
    cut_journal,
    read_from_checkpoint,
    read_journal,
    repair_journal,
)
from ..membrane import ErrorInfo
from ..replayer import checkpoint_answered
from ..service import listed, same

KEPT_PER_CALLER = 1000
"""How many answered calls of each caller a checkpoint keeps for re-sends: a caller re-sends
only the calls of its own unfinished call, cut back after a crash (see ``DedupTable``)."""

__all__ = ["Restore", "restorable_journal", "last_idle_offset", "answered_after", "DedupTable",
           "StillRunning"]



@dataclasses.dataclass(frozen=True)
class Restore:
    """A state journal ready to restore from, and how."""

    contents: JournalContents
    resume_open: bool
    """The journal ends inside calls that must go on live (it could not be cut back)."""


def restorable_journal(path: Path, log: Any, *, whole: bool = False) -> Restore:
    """Read the state journal, cutting a torn tail aside, and an unfinished call too unless
    calls answered after it began would be cut with it. Unless ``whole``, only what a restore
    needs is read when the journal says where its last checkpoint is (``read_from_checkpoint``),
    so a restart does not grow with its age."""
    contents = _read(path, whole)
    if contents.torn is not None:
        report = repair_journal(path)
        log(f"cut a torn final record aside ({report.cut_bytes} bytes to {report.side_file})")
        contents = _read(path, whole)
    idle = last_idle_offset(contents)
    if idle == contents.size:
        return Restore(contents, resume_open=False)
    answered = answered_after(contents, idle)
    if answered:
        log(f"the journal ended inside interleaved calls, after {answered} call(s) of other "
            "chains had ended: the calls still open go on from where they stood")
        return Restore(contents, resume_open=True)
    side = cut_journal(path, path.read_bytes(), idle)
    log(f"the journal ended inside a call; cut it back to the last idle point ({side})")
    return Restore(_read(path, whole), resume_open=False)


def _read(path: Path, whole: bool) -> JournalContents:
    contents = None if whole else read_from_checkpoint(path)
    return contents if contents is not None else read_journal(path)


def last_idle_offset(contents: JournalContents) -> int:
    """Where the journal last had no call open at all. Calls that interleave end in any
    order, so this counts open calls; it never asks which one ended."""
    depth = 0
    idle = contents.size
    for event, offset in zip(contents.events, contents.offsets):
        if type(event) is CallIn:
            if depth == 0:
                idle = offset
            depth += 1
        elif type(event) in (Return, Raise):
            depth -= 1
    return idle if depth else contents.size


def answered_after(contents: JournalContents, idle: int) -> int:
    """How many calls that began after ``idle`` ended, on chains other than those of the calls
    still open at the end: with interleaving, calls a cut would lose although they finished."""
    schedule = Schedule()  # no call is open at ``idle``: the model starts afresh there
    calls: dict[int, CallIn] = {}
    ended: list[CallIn] = []
    for event, offset in zip(contents.events, contents.offsets):
        if offset < idle:
            continue
        seq = schedule.see(event)
        if isinstance(event, CallIn):
            calls[event.seq] = event
        elif isinstance(event, (Return, Raise)) and seq is not None and seq in calls:
            ended.append(calls.pop(seq))
    unfinished = {call.chain for call in calls.values()}
    return sum(1 for call in ended if call.chain not in unfinished)


class StillRunning(Exception):
    """A re-sent call's first delivery was still running when the caller stopped waiting."""


@dataclasses.dataclass(slots=True)
class _Entry:
    args: list[Any]
    kwargs: dict[str, Any]
    ended: bool = False
    ok: bool = False
    outcome: Any = None
    waiters: threading.Event | None = None
    """Made by the first re-send that finds the call running and waits for its end: set once
    it ends. Almost no call meets one, and an ``Event`` costs a lock and a condition to make
    (with setting it, a quarter of a served call's own work)."""


class DedupTable:
    """Outcomes of calls that arrived with an id (caller, caller's call-out seq), and the calls
    with an id that are running now.

    A re-sent call gets the recorded outcome; one re-sent while its first delivery still runs
    (its caller lost the connection, or restarted, meanwhile) waits for that outcome instead of
    running a second time. A call that reuses an id with other arguments comes from a caller
    that crashed and, cut back to its last idle point, went on differently: the call recorded
    under that id was never acknowledged to anyone, so the new one runs.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int | str], _Entry] = {}
        self._answered: dict[str, OrderedDict[int | str, None]] = {}
        """Each caller's answered call ids, oldest first: no more than ``KEPT_PER_CALLER``, as
        a checkpoint keeps, so that a live service answers the re-sends a restarted one would,
        and neither its memory nor its checkpoints grow with the calls it has served. An
        ``OrderedDict``, as its oldest goes in constant time: a ``dict``'s first key, once
        keys were deleted from its front, is found past every deleted slot."""
        self._lock = threading.Lock()

    @classmethod
    def from_journal(cls, contents: JournalContents) -> DedupTable:
        """The outcomes the journal holds — from its last checkpoint on, that checkpoint's
        kept calls and the calls answered after it; the calls still open at its end are
        running (they go on live, ``Restore.resume_open``), and their ``put`` ends them."""
        table = cls()
        schedule = Schedule()  # which call an outcome ends, even when calls interleaved
        calls: dict[int, CallIn] = {}
        for event in contents.events:
            if type(event) is Checkpoint:  # the calls before it are in it (no call is open)
                table, calls = cls(), {}
                for caller, caller_seq, args, kwargs, ok, outcome in checkpoint_answered(event):
                    table.put(caller, caller_seq, args, kwargs, ok, outcome)
                continue
            seq = schedule.see(event)
            if isinstance(event, CallIn):
                calls[event.seq] = event
            elif isinstance(event, (Return, Raise)) and seq is not None and seq in calls:
                call = calls.pop(seq)
                ok, outcome = ((True, event.value) if isinstance(event, Return)
                               else (False, event.error))
                table.put(call.caller, call.caller_seq, call.args, call.kwargs, ok, outcome)
        for call in calls.values():
            table.claim(call.caller, call.caller_seq, call.args, call.kwargs)
        return table

    def claim(self, caller: str, caller_seq: int | str | None, args: list[Any],
              kwargs: dict[str, Any], *, deadline: float | None = None
              ) -> tuple[bool, Any] | None:
        """The recorded (ok, outcome) of this very call — waited for, up to ``deadline``
        (wall clock), if it is running — or None: it must run, and this caller runs it (its
        ``put`` records the outcome; ``abandon`` if it ends without one). Raises
        ``StillRunning`` at the deadline."""
        if caller_seq is None:
            return None
        key = (caller, caller_seq)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not (same(entry.args, args) and same(entry.kwargs, kwargs)):
                self._entries[key] = _Entry(args, kwargs)
                answered = self._answered.get(caller)
                if answered:
                    answered.pop(caller_seq, None)  # it runs: not answered
                return None
            if entry.ended:
                ended = None
            elif entry.waiters is None:
                ended = entry.waiters = threading.Event()
            else:
                ended = entry.waiters
        if ended is not None:
            timeout = None if deadline is None else max(0.0, deadline - time.time())
            if not ended.wait(timeout):
                raise StillRunning(f"call {caller_seq} from {caller}")
        if entry.outcome is _ABANDONED:
            return self.claim(caller, caller_seq, args, kwargs, deadline=deadline)
        return entry.ok, entry.outcome

    def kept(self) -> list[list[Any]]:
        """What a checkpoint keeps of the table: each caller's answered calls (its latest
        ``KEPT_PER_CALLER``), as ``Checkpoint.answered`` holds them."""
        with self._lock:
            entries = [(caller, caller_seq, self._entries[(caller, caller_seq)])
                       for caller, ids in self._answered.items() for caller_seq in ids]
        return [[caller, caller_seq, entry.args, entry.kwargs, entry.ok,
                 entry.outcome if entry.ok else listed(entry.outcome)]
                for caller, caller_seq, entry in entries]

    def put(self, caller: str, caller_seq: int | str | None, args: list[Any], kwargs: dict[str, Any],
            ok: bool, outcome: Any | ErrorInfo) -> None:
        """Record a call's outcome; a re-send waiting for it gets it."""
        if caller_seq is None:
            return
        with self._lock:
            entry = self._entries.get((caller, caller_seq))
            if entry is None or entry.ended or not (
                    same(entry.args, args) and same(entry.kwargs, kwargs)):
                entry = self._entries[(caller, caller_seq)] = _Entry(args, kwargs)
            entry.ok, entry.outcome, entry.ended = ok, outcome, True
            self._answer(caller, caller_seq)
            waiters = entry.waiters
        if waiters is not None:
            waiters.set()

    def _answer(self, caller: str, caller_seq: int | str) -> None:
        """``caller_seq`` is the caller's latest answer; its oldest beyond the bound goes."""
        ids = self._answered.get(caller)
        if ids is None:
            ids = self._answered[caller] = OrderedDict()
        ids.pop(caller_seq, None)
        ids[caller_seq] = None
        if len(ids) > KEPT_PER_CALLER:
            oldest, _ = ids.popitem(last=False)
            del self._entries[(caller, oldest)]

    def abandon(self, caller: str, caller_seq: int | str | None) -> None:
        """A claimed call ended without an outcome (the service is stopping): a re-send runs
        it afresh."""
        if caller_seq is None:
            return
        with self._lock:
            entry = self._entries.get((caller, caller_seq))
            if entry is None or entry.ended:
                return
            del self._entries[(caller, caller_seq)]
            entry.outcome, entry.ended = _ABANDONED, True
            waiters = entry.waiters
        if waiters is not None:
            waiters.set()

    def get(self, caller: str, caller_seq: int | str | None, args: list[Any],
            kwargs: dict[str, Any]) -> tuple[bool, Any] | None:
        """The recorded (ok, outcome) of this very call if it ended, else None."""
        if caller_seq is None:
            return None
        with self._lock:
            entry = self._entries.get((caller, caller_seq))
        if entry is None or not entry.ended or entry.outcome is _ABANDONED or not (
                same(entry.args, args) and same(entry.kwargs, kwargs)):
            return None
        return entry.ok, entry.outcome


_ABANDONED = object()
"""The outcome of a claimed call that ended without one."""
