"""The breakpoints debugpy is given, per file, and the ids the client knows them by.

debugpy takes one ``setBreakpoints`` list per file and replaces it each time. The client sends
its own lists; the relay has lines of its own in the same files — function breakpoints by export
(bound to the export's first line) and the one-off ``stopOnEntry`` line. So debugpy always gets
the *union* for a file: the client's breakpoints first, then the relay's lines not already among
them. When the relay re-sends a union, debugpy answers with new ids; the client keeps the ids it
was given, so this book maps each new id back to the one the client knows.

A function breakpoint is the relay's, not debugpy's: it has an id of its own (``FUNCTION_IDS``
up), and its ``condition`` and ``hitCondition`` are checked by the relay (``Check``), because
debugpy holds one breakpoint per line and a function breakpoint may land on a line that holds
one of the client's. debugpy is sent that line without a condition; at a stop there the relay
asks the debuggee each breakpoint's condition (observing, as debugpy's own conditions are) and
shows the stop with the ids of those that hold — or passes it silently if none does. A client's
breakpoint sharing the line is checked the same way, so it keeps its own condition.

Files are keys (``os.path.realpath``, normalized for case); breakpoints are DAP's own
``SourceBreakpoint`` objects, passed through as they came (conditions, log messages). No lock of
its own: the relay's session lock guards the book.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BreakpointBook", "Check", "FUNCTION_IDS", "hit_expression"]

Json = dict[str, Any]
FUNCTION_IDS = 1_000_001
"""The first id of a function breakpoint: debugpy numbers its own from 1, so they never meet."""


def hit_expression(hit_condition: str, hits: int) -> str:
    """A hit condition as debugpy reads it ("5", "== 5", ">= 5", "% 5", or an expression of
    ``@HIT@``), for the ``hits``-th time its line is reached."""
    condition = hit_condition.strip()
    if condition.isdigit():
        condition = f"== {condition}"
    if condition.startswith("%"):
        condition = f"{condition} == 0"
    if condition.startswith(("==", ">", "<", "%")):
        condition = f"@HIT@ {condition}"
    return condition.replace("@HIT@", str(hits))


@dataclass
class Check:
    """A breakpoint whose condition the relay checks at a stop on its line."""

    id: int | None
    """The id the client knows (a client's breakpoint: known once debugpy has answered)."""
    function: bool
    condition: str | None = None
    hit_condition: str | None = None
    hits: int = field(default=0, init=False)

    def expression(self) -> str | None:
        """What to evaluate at this stop (the hit count advanced); None: it always stops. As
        debugpy reads its own: the hit condition, else the condition."""
        self.hits += 1
        hit = hit_expression(self.hit_condition, self.hits) if self.hit_condition else None
        if hit and self.condition:
            return f"bool({hit}) or bool({self.condition})"
        return f"bool({hit or self.condition})" if hit or self.condition else None


class BreakpointBook:
    """Every file's breakpoints: the client's, the relay's own, and debugpy's answers."""

    def __init__(self) -> None:
        self._client: dict[str, tuple[Json, list[Json]]] = {}  # file -> (source, breakpoints)
        self._functions: dict[str, dict[int, list[Check]]] = {}  # file -> line -> breakpoints
        self._shared: dict[tuple[str, int], Check] = {}  # a client's, on a function's line
        self._entry: tuple[str, int] | None = None
        self._entry_ids: set[int] = set()
        self._answers: dict[str, dict[int, Json]] = {}  # file -> line -> debugpy's answer
        self._client_ids: dict[str, list[int | None]] = {}
        self._id_map: dict[int, int] = {}  # debugpy's id -> the id the client knows
        self._lines: dict[int, tuple[str, int]] = {}  # debugpy's id -> (file, line)
        self._ids = itertools.count(FUNCTION_IDS)

    # -- what debugpy is sent ----------------------------------------------------------------

    def set_client(self, key: str, source: Json, wanted: list[Json]) -> Json:
        """The client's breakpoints for a file; returns the union to send."""
        self._client[key] = (dict(source), list(wanted))
        return self._union(key)

    def union(self, key: str) -> tuple[Json, int]:
        """debugpy's setBreakpoints arguments for a file, and how many are the client's."""
        return self._union(key), len(self._client.get(key, ({}, []))[1])

    def _union(self, key: str) -> Json:
        source, wanted = self._client.get(key, ({"path": key}, []))
        functions = self._functions.get(key, {})
        breakpoints = []
        shared_lines = {b.get("line") for b in wanted if not b.get("logMessage")} & set(functions)
        self._shared = {(file, line): check for (file, line), check in self._shared.items()
                        if file != key or line in shared_lines}
        for breakpoint in wanted:
            line = breakpoint.get("line")
            if isinstance(line, int) and line in functions and not breakpoint.get("logMessage"):
                # Shared with a function breakpoint: the relay checks both conditions.
                check = Check(None, False, breakpoint.get("condition") or None,
                              breakpoint.get("hitCondition") or None)
                kept = self._shared.get((key, line))
                if kept is None or (kept.condition, kept.hit_condition) != (
                        check.condition, check.hit_condition):
                    self._shared[(key, line)] = check
                breakpoint = {"line": line}
            breakpoints.append(breakpoint)
        lines = {b.get("line") for b in wanted}
        extra = list(functions)
        if self._entry is not None and self._entry[0] == key:
            extra.append(self._entry[1])
        for line in extra:
            if line not in lines:
                lines.add(line)
                breakpoints.append({"line": line})
        return {"source": source, "breakpoints": breakpoints, "sourceModified": False}

    def set_function_breakpoints(self, bound: list[tuple[str, int, Json]]) -> tuple[
            list[str], list[int]]:
        """The function breakpoints, each (file, line it binds to, the client's
        ``FunctionBreakpoint``); returns the files whose union changed and each one's id."""
        functions: dict[str, dict[int, list[Check]]] = {}
        ids = []
        for key, line, spec in bound:
            check = Check(next(self._ids), True, spec.get("condition") or None,
                          spec.get("hitCondition") or None)
            functions.setdefault(key, {}).setdefault(line, []).append(check)
            ids.append(check.id)
        keys = sorted(set(self._functions) | set(functions))
        self._functions = functions
        self._shared = {k: c for k, c in self._shared.items() if k[1] in functions.get(k[0], {})}
        return keys, [i for i in ids if i is not None]

    def logpoint_at(self, key: str, line: int) -> bool:
        """Whether the client has a logpoint on this line (a function breakpoint cannot share
        it: debugpy holds one breakpoint per line, and a logpoint never stops)."""
        return any(b.get("line") == line and b.get("logMessage")
                   for b in self._client.get(key, ({}, []))[1])

    def set_entry(self, key: str, line: int) -> None:
        self._entry = (key, line)

    def unsent_entry(self) -> str | None:
        """The entry line's file, if debugpy has not been sent that file's union yet."""
        entry = self._entry
        return entry[0] if entry is not None and entry[0] not in self._answers else None

    # -- what debugpy answered -------------------------------------------------------------------

    def remember(self, key: str, union: Json, answered: list[Json], own: int,
                 from_client: bool) -> None:
        """debugpy's answer for each line of a union, and the client's id for each breakpoint
        debugpy renumbered (a union the relay re-sent)."""
        results = {int(b["line"]): a for b, a in zip(union["breakpoints"], answered)
                   if isinstance(b.get("line"), int)}
        ids = [a.get("id") if isinstance(a.get("id"), int) else None for a in answered]
        self._answers[key] = results
        for line, answer in results.items():
            if isinstance(answer.get("id"), int):
                self._lines[answer["id"]] = (key, line)
        if from_client:
            self._client_ids[key] = ids[:own]
        else:
            for new, known in zip(ids[:own], self._client_ids.get(key, [])):
                if new is not None and known is not None:
                    self._id_map[new] = known
        for (file, line), shared in self._shared.items():
            new = next((i for b, i in zip(union["breakpoints"][:own], ids[:own])
                        if file == key and b.get("line") == line), None)
            if new is not None:
                shared.id = new if from_client else self._id_map.get(new, new)
        if self._entry is not None and self._entry[0] == key:
            hit = results.get(self._entry[1], {})
            if isinstance(hit.get("id"), int):
                self._entry_ids.add(hit["id"])

    def function_breakpoint(self, key: str, line: int, breakpoint_id: int) -> Json:
        """debugpy's answer for a function breakpoint's line, with the breakpoint's own id."""
        bound = dict(self._answers.get(key, {}).get(line, {}))
        bound["id"] = breakpoint_id
        bound.setdefault("verified", False)
        bound.setdefault("line", line)
        return bound

    # -- stops -------------------------------------------------------------------------------

    def checks(self, debugpy_id: int) -> list[Check]:
        """The breakpoints the relay checks at a stop on debugpy's breakpoint ``debugpy_id``
        (none: debugpy checked it, the stop stands)."""
        key, line = self._lines.get(debugpy_id, ("", 0))
        functions = self._functions.get(key, {}).get(line, [])
        if not functions:
            return []
        shared = self._shared.get((key, line))
        return ([shared] if shared is not None else []) + functions

    def client_ids(self, ids: list[int]) -> list[int]:
        return [self._id_map.get(i, i) for i in ids]

    def client_id(self, debugpy_id: int) -> int:
        return self._id_map.get(debugpy_id, debugpy_id)

    def take_entry(self) -> tuple[str, set[int]] | None:
        """At the first stop: the entry line's file and debugpy's ids for it (the one-off entry
        breakpoint is then dropped: re-send that file's union)."""
        entry, self._entry = self._entry, None
        return (entry[0], set(self._entry_ids)) if entry is not None else None
