"""The replaying tape: the seam every effect and call goes through, fed by a journal.

It never performs an effect or contacts a callee: it checks that the code asks for what the
journal holds, in order, and answers from it. The first difference is a divergence, raised with
the event, what the journal expected, what the code did and the line that did it.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..compartment import next_callout_id
from ..errors import ReplayDivergenceError
from ..journal import (
    READ_PAST,
    TOP_LEVEL,
    BundleFile,
    CallIn,
    CallOut,
    Checkpoint,
    Effect,
    ErrorIn,
    Event,
    Output,
    Raise,
    ResultIn,
    Return,
    Schedule,
    Spawn,
    StateDigest,
    Switch,
    describe,
)
from ..membrane import ErrorInfo, rebuild_exception, wire_repr
from ..service import PATCH_MARKER, CallFailed, CallGate, Service, StopReplay, same
from ._strands import Strands, threaded_calls

__all__ = ["Replayer", "LiveTape"]

_PASSIVE = tuple(kind for kind in READ_PAST if kind is not StateDigest and kind is not Checkpoint)
"""What the replay reads past as it is; a digest it reads past too, checking the state (and a
checkpoint, checking the state against its whole digest)."""
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _without_addresses(message: str) -> str:
    """An error message with object addresses (``<Order object at 0x7f...>``) left out: they
    differ in every process, and a replay of the same code must not be told it diverged."""
    return _ADDRESS.sub(" at 0x...", message)


class Replayer:
    """Serves a service's effects and calls from its journal, checking each against it."""

    replaying = True

    def __init__(self, service: Service, events: list[Event], start: int, until: int | None,
                 before_event: Callable[[Service, Event], None] | None = None, *,
                 resume_open: bool = False):
        self.service = service
        self.before_event = before_event
        self.events = events
        self.pos = start
        self.until = len(events) if until is None else min(until, len(events))
        self.divergence: ReplayDivergenceError | None = None
        self.expected_state: dict[str, list[str]] = {}
        self.same_code = True
        """Whether the code replayed is the journal's own (then a divergence is not a change)."""
        self.code_since = 0
        """The seq from which the journal's own code recorded it: digests before it are from the
        code an upgrade replaced (``code_changed_at``), and hold that code's state."""
        self._digested_before = 0  # the seq of the last digest checked
        self.stopped_inside_call = False
        self.state_note: str | None = None
        """Replaying other code: where its state first differs from the journal's digests."""
        self.schedule = Schedule()
        """Which call the records read so far belong to (the journal's own model; followed only
        when calls interleaved: otherwise it is the stack of calls being delivered)."""
        self.resume_open = resume_open and until is None
        """Calls still open at the journal's end wait there to go on live (``resume``),
        instead of unwinding: each runs on a thread of its own, so the replay can end."""
        threaded = threaded_calls(events, open_at_end=self.resume_open)
        self.strands = Strands(threaded, self.schedule, self._stopped) if threaded else None
        """The threads of the calls that interleaved (None: every call nests, on one thread)."""
        self._local = threading.local()
        self._live: _LiveTape | None = None
        self.numbered = 0
        """How many records of the service's history come before ``events``' own numbering
        (after a checkpoint of a compacted journal): call-outs are numbered as first recorded."""

    @property
    def delivering(self) -> list[tuple[int, str]]:
        """(call-in seq, export) of the calls being re-delivered on this thread, innermost
        last."""
        calls: list[tuple[int, str]] | None = getattr(self._local, "calls", None)
        if calls is None:
            calls = self._local.calls = []
        return calls

    def _strand(self) -> int:
        """The call this thread runs (``TOP_LEVEL``: the replay's own thread, between calls)."""
        calls = self.delivering
        return calls[-1][0] if calls else TOP_LEVEL

    def _stopped(self) -> BaseException:
        """What a waiting call unwinds with once the replay stops."""
        if self.divergence is not None:
            return self.divergence
        failure = self.strands.failure if self.strands is not None else None
        if failure is not None and not isinstance(failure, StopReplay):
            return failure
        return StopReplay()

    def seq_of_next(self) -> int | None:
        return None  # a replay writes nothing

    def digest(self, changed: dict[str, list[str]], removed: list[str]) -> None:
        pass  # a replay checks digests (``_check_state``); it records none

    def idle(self) -> bool:
        return False  # a replay writes no checkpoint

    # -- cursor -------------------------------------------------------------------------

    @property
    def at_end(self) -> bool:
        return self._skip_output() >= self.until

    def _skip_output(self) -> int:
        """Skip what the code is not asked to reproduce: output (the code may print more or
        less than it did) and source records (read before replay starts); check the state
        against each digest on the way."""
        while self.pos < self.until:
            event = self.events[self.pos]
            kind = type(event)
            if kind is StateDigest:
                self._check_state(event)  # type: ignore[arg-type]
            elif kind is Checkpoint:
                self.expected_state = {}  # its digest is whole, not what changed
                self._check_state(StateDigest(event.seq, event.digest))  # type: ignore[union-attr]
            elif kind not in _PASSIVE:
                break
            self.pos += 1
        return self.pos

    def _check_state(self, event: StateDigest) -> None:
        """The state here must be the state the journal recorded: the first global that
        differs is a divergence, named with what it holds now and what it held."""
        if self.divergence is not None:
            raise self.divergence  # the first one, even if the code caught it
        self.expected_state = self._recorded_state(event)
        self._digested_before = event.seq
        differing = self._differing(self.expected_state)
        if differing and (not self.same_code or event.seq < self.code_since):
            # Other code may hold other state by design (a fix, a new constant): replayed
            # against history, what counts is that it accepts every event; the state it ends
            # in is its own. The first difference is kept, to be reported.
            if self.state_note is None:
                name, was, held = differing[0]
                self.state_note = (f"from event {event.seq} on, its state is not the state the "
                                   f"journal's code had: global {name!r} {held} (it {was})")
            return
        if differing:
            name, was, held = differing[0]
            self.pos += 1  # reported at this digest, not after it
            self.divergence = ReplayDivergenceError(
                service=self.service.id, seq=event.seq,
                expected=f"global {name!r} as recorded ({was})",
                actual=f"ended in other state: {name!r} {held}",
                location=self.service.entry, same_code=self.same_code, in_state=True,
            )
            raise self.divergence

    @property
    def digested_state(self) -> dict[str, list[str]]:
        """What the journal's digests add up to at the end, for the service to record its next
        digest against. Nothing once the code changed after the last digest (``distdev
        upgrade``): what the old code's digests held is not carried past the change, so the new
        code's first digest is whole (``_recorded_state``)."""
        if self._digested_before < self.code_since:
            return {}
        return dict(self.expected_state)

    def _recorded_state(self, event: StateDigest) -> dict[str, list[str]]:
        """The whole digest the journal holds at ``event`` (each digest records changes).
        The first digest after the code changed is whole (a restored service digests every
        global first): what the old code's digests held is not carried past it."""
        first_of_new_code = self._digested_before < self.code_since < event.seq
        recorded = {} if first_of_new_code else dict(self.expected_state)
        recorded.update(event.changed)
        for name in event.removed:
            recorded.pop(name, None)
        return recorded

    def _differing(self, recorded: dict[str, list[str]]) -> list[tuple[str, str, str]]:
        """(global, what it held, what it holds) for each global unlike ``recorded``."""
        actual = self.service.state_digest()
        differing = []
        for name in sorted(set(recorded) | set(actual)):
            want, have = recorded.get(name), actual.get(name)
            if want is not None and have is not None and want[0] == have[0]:
                continue
            differing.append((name, "did not exist" if want is None else f"held {want[1]}",
                              "is gone" if have is None else f"holds {have[1]}"))
        return differing

    def _state_after_this_call(self) -> str | None:
        """When a call's outcome diverges and the journal digested the state right after it:
        the globals that already differ from that digest, which usually say why (a global
        changed from outside the journal)."""
        pos = self.pos
        while pos < self.until and type(self.events[pos]) in _PASSIVE:
            pos += 1
        if pos >= self.until or type(self.events[pos]) is not StateDigest:
            return None
        digest: StateDigest = self.events[pos]  # type: ignore[assignment]
        differing = self._differing(self._recorded_state(digest))
        if not differing:
            return None
        named = "; ".join(f"global {name!r} {was} there and {held} here"
                          for name, was, held in differing[:3])
        return (f"The state already differs from the digest the journal recorded after this "
                f"call (event {digest.seq}): {named}.")

    def _next(self) -> Event:
        if self.divergence is not None:
            raise self.divergence
        if self.strands is not None and self.strands.halted:
            raise self._stopped()  # a call unwinding reads nothing more
        if self._skip_output() >= self.until:
            at_end = self.until == len(self.events)
            if at_end and not self.same_code:
                # Other code that asks for more than the journal holds does something else.
                self.diverge(None, "went on after the journal's last event")
            self.stopped_inside_call = at_end
            raise StopReplay()
        event = self.events[self.pos]
        if self.before_event is not None:
            self.before_event(self.service, event)  # on the service's thread, frames live
        self.pos += 1
        if self.strands is not None:  # a journal without a switch: calls nest, as they run
            self.schedule.see(event)
        return event

    def diverge(self, event: Event | None, actual: str, location: str | None = None,
                state: str | None = None) -> None:
        """Record and raise a divergence. It stays raised: service code that catches it gets it
        again at its next effect or call, and the replay as a whole fails with it. ``state``:
        what the state digest adds (the globals that already differ)."""
        if self.divergence is not None:
            raise self.divergence  # the first one, even if the code caught it
        seq = event.seq if event is not None else self.pos
        expected = describe(event) if event is not None else "nothing more"
        self.divergence = ReplayDivergenceError(
            service=self.service.id,
            seq=seq,
            expected=expected,
            actual=actual,
            location=location or self.service.code_location(),
            same_code=self.same_code,
            state=state,
        )
        raise self.divergence

    def _expect(self, cls: type[Event], doing: Callable[[], str],
                location: Callable[[], str | None] | None = None) -> Any:
        event = self._next()
        if type(event) is not cls:
            self.diverge(event, doing(), location() if location is not None else None)
        return event

    # -- the seam -----------------------------------------------------------------------

    def effect(self, kind: str, args: list[Any], real: Callable[[], Any]) -> Any:
        """The journal's answer to effect ``kind``; ``real`` is never called."""
        def doing() -> str:
            return f"asked for effect {kind}({', '.join(map(wire_repr, args))})"

        live = self._live_here()
        if live is not None:
            return live.effect(kind, args, real)
        event: Effect = self._expect(Effect, doing)
        if event.effect != kind or not same(event.args, args):
            self.diverge(event, doing())
        if event.error is not None:
            raise rebuild_exception(event.error, f"effect {kind}", self.service, effect=True)
        return event.value

    def patched(self, change_id: str) -> bool:
        """True if the journal recorded, here, that live code first asked for ``change_id``
        (read, then); else False: this history was recorded before the code had it."""
        live = self._live_here()
        if live is not None:
            return live.patched(change_id)
        if self._skip_output() < self.until and self._is_patch(self.events[self.pos], change_id):
            self._next()
            return True
        return False

    def deprecated_patch(self, change_id: str) -> None:
        if self._skip_output() < self.until and self._is_patch(self.events[self.pos], change_id):
            self._next()

    @staticmethod
    def _is_patch(event: Event, change_id: str) -> bool:
        return isinstance(event, Effect) and event.effect == PATCH_MARKER and event.args == [
            change_id]

    def output(self, stream: str, text: str) -> bool:
        live = self._live_here()
        if live is not None:
            return live.output(stream, text)
        if self.pos < self.until and type(self.events[self.pos]) is Output:
            self.pos += 1
        return False

    def source(self, file: BundleFile) -> None:
        pass

    def spawn(self, child: str, path: str, name: str | None) -> None:
        def doing() -> str:
            return f"created service {child} from {path}"

        event: Spawn = self._expect(Spawn, doing)
        if event.child != child or event.path != path:
            self.diverge(event, doing())

    def call_out(
        self, target: str, export: str, args: list[Any], kwargs: dict[str, Any],
        perform: Callable[[int | str | None], Any],
    ) -> Any:
        def doing() -> str:
            return f"called {target}.{export}({_call_args(args, kwargs)})"

        live = self._live_here()
        if live is not None:
            return live.call_out(target, export, args, kwargs, perform)
        event: CallOut = self._expect(CallOut, doing)
        if (event.target, event.export) != (target, export) or not (
            same(event.args, args) and same(event.kwargs, kwargs)
        ):
            self.diverge(event, doing())
        call_id = next_callout_id(event.seq + self.numbered)  # as the recording numbered it
        try:
            return self.await_result(lambda: f"waited for the result of {target}.{export}")
        except _OutcomePending as pending:
            # The journal ended while this call was out: send it again, under its id (a callee
            # that ran it answers from its records), the gate let go meanwhile.
            gate = pending.live.gate

            def send(call: int | str | None) -> Any:
                gate.suspend()
                try:
                    return perform(call)
                finally:
                    gate.resume()

            return pending.live.tape.complete_call_out(call_id, send)

    def await_result(self, doing: Callable[[], str]) -> Any:
        """Deliver re-entrant calls until the journal gives the pending call's outcome."""
        while True:
            if self._live_here() is not None:
                assert self._live is not None
                raise _OutcomePending(self._live)
            event = self._next()
            if isinstance(event, CallIn):
                self.deliver(event)
            elif isinstance(event, Switch):
                self.switch(event)
            elif isinstance(event, (ResultIn, ErrorIn)) and (
                    self.strands is None or self.schedule.running == self._strand()):
                if isinstance(event, ErrorIn):
                    raise CallFailed(event.error)
                return event.value
            else:
                self.diverge(event, doing())

    def deliver(self, event: CallIn) -> None:
        """Re-deliver a recorded incoming call; its recorded outcome is checked on the way out.
        A call the journal interleaved with others runs on a thread of its own, and this
        returns when the journal's turn comes back to the call that read it (``Strands``)."""
        strands = self.strands
        if strands is not None and event.seq in strands.threaded:
            strands.start(event.seq, lambda: self._deliver_here(event), self._strand())
        else:
            self._deliver_here(event)

    def _deliver_here(self, event: CallIn) -> None:
        self.delivering.append((event.seq, event.export))
        try:
            result = self.service.handle_call(
                event.caller, event.chain, event.export, event.args, event.kwargs,
                event.caller_seq,
            )
        except CallFailed as failed:
            self.delivering.pop()
            self._ended_live(event, False, failed.info)  # replaying: ``raised`` checked it
            return
        except BaseException:
            self.delivering.pop()
            raise
        self.delivering.pop()
        self._ended_live(event, True, result)

    def switch(self, event: Switch) -> None:
        """The journal resumes another call here: hand it the turn, and wait for this one's."""
        me = self._strand()
        if event.call == me:
            return
        strands = self.strands
        if strands is None or not strands.is_waiting(event.call):
            self.diverge(event, f"had no call {event.call} waiting for a call-out's result "
                         "there to resume (it had ended, or never began)")
        assert strands is not None
        strands.hand_to(event.call, me)

    def finish(self) -> None:
        """The replay ends: calls still waiting for a call-out's result unwind — unless
        they are to go on live (``resume``) and the replay reached the end whole."""
        if self.strands is None:
            return
        if self.resume_open and self.divergence is None and not self.strands.halted:
            return
        self.strands.unwind()

    # -- going on live --------------------------------------------------------------------

    def resume(self, tape: LiveTape, gate: CallGate,
               ended: Callable[[CallIn, bool, Any], None]) -> None:
        """Let the calls open at the journal's end go on live, each on its thread, recording
        to ``tape`` under ``gate`` like any live call; ``ended(call, ok, outcome)`` is told
        each one's outcome once it has one. Every record they ask for from here is past the
        journal's end, so this tape hands it to ``tape``."""
        if not self.resume_open or self.strands is None:
            return
        tape.follow(self.schedule)
        self._live = _LiveTape(tape, gate, ended)
        self.strands.go_live()

    def _live_here(self) -> LiveTape | None:
        """Past the journal's end of a restore that resumes its open calls: the live tape,
        once this thread's call has taken the gate (the first time, it waits here for
        ``resume``, giving the replay's thread the turn so that the replay can end)."""
        if not self.resume_open or self._skip_output() < self.until:
            return None
        live = self._live
        if live is None:
            strands = self.strands
            me = self._strand()
            if strands is None or me == TOP_LEVEL:
                return None  # nothing is open on this thread: the replay's end, as usual
            strands.park(me)
            live = self._live
            assert live is not None
        if not getattr(self._local, "live", False):
            self._local.live = True
            self._local.live_calls = [seq for seq, _ in self.delivering]
            live.gate.enter("")
            live.tape.continue_calls(self._local.live_calls)
        return live.tape

    def _ended_live(self, event: CallIn, ok: bool, outcome: Any) -> None:
        """A delivery on this thread ended: if it went on live, report its outcome, and let
        the gate go once the thread's last live call is over."""
        calls: list[int] | None = getattr(self._local, "live_calls", None)
        if not calls or event.seq not in calls:
            return
        calls.remove(event.seq)
        live = self._live
        assert live is not None
        if not calls:
            live.gate.exit()
        live.ended(event, ok, outcome)

    def outcome_location(self) -> str | None:
        """Where the outcome of the call being delivered comes from: its export's ``def``."""
        calls = self.delivering
        return self.service.export_location(calls[-1][1]) if calls else None

    def call_in(self, caller: str, chain: str, export: str, args: list[Any],
                kwargs: dict[str, Any], caller_seq: int | str | None = None) -> None:
        pass  # the replayer itself read the CallIn it is delivering

    def returned(self, value: Any) -> None:
        live = self._live_here()
        if live is not None:
            return live.returned(value)
        event: Return = self._expect(Return, lambda: f"returned {wire_repr(value)}",
                                     self.outcome_location)
        if not same(event.value, value):
            self.diverge(event, f"returned {wire_repr(value)}", self.outcome_location(),
                         state=self._state_after_this_call())

    def raised(self, info: ErrorInfo) -> None:
        def doing() -> str:
            return f"raised {info.type}: {info.message}"

        live = self._live_here()
        if live is not None:
            return live.raised(info)
        event: Raise = self._expect(Raise, doing, self.outcome_location)
        if (event.error.type, _without_addresses(event.error.message)) != (
                info.type, _without_addresses(info.message)):
            self.diverge(event, doing(), self.outcome_location(),
                         state=self._state_after_this_call())


def _call_args(args: list[Any], kwargs: dict[str, Any]) -> str:
    return ", ".join(
        [wire_repr(a) for a in args] + [f"{k}={wire_repr(v)}" for k, v in kwargs.items()]
    )


class LiveTape(Protocol):
    """The recording tape the calls open at a journal's end go on with (``Recorder``)."""

    def follow(self, schedule: Schedule) -> None: ...

    def continue_calls(self, calls: list[int]) -> None: ...

    def complete_call_out(self, call_id: int | str | None,
                          perform: Callable[[int | str | None], Any]) -> Any: ...

    def effect(self, kind: str, args: list[Any], real: Callable[[], Any]) -> Any: ...

    def patched(self, change_id: str) -> bool: ...

    def output(self, stream: str, text: str) -> bool: ...

    def call_out(self, target: str, export: str, args: list[Any], kwargs: dict[str, Any],
                 perform: Callable[[int | str | None], Any]) -> Any: ...

    def returned(self, value: Any) -> None: ...

    def raised(self, info: ErrorInfo) -> None: ...


@dataclasses.dataclass(frozen=True)
class _LiveTape:
    tape: LiveTape
    gate: CallGate
    ended: Callable[[CallIn, bool, Any], None]


class _OutcomePending(BaseException):
    """The journal ended while this call was out: its outcome is to be had live."""

    def __init__(self, live: _LiveTape) -> None:
        self.live = live
