"""The one seam every effect and call goes through (``Tape``): record to a journal, replay from
one, or run detached.

``Recorder`` performs the real thing and writes what happened. ``Detached`` performs without
writing (a service restored from a journal alone, explored at a prompt: observing is not
acting). The replayer (``distdev.replayer``) is the same seam fed by the journal: it never
performs an effect or contacts a callee, it checks that the code asks for what the journal holds
and answers from it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
from msgspec.structs import astuple

from ..compartment import in_effect, next_callout_id
from ..journal import TOP_LEVEL, BundleFile, JournalWriter, Schedule
from ..membrane import ErrorInfo, dumps, error_info, to_wire

__all__ = ["Tape", "Recorder", "Detached", "CallFailed", "StopReplay", "PATCH_MARKER", "listed",
           "same"]


def listed(struct: msgspec.Struct) -> list[Any]:
    """A nested Struct in the array form its event's CBOR holds."""
    return list(astuple(struct))


class CallFailed(Exception):
    """An exception raised on the far side of a membrane, in its wire form."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class StopReplay(BaseException):
    """Unwinds a replay that reached its stopping point (``--until``, or a journal that ends
    inside a call). A BaseException so service code's ``except Exception`` cannot swallow it."""


class Tape(Protocol):
    """Where a service's effects and calls go: what each method is told, and what it answers."""

    replaying: bool

    def seq_of_next(self) -> int | None:
        """The journal seq the next record gets (None when nothing is written)."""
        ...

    def effect(self, kind: str, args: list[Any], real: Callable[[], Any]) -> Any:
        """The wire form of effect ``kind``'s value: ``real()`` performed and journaled, or
        the journal's answer; raises what the effect raised."""
        ...

    def output(self, stream: str, text: str) -> bool: ...

    def spawn(self, child: str, path: str, name: str | None) -> None: ...

    def source(self, file: BundleFile) -> None: ...

    def call_out(self, target: str, export: str, args: list[Any], kwargs: dict[str, Any],
                 perform: Callable[[int | str | None], Any]) -> Any:
        """The wire form of the call's result (``perform(call id)`` does the call), or
        ``CallFailed``."""
        ...

    def call_in(self, caller: str, chain: str, export: str, args: list[Any],
                kwargs: dict[str, Any], caller_seq: int | str | None = None) -> None: ...

    def returned(self, value: Any) -> None: ...

    def raised(self, info: ErrorInfo) -> None: ...

    def digest(self, changed: dict[str, list[str]], removed: list[str]) -> None:
        """The service's state digest here (only what changed since the last)."""
        ...

    def patched(self, change_id: str) -> bool:
        """Whether the code runs with change ``change_id`` here: recording, yes (and the
        journal says so from here on); replaying, only if the journal says so here."""
        ...

    def idle(self) -> bool:
        """Whether no call is open (a recorded journal may take a checkpoint here)."""
        ...

    def deprecated_patch(self, change_id: str) -> None:
        """Read past the journal's record of ``change_id`` if it is here; record nothing."""
        ...


PATCH_MARKER = "distdev.patched"
"""The effect kind that records, where live code first asked, that it had a change."""


class Recorder:
    """Performs effects and calls for real and journals them.

    Records are written by the call that holds the service's gate, so when calls interleave
    (``CallGate.interleave``) the journal is their schedule, linearized. The recorder follows
    it with the readers' model (``journal.Schedule``) and writes a ``switch`` where a call
    resumes and that model would name another: never for calls that nest, so a service that
    does not interleave writes none, and its recorder (``interleaving`` False, set by its
    service) keeps no schedule at all."""

    replaying = False
    interleaving = True
    """Whether calls may interleave here, so the schedule must be followed (the safe default
    until the service says)."""

    def __init__(self, writer: JournalWriter, numbered: int = 0,
                 answered: Callable[[str, int | str, list[Any], dict[str, Any], bool, Any], None]
                 | None = None) -> None:
        self.writer = writer
        self.answered = answered
        """Told each call that carried an id as its outcome is journaled (caller, caller_seq,
        args, kwargs, ok, value or ErrorInfo): a checkpoint taken right after it has it."""
        self._ids: dict[int, tuple[str, int | str, list[Any], dict[str, Any]]] = {}
        self.numbered = numbered
        """How many more records the service wrote than its journal holds (records a
        compaction left out): calls out are numbered by the record's seq in the journal as
        first written, so that a callee never takes a new call for an earlier one."""
        self._schedule = Schedule()
        self._calls = threading.local()  # this thread's open calls here (call-in seqs)
        self._nested: list[int] = []
        """The open calls of a service that does not interleave (they nest), innermost last."""

    def _open_calls(self) -> list[int]:
        calls: list[int] | None = getattr(self._calls, "open", None)
        if calls is None:
            calls = self._calls.open = []
        return calls

    def _running_here(self) -> int:
        """The call this thread runs here (a call-in's seq, or ``TOP_LEVEL``)."""
        if not self.interleaving:
            return TOP_LEVEL  # unused: calls nest, and the schedule is not followed
        calls = self._open_calls()
        return calls[-1] if calls else TOP_LEVEL

    def _resumed(self, call: int) -> None:
        """``call`` goes on after its call-out: say so if the journal would not know."""
        if self.interleaving and self._schedule.running != call:
            self._write("switch", call)
            self._schedule.switched(call)

    def seq_of_next(self) -> int | None:
        return self.writer.next_seq

    def _first_seq_of_next(self) -> int | None:
        """The seq the next record has in the journal as first written."""
        return self.writer.next_seq + self.numbered

    def follow(self, schedule: Schedule) -> None:
        """Go on from ``schedule``: the journal this appends to was left with calls open."""
        self._schedule = schedule

    def continue_calls(self, calls: list[int]) -> None:
        """This thread goes on with ``calls`` (open, innermost last), begun before the journal
        was reopened; it has the gate now, so say so if the journal would name another."""
        self._calls.open = list(calls)
        if calls:
            self._resumed(calls[-1])

    def _write(self, kind: str, *fields: Any) -> None:
        """Append ``[kind, seq, *fields]``; nested Structs must be given as lists (``_listed``)."""
        writer = self.writer
        writer.write_fields([kind, writer.next_seq, *fields])

    def effect(self, kind: str, args: list[Any], real: Callable[[], Any]) -> Any:
        with in_effect():
            try:
                value = real()
            except Exception as exc:
                self._write("effect", kind, args, None, listed(error_info(exc)))
                raise
        wire = to_wire(value, lambda: f"the value of effect {kind}")
        self._write("effect", kind, args, wire, None)
        return wire

    def output(self, stream: str, text: str) -> bool:
        self._write("output", stream, text)
        return True

    def spawn(self, child: str, path: str, name: str | None) -> None:
        self._write("spawn", child, path, name)

    def source(self, file: BundleFile) -> None:
        self._write("source", listed(file))

    def call_out(
        self, target: str, export: str, args: list[Any], kwargs: dict[str, Any],
        perform: Callable[[int | str | None], Any],
    ) -> Any:
        """Journal the call-out, then ``perform(its id)``: the id lets a network transport
        re-send the call after a crash without it running twice (``next_callout_id``).

        Whatever ``perform`` raises is the call's outcome, journaled as its error: a transport
        that timed out, was refused or lost its peer answers the code as a callee's exception
        would, and a replay answers the same (a call-out left without an outcome would make
        the journal unreplayable)."""
        call_id = next_callout_id(self._first_seq_of_next())
        self._write("call-out", target, export, args, kwargs)
        return self.complete_call_out(call_id, perform)

    def complete_call_out(self, call_id: int | str | None,
                          perform: Callable[[int | str | None], Any]) -> Any:
        """``perform(call_id)`` for the call-out journaled last by this thread's call, and
        journal its outcome (``call_out``; and a call-out that had none when its journal was
        reopened, sent again)."""
        mine = self._running_here()
        try:
            result = perform(call_id)
        except CallFailed as failed:
            self._resumed(mine)
            self._write("error", listed(failed.info))
            raise
        except Exception as exc:
            self._resumed(mine)
            info = error_info(exc)
            self._write("error", listed(info))
            raise CallFailed(info) from None
        except BaseException:
            self._resumed(mine)  # what this call writes next is still its own
            raise
        self._resumed(mine)
        self._write("result", result)
        return result

    def call_in(self, caller: str, chain: str, export: str, args: list[Any],
                kwargs: dict[str, Any], caller_seq: int | str | None = None) -> None:
        seq = self.writer.next_seq
        self._write("call-in", caller, chain, export, args, kwargs, caller_seq)
        if caller_seq is not None and self.answered is not None:
            self._ids[seq] = (caller, caller_seq, args, kwargs)
        if self.interleaving:
            self._schedule.opened(seq)
            self._open_calls().append(seq)
        else:
            self._nested.append(seq)  # calls nest: the last one open is the one to end

    def returned(self, value: Any) -> None:
        self._write("return", value)
        self._ended(True, value)

    def raised(self, info: ErrorInfo) -> None:
        self._write("raise", listed(info))
        self._ended(False, info)

    def _ended(self, ok: bool, outcome: Any) -> None:
        if self.interleaving:
            ended = self._schedule.closed()
            calls = self._open_calls()
            if calls:
                calls.pop()
        else:
            ended = self._nested.pop() if self._nested else None
        if ended is not None and ended in self._ids and self.answered is not None:
            self.answered(*self._ids.pop(ended), ok, outcome)

    def digest(self, changed: dict[str, list[str]], removed: list[str]) -> None:
        self._write("digest", changed, removed)

    def patched(self, change_id: str) -> bool:
        self._write("effect", PATCH_MARKER, [change_id], True, None)
        return True

    def deprecated_patch(self, change_id: str) -> None:
        pass

    def idle(self) -> bool:
        # Calls that nest leave the gate's depth to say it (``CallGate.alone``).
        return not self.interleaving or not self._schedule.open


class Detached(Recorder):
    """Performs effects and calls for real and writes nothing."""

    def __init__(self) -> None:
        self._schedule = Schedule()
        self._calls = threading.local()

    def idle(self) -> bool:
        return False  # nothing is written, so there is no checkpoint to take

    def _write(self, kind: str, *fields: Any) -> None:
        pass

    def call_in(self, caller: str, chain: str, export: str, args: list[Any],
                kwargs: dict[str, Any], caller_seq: int | str | None = None) -> None:
        pass  # nothing is written, so there is no schedule to follow

    def returned(self, value: Any) -> None:
        pass

    def raised(self, info: ErrorInfo) -> None:
        pass

    def seq_of_next(self) -> int | None:
        return None

    def _first_seq_of_next(self) -> int | None:
        return None


def same(a: Any, b: Any) -> bool:
    """Whether two wire values are the same (lists and tuples, NaNs, and a str with lone
    surrogates against the escaped form a journal holds compare by encoding)."""
    if a == b:
        return True
    try:
        return bool(dumps(a) == dumps(b))
    except Exception:
        return False
