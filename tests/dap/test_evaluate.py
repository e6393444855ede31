"""The evaluate channel on its own: a question's expression, run here as the debuggee would run
it, answered by the function the debuggee registered, and read back by the relay's side."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import msgspec
import pytest

from distdev.dap_adapter import _evaluate
from distdev.dap_adapter._evaluate import (
    JOURNAL_POSITION,
    JOURNAL_POSITIONS,
    REWIND,
    JournalPositions,
    read_service,
)
from distdev.dap_adapter._time_travel import Position


@pytest.fixture(autouse=True)
def no_answerers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test registers its own answerers, as one debuggee process would."""
    monkeypatch.setattr(_evaluate, "_answerers", {})
    yield


def evaluated(expression: str) -> str:
    """What debugpy's evaluate answers: the ``repr`` of the expression's value."""
    return repr(eval(expression))


def test_evaluate_question_is_answered_by_the_function_the_debuggee_registered() -> None:
    asked: list[int | None] = []

    def rewind(before: int | None) -> int:
        asked.append(before)
        return 3

    REWIND.answered_by(rewind)
    assert REWIND.read(evaluated(REWIND.expression(7))) == 3
    assert REWIND.read(evaluated(REWIND.expression(None))) == 3
    assert asked == [7, None]


def test_evaluate_answers_round_trip_as_their_types() -> None:
    here = Position("app/billing", 4, 2, "boundary", 5)
    JOURNAL_POSITION.answered_by(lambda: here)
    assert JOURNAL_POSITION.read(evaluated(JOURNAL_POSITION.expression())) == here

    positions = JournalPositions("app/billing", 3, {"app": 7, "app/billing": 3})
    JOURNAL_POSITIONS.answered_by(lambda: positions)
    assert JOURNAL_POSITIONS.read(evaluated(JOURNAL_POSITIONS.expression())) == positions


def test_evaluate_question_nobody_answers_reads_as_none() -> None:
    result = evaluated(JOURNAL_POSITION.expression())
    assert result == repr("null")
    assert JOURNAL_POSITION.read(result) is None


@pytest.mark.parametrize("result", [
    None,  # the evaluation failed
    "garbage(",
    repr({"service": "app", "seq": 3, "run": 1, "at": None}),  # not an answer's JSON text
    repr('{"service": "app", "seq": "3", "run": 1, "at": null}'),
    repr('{"service": "app", "seq": 3, "run": 1, "at": "elsewhere"}'),
    repr("not json"),
])
def test_evaluate_read_refuses_what_the_debuggee_did_not_say(result: str | None) -> None:
    assert JOURNAL_POSITION.read(result) is None


def test_evaluate_answer_stays_whole_where_pydevd_cuts_a_dict() -> None:
    """pydevd shows a value through its SafeRepr: a container after 60 items ends in "...",
    a string stays whole. Every service's position must reach the relay."""
    import debugpy

    sys.path.insert(0, os.path.join(os.path.dirname(debugpy.__file__), "_vendored", "pydevd"))
    try:
        from _pydevd_bundle.pydevd_safe_repr import SafeRepr
    finally:
        sys.path.pop(0)
    positions = JournalPositions("app", 1, {f"app/s{i}": i for i in range(200)})
    JOURNAL_POSITIONS.answered_by(lambda: positions)
    shown = SafeRepr()(eval(JOURNAL_POSITIONS.expression()))
    assert JOURNAL_POSITIONS.read(shown) == positions
    assert "..." in SafeRepr()(msgspec.to_builtins(positions))  # what a dict would have lost


def test_evaluate_read_service_takes_only_a_service_id() -> None:
    assert read_service(repr("app/billing")) == "app/billing"
    assert read_service("None") is None  # a frame outside every service
    assert read_service(None) is None
    assert read_service("NameError: name '__distdev_service__' is not defined") is None
