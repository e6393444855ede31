"""The replaying tape: the seam every effect and call goes through, fed by a journal.

It never performs an effect or contacts a callee: it checks that the code asks for what the
journal holds, in order, and answers from it. The first difference is a divergence, raised with
the event, what the journal expected, what the code did and the line that did it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ReplayDivergenceError
from ..journal import (
    BundleFile,
    CallIn,
    CallOut,
    Effect,
    ErrorIn,
    Event,
    Output,
    Raise,
    ResultIn,
    Return,
    Source,
    Spawn,
    describe,
)
from ..membrane import ErrorInfo, rebuild_exception, wire_repr
from ..service import CallFailed, Service, StopReplay, same

__all__ = ["Replayer"]

_PASSIVE = (Output, Source)


class Replayer:
    """Serves a service's effects and calls from its journal, checking each against it."""

    replaying = True

    def __init__(self, service: Service, events: list[Event], start: int, until: int | None,
                 before_event: Callable[[Service, Event], None] | None = None):
        self.service = service
        self.before_event = before_event
        self.events = events
        self.pos = start
        self.until = len(events) if until is None else min(until, len(events))
        self.divergence: ReplayDivergenceError | None = None
        self.stopped_inside_call = False

    def seq_of_next(self) -> int | None:
        return None  # a replay writes nothing

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

    def _next(self) -> Event:
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

    def diverge(self, event: Event | None, actual: str, location: str | None = None) -> None:
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

    def _expect(self, cls: type[Event], doing: Callable[[], str]) -> Any:
        event = self._next()
        if type(event) is not cls:
            self.diverge(event, doing())
        return event

    # -- the seam -----------------------------------------------------------------------

    def effect(self, kind: str, args: list[Any], real: Callable[[], Any]) -> Any:
        """The journal's answer to effect ``kind``; ``real`` is never called."""
        def doing() -> str:
            return f"asked for effect {kind}({', '.join(map(wire_repr, args))})"

        event: Effect = self._expect(Effect, doing)
        if event.effect != kind or not same(event.args, args):
            self.diverge(event, doing())
        if event.error is not None:
            service = self.service
            raise rebuild_exception(event.error, f"effect {kind}", service,
                                    resolve=service.resolve_class)
        return event.value

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
