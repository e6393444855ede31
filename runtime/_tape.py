"""The one seam every effect and call goes through: record to a journal, replay from one, or
run detached.

``Recorder`` performs the real thing and writes what happened. ``Replayer`` is the same seam fed
by the journal: it never performs an effect or contacts a callee, it checks that the code asks for
what the journal holds and answers from it. ``Detached`` performs without writing (a service
restored from a journal alone, explored at a prompt: observing is not acting).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import cbor2
import msgspec
from msgspec.structs import astuple

from ._events import (
    BundleFile,
    CallIn,
    CallOut,
    Effect,
    ErrorIn,
    ErrorInfo,
    Output,
    Raise,
    ResultIn,
    Return,
    Source,
    Spawn,
    _Event,
    describe,
)
from ._context import next_callout_id
from ._journal import JournalWriter
from ._marshal import wire_repr
from .errors import ReplayDivergenceError

if TYPE_CHECKING:
    from ._service import Service


_PASSIVE = (Output, Source)


def _listed(struct: msgspec.Struct) -> list[Any]:
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


class Recorder:
    """Performs effects and calls for real and journals them."""

    replaying = False

    def __init__(self, writer: JournalWriter) -> None:
        self.writer = writer

    def seq_of_next(self) -> int | None:
        return self.writer.next_seq

    def _write(self, kind: str, *fields: Any) -> None:
        """Append ``[kind, seq, *fields]``; nested Structs must be given as lists (``_listed``)."""
        writer = self.writer
        writer.write_fields([kind, writer.next_seq, *fields])

    def effect(self, kind: str, args: list[Any], value: Any, error: ErrorInfo | None) -> None:
        self._write("effect", kind, args, value, None if error is None else _listed(error))

    def output(self, stream: str, text: str) -> bool:
        self._write("output", stream, text)
        return True

    def spawn(self, child: str, path: str, name: str | None) -> None:
        self._write("spawn", child, path, name)

    def source(self, file: BundleFile) -> None:
        self._write("source", _listed(file))

    def call_out(
        self, target: str, export: str, args: list[Any], kwargs: dict[str, Any],
        perform: Callable[[int | str | None], Any],
    ) -> Any:
        """Journal the call-out, then ``perform(its id)``: the id lets a network transport
        re-send the call after a crash without it running twice (``next_callout_id``)."""
        call_id = next_callout_id(self.seq_of_next())
        self._write("call-out", target, export, args, kwargs)
        try:
            result = perform(call_id)
        except CallFailed as failed:
            self._write("error", _listed(failed.info))
            raise
        self._write("result", result)
        return result

    def call_in(self, caller: str, chain: str, export: str, args: list[Any],
                kwargs: dict[str, Any], caller_seq: int | str | None = None) -> None:
        self._write("call-in", caller, chain, export, args, kwargs, caller_seq)

    def returned(self, value: Any) -> None:
        self._write("return", value)

    def raised(self, info: ErrorInfo) -> None:
        self._write("raise", _listed(info))


class Detached(Recorder):
    """Performs effects and calls for real and writes nothing."""

    def __init__(self) -> None:
        pass

    def _write(self, kind: str, *fields: Any) -> None:
        pass

    def seq_of_next(self) -> int | None:
        return None


def same(a: Any, b: Any) -> bool:
    """Whether two wire values are the same (lists and tuples, NaNs compare by encoding)."""
    if a == b:
        return True
    try:
        return bool(cbor2.dumps(a) == cbor2.dumps(b))
    except Exception:
        return False


class Replayer:
    """Serves a service's effects and calls from its journal, checking each against it."""

    replaying = True

    def __init__(self, service: Service, events: list[_Event], start: int, until: int | None,
                 before_event: Callable[[Service, _Event], None] | None = None):
        self.service = service
        self.before_event = before_event
        self.events = events
        self.pos = start
        self.until = len(events) if until is None else min(until, len(events))
        self.divergence: ReplayDivergenceError | None = None
        self.stopped_inside_call = False

    # -- cursor -------------------------------------------------------------------------

    @property
    def at_end(self) -> bool:
        return self._skip_output() >= self.until

    def _skip_output(self) -> int:
        """Skip what the code is not asked to reproduce: output (the code may print more or
        less than it did) and source records (read before replay starts)."""
        while self.pos < self.until and type(self.events[self.pos]) in _PASSIVE:
            self.pos += 1
        return self.pos

    def _next(self) -> _Event:
        if self.divergence is not None:
            raise self.divergence
        if self._skip_output() >= self.until:
            self.stopped_inside_call = self.until == len(self.events)
            raise StopReplay()
        event = self.events[self.pos]
        if self.before_event is not None:
            self.before_event(self.service, event)  # on the service's thread, frames live
        self.pos += 1
        return event

    def diverge(self, event: _Event | None, actual: str, location: str | None = None) -> None:
        """Record and raise a divergence. It stays raised: service code that catches it gets it
        again at its next effect or call, and the replay as a whole fails with it."""
        seq = event.seq if event is not None else self.pos
        expected = describe(event) if event is not None else "nothing more"
        self.divergence = ReplayDivergenceError(
            service=self.service.id,
            seq=seq,
            expected=expected,
            actual=actual,
            location=location or self.service.code_location(),
        )
        raise self.divergence

    def _expect(self, cls: type[_Event], doing: Callable[[], str]) -> Any:
        event = self._next()
        if type(event) is not cls:
            self.diverge(event, doing())
        return event

    # -- the seam -----------------------------------------------------------------------

    def effect_replayed(self, kind: str, args: list[Any]) -> Effect:
        def doing() -> str:
            return f"asked for effect {kind}({', '.join(map(wire_repr, args))})"

        event: Effect = self._expect(Effect, doing)
        if event.effect != kind or not same(event.args, args):
            self.diverge(event, doing())
        return event

    def output(self, stream: str, text: str) -> bool:
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

        event: CallOut = self._expect(CallOut, doing)
        if (event.target, event.export) != (target, export) or not (
            same(event.args, args) and same(event.kwargs, kwargs)
        ):
            self.diverge(event, doing())
        return self.await_result(lambda: f"waited for the result of {target}.{export}")

    def await_result(self, doing: Callable[[], str]) -> Any:
        """Deliver re-entrant calls until the journal gives the pending call's outcome."""
        while True:
            event = self._next()
            if type(event) is CallIn:
                self.deliver(event)
            elif type(event) is ResultIn:
                return event.value
            elif type(event) is ErrorIn:
                raise CallFailed(event.error)
            else:
                self.diverge(event, doing())

    def deliver(self, event: CallIn) -> None:
        """Re-deliver a recorded incoming call; its recorded outcome is checked on the way out."""
        try:
            self.service.handle_call(
                event.caller, event.chain, event.export, event.args, event.kwargs,
                event.caller_seq,
            )
        except CallFailed:
            pass  # the journal recorded that it raised; ``raised`` checked it

    def call_in(self, caller: str, chain: str, export: str, args: list[Any],
                kwargs: dict[str, Any], caller_seq: int | str | None = None) -> None:
        pass  # the replayer itself read the CallIn it is delivering

    def returned(self, value: Any) -> None:
        event: Return = self._expect(Return, lambda: f"returned {wire_repr(value)}")
        if not same(event.value, value):
            self.diverge(event, f"returned {wire_repr(value)}")

    def raised(self, info: ErrorInfo) -> None:
        def doing() -> str:
            return f"raised {info.type}: {info.message}"

        event: Raise = self._expect(Raise, doing)
        if (event.error.type, event.error.message) != (info.type, info.message):
            self.diverge(event, doing())


def _call_args(args: list[Any], kwargs: dict[str, Any]) -> str:
    return ", ".join(
        [wire_repr(a) for a in args] + [f"{k}={wire_repr(v)}" for k, v in kwargs.items()]
    )
