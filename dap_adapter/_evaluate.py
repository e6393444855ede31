"""The evaluate channel: the questions the relay asks the debuggee, for both sides at once.

The relay has no line of its own to the debuggee: it asks by sending debugpy an ``evaluate``
request in a stopped frame. Each question here is a ``Question``: the relay builds its
expression and reads its answer (``_server``); the debuggee says which function answers it
(``_runner``, ``_replay_loop``). The expression calls ``answer`` in this very module, which
calls that function, so a question and its answerer cannot drift apart: there is no string to
keep in step by hand.

An answer travels as JSON in a ``str``, typed by msgspec on both ends. pydevd shows an
evaluation's value as its ``repr``, and cuts a container after 60 items but a string only after
64 KiB: a dict of every service's position would be cut in an application of 60 services.

The questions:

- ``JOURNAL_POSITIONS`` (an application): where every service's journal stands, and which
  service the stopped thread runs in (``JournalPositions``).
- ``JOURNAL_POSITION`` (a replay): where the replay stands (``_time_travel.Position``).
- ``REWIND`` (a replay): run the journal again from the start once the program continues,
  stopping before event ``before``; the answer is the new run's number.
- And not a question of this module's: the ``__distdev_service__`` global the runtime gives
  every service module names a frame's service (``SERVICE_GLOBAL``, ``read_service``).

msgspec and the standard library only: the relay imports this module as it starts.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Optional, TypeVar

import msgspec

from ._time_travel import Position

__all__ = ["Question", "JournalPositions", "JOURNAL_POSITIONS", "JOURNAL_POSITION", "REWIND",
           "SERVICE_GLOBAL", "answer", "read_service"]

T = TypeVar("T")
Argument = int | None

SERVICE_GLOBAL = "__distdev_service__"
"""Set by the runtime in every service module's globals: the service's id."""

_answerers: dict[str, Callable[..., Any]] = {}  # in the debuggee: question name -> function


class JournalPositions(msgspec.Struct, frozen=True):
    """Where an application's journals stand at a stop: ``service`` is the stopped thread's,
    ``seq`` its last event, ``positions`` every service's last event."""

    service: str
    seq: int
    positions: dict[str, int]


@dataclass(frozen=True)
class Question(Generic[T]):
    """One question the relay asks in a stopped frame, and the type of its answer."""

    name: str
    answer_type: type[T]

    def expression(self, *arguments: Argument) -> str:
        """The Python expression the relay sends debugpy to evaluate."""
        call = ", ".join(repr(a) for a in (self.name, *arguments))
        return f"__import__({__name__!r}, fromlist=['answer']).answer({call})"

    def read(self, result: str | None) -> T | None:
        """The answer in an evaluation's result text; None if there is none (no answerer in
        the debuggee, a failed evaluation, or a value this question does not answer)."""
        text = _literal(result)
        if not isinstance(text, str):
            return None
        try:
            value: T | None = msgspec.json.decode(text, type=Optional[self.answer_type])  # noqa: UP045 (a runtime type)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        return value

    def answered_by(self, function: Callable[..., T | None]) -> None:
        """In the debuggee: ``function`` answers this question from now on."""
        _answerers[self.name] = function


JOURNAL_POSITIONS = Question("journal_positions", JournalPositions)
JOURNAL_POSITION = Question("journal_position", Position)
REWIND = Question("rewind", int)


def answer(name: str, *arguments: Argument) -> str:
    """Run in the debuggee by a question's expression: the answer, as JSON (``null`` when no
    function answers the question in this process)."""
    function = _answerers.get(name)
    return msgspec.json.encode(function(*arguments) if function is not None else None).decode()


def read_service(result: str | None) -> str | None:
    """The service id in the result of evaluating ``SERVICE_GLOBAL`` in a frame, or None (a
    frame outside every service)."""
    value = _literal(result)
    return value if isinstance(value, str) else None


def _literal(result: str | None) -> object:
    if result is None:
        return None
    try:
        return ast.literal_eval(result)
    except (ValueError, SyntaxError):
        return None
