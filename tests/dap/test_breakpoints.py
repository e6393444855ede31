"""The breakpoint book on its own: the union of breakpoints debugpy is sent per file, and the ids
the client keeps when the relay re-sends a union."""

from __future__ import annotations

from typing import Any

from distdev.dap_adapter._breakpoints import FUNCTION_IDS, BreakpointBook, Check, hit_expression

Json = dict[str, Any]
SOURCE = {"path": "/srv/shop/billing.py", "name": "billing.py"}


def answers(*ids: int | None, verified: bool = True) -> list[Json]:
    """debugpy's setBreakpoints answer: one breakpoint per id, in the union's order."""
    return [{"verified": verified} if i is None else {"id": i, "verified": verified}
            for i in ids]


def test_book_union_puts_the_clients_breakpoints_first_then_the_relays_new_lines() -> None:
    book = BreakpointBook()
    book.set_function_breakpoints([("billing", 10, {}), ("billing", 20, {})])
    union = book.set_client("billing", SOURCE, [{"line": 20, "condition": "cents > 5"},
                                                {"line": 5}])
    # Line 20 is shared with a function breakpoint: the relay checks its condition.
    assert union == {"source": SOURCE, "sourceModified": False, "breakpoints": [
        {"line": 20}, {"line": 5}, {"line": 10}]}
    assert book.union("billing") == (union, 2)


def test_book_union_of_a_file_the_client_never_named_holds_only_the_relays_lines() -> None:
    book = BreakpointBook()
    book.set_function_breakpoints([("ledger", 3, {})])
    assert book.union("ledger") == ({"source": {"path": "ledger"}, "sourceModified": False,
                                     "breakpoints": [{"line": 3}]}, 0)


def test_book_set_function_breakpoints_names_every_file_whose_union_changed() -> None:
    book = BreakpointBook()
    assert book.set_function_breakpoints([("a", 1, {})]) == (["a"], [FUNCTION_IDS])
    # "a" loses its line, "b" gains one: both must be sent again.
    assert book.set_function_breakpoints([("b", 2, {})]) == (["a", "b"], [FUNCTION_IDS + 1])
    assert book.union("a")[0]["breakpoints"] == []


def test_book_keeps_the_clients_ids_when_debugpy_renumbers_a_resent_union() -> None:
    book = BreakpointBook()
    union = book.set_client("billing", SOURCE, [{"line": 5}])
    book.remember("billing", union, answers(1), own=1, from_client=True)

    # A function breakpoint lands in the same file: the relay re-sends the union.
    _, (function_id,) = book.set_function_breakpoints([("billing", 10, {})])
    union, own = book.union("billing")
    book.remember("billing", union, answers(7, 8), own, from_client=False)
    bound = book.function_breakpoint("billing", 10, function_id)
    assert (bound["id"], bound["line"], bound["verified"]) == (function_id, 10, True)

    # Re-sent once more: the client's breakpoint keeps the id the client was given.
    book.remember("billing", union, answers(11, 12), own, from_client=False)
    assert book.client_ids([11]) == [1]
    assert book.client_id(11) == 1
    assert book.client_id(99) == 99  # an id the book never saw passes unchanged
    # A stop on debugpy's breakpoint 12 (the function's line) is the relay's to check.
    assert [c.id for c in book.checks(12)] == [function_id]
    assert book.checks(11) == []


def test_book_function_breakpoint_on_a_clients_line_has_its_own_id_and_condition() -> None:
    book = BreakpointBook()
    _, (function_id,) = book.set_function_breakpoints([("billing", 5, {"condition": "n == 2"})])
    union = book.set_client("billing", SOURCE, [{"line": 5, "condition": "n == 4"}])
    assert union["breakpoints"] == [{"line": 5}]  # one line in debugpy, no condition
    book.remember("billing", union, answers(3), own=1, from_client=True)
    shared, function = book.checks(3)
    assert (shared.id, shared.function, shared.condition) == (3, False, "n == 4")
    assert (function.id, function.function, function.condition) == (function_id, True, "n == 2")
    # A logpoint on the line is not shared.
    book.set_client("billing", SOURCE, [{"line": 5, "logMessage": "x"}])
    assert book.logpoint_at("billing", 5)


def test_book_hit_conditions_read_as_debugpy_reads_them() -> None:
    assert hit_expression("3", 3) == "3 == 3"
    assert hit_expression(">= 2", 1) == "1 >= 2"
    assert hit_expression("% 2", 4) == "4 % 2 == 0"
    assert hit_expression("@HIT@ > 1 and True", 2) == "2 > 1 and True"
    check = Check(1, True, condition="n > 1", hit_condition="2")
    assert check.expression() == "bool(1 == 2) or bool(n > 1)"
    assert check.expression() == "bool(2 == 2) or bool(n > 1)"
    assert Check(2, True).expression() is None  # no condition: it always stops


def test_book_function_breakpoint_debugpy_never_answered_is_unverified_at_its_line() -> None:
    assert BreakpointBook().function_breakpoint("nowhere", 7, FUNCTION_IDS) == {
        "id": FUNCTION_IDS, "verified": False, "line": 7}


def test_book_entry_breakpoint_is_sent_once_recognized_at_the_stop_then_dropped() -> None:
    book = BreakpointBook()
    book.set_entry("app", 5)
    assert book.unsent_entry() == "app"
    union, own = book.union("app")
    assert (union["breakpoints"], own) == ([{"line": 5}], 0)
    book.remember("app", union, answers(3), own, from_client=False)
    assert book.unsent_entry() is None

    assert book.take_entry() == ("app", {3})
    assert book.union("app")[0]["breakpoints"] == []  # gone once taken
    assert book.take_entry() is None


def test_book_entry_on_a_line_the_client_also_set_is_sent_once_as_the_clients() -> None:
    book = BreakpointBook()
    book.set_entry("app", 5)
    union = book.set_client("app", SOURCE, [{"line": 5}])
    assert union["breakpoints"] == [{"line": 5}]
    book.remember("app", union, answers(4), own=1, from_client=True)
    # The stop at line 5 is both the entry and the client's breakpoint.
    assert book.take_entry() == ("app", {4})
