"""Bringing a service process back from its state journal.

A journal may end inside a call: the process died after writing some of the call's events but
before its reply (which waits for durability) left. Nobody saw that call finish, so the journal
is cut back to where the service was last idle — the cut bytes kept in a side file — and the
caller's re-sent call runs again from the start. Its outgoing calls get the same call-out seqs as
before, so callees that already ran them answer from their own records instead of running them
twice (see ``DedupTable``).
"""

from __future__ import annotations

import threading
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


def restorable_journal(path: Path, log: Any, *, whole: bool = False) -> JournalContents:
    """Read the state journal, cutting a torn tail and an unfinished call aside. Unless
    ``whole``, only what a restore needs is read when the journal says where its last
    checkpoint is (``read_from_checkpoint``), so a restart does not grow with its age."""
    contents = _read(path, whole)
    if contents.torn is not None:
        report = repair_journal(path)
        log(f"cut a torn final record aside ({report.cut_bytes} bytes to {report.side_file})")
        contents = _read(path, whole)
    idle = _last_idle_offset(contents)
    if idle < contents.size:
        answered = _answered_after(contents, idle)
        side = cut_journal(path, path.read_bytes(), idle)
        log(f"the journal ended inside a call; cut it back to the last idle point ({side})")
        if answered:
            log(f"WARNING: {answered} call(s) of other chains ran to their end after that point, "
                "while the unfinished call waited (the service interleaves its calls), and were "
                f"cut with it: their callers may have been answered. They are in {side}.")
        contents = _read(path, whole)
    return contents


def _read(path: Path, whole: bool) -> JournalContents:
    contents = None if whole else read_from_checkpoint(path)
    return contents if contents is not None else read_journal(path)


def _last_idle_offset(contents: JournalContents) -> int:
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


def _answered_after(contents: JournalContents, idle: int) -> int:
    """How many calls that began after ``idle`` ended, on chains other than those of the calls
    still open at the end: with interleaving, calls the cut loses although they finished."""
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


class DedupTable:
    """Outcomes of calls that arrived with an id (caller, caller's call-out seq).

    A re-sent call gets the recorded outcome. A call that reuses an id with other arguments
    comes from a caller that crashed and, cut back to its last idle point, went on differently:
    the call recorded under that id was never acknowledged to anyone, so the new one runs.
    """

    def __init__(self) -> None:
        self._outcomes: dict[tuple[str, int | str], tuple[list[Any], dict[str, Any], bool, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_journal(cls, contents: JournalContents) -> DedupTable:
        """The table a journal's records make: from its last checkpoint on, that checkpoint's
        kept calls and the calls answered after it."""
        table = cls()
        schedule = Schedule()  # which call an outcome ends, even when calls interleaved
        calls: dict[int, CallIn] = {}
        for event in contents.events:
            if type(event) is Checkpoint:  # the calls before it are in it (no call is open)
                table = cls()
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
        return table

    def get(self, caller: str, caller_seq: int | str | None, args: list[Any],
            kwargs: dict[str, Any]) -> tuple[bool, Any] | None:
        """The recorded (ok, outcome) of this very call, or None if it must run."""
        if caller_seq is None:
            return None
        with self._lock:
            known = self._outcomes.get((caller, caller_seq))
        if known is None or not (same(known[0], args) and same(known[1], kwargs)):
            return None
        return known[2], known[3]

    def kept(self) -> list[list[Any]]:
        """What a checkpoint keeps of the table: each caller's latest ``KEPT_PER_CALLER``
        answered calls, as ``Checkpoint.answered`` holds them."""
        with self._lock:
            entries = list(self._outcomes.items())
        per_caller: dict[str, int] = {}
        kept: list[list[Any]] = []
        for (caller, caller_seq), (args, kwargs, ok, outcome) in reversed(entries):
            if per_caller.get(caller, 0) >= KEPT_PER_CALLER:
                continue
            per_caller[caller] = per_caller.get(caller, 0) + 1
            kept.append([caller, caller_seq, args, kwargs, ok,
                         outcome if ok else listed(outcome)])
        kept.reverse()
        return kept

    def put(self, caller: str, caller_seq: int | str | None, args: list[Any], kwargs: dict[str, Any],
            ok: bool, outcome: Any | ErrorInfo) -> None:
        if caller_seq is not None:
            with self._lock:
                self._outcomes[(caller, caller_seq)] = (args, kwargs, ok, outcome)
