"""The breakpoints debugpy is given, per file, and the ids the client knows them by.

debugpy takes one ``setBreakpoints`` list per file and replaces it each time. The client sends
its own lists; the relay has lines of its own in the same files — function breakpoints by export
(bound to the export's first line) and the one-off ``stopOnEntry`` line. So debugpy always gets
the *union* for a file: the client's breakpoints first, then the relay's lines not already among
them. When the relay re-sends a union, debugpy answers with new ids; the client keeps the ids it
was given, so this book maps each new id back to the one the client knows.

Files are keys (``os.path.realpath``, normalized for case); breakpoints are DAP's own
``SourceBreakpoint`` objects, passed through as they came (conditions, log messages). No lock of
its own: the relay's session lock guards the book.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BreakpointBook"]

Json = dict[str, Any]


class BreakpointBook:
    """Every file's breakpoints: the client's, the relay's own, and debugpy's answers."""

    def __init__(self) -> None:
        self._client: dict[str, tuple[Json, list[Json]]] = {}  # file -> (source, breakpoints)
        self._function_lines: dict[str, list[int]] = {}
        self._entry: tuple[str, int] | None = None
        self._entry_ids: set[int] = set()
        self._answers: dict[str, dict[int, Json]] = {}  # file -> line -> debugpy's answer
        self._client_ids: dict[str, list[int | None]] = {}
        self._function_ids: dict[tuple[str, int], int] = {}
        self._id_map: dict[int, int] = {}  # debugpy's id -> the id the client knows

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
        lines = {b.get("line") for b in wanted}
        extra = list(self._function_lines.get(key, []))
        if self._entry is not None and self._entry[0] == key:
            extra.append(self._entry[1])
        breakpoints = list(wanted)
        for line in extra:
            if line not in lines:
                lines.add(line)
                breakpoints.append({"line": line})
        return {"source": source, "breakpoints": breakpoints, "sourceModified": False}

    def set_function_lines(self, lines: dict[str, list[int]]) -> list[str]:
        """The lines function breakpoints bind to; returns the files whose union changed."""
        keys = sorted(set(self._function_lines) | set(lines))
        self._function_lines = lines
        return keys

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
        if from_client:
            self._client_ids[key] = ids[:own]
        else:
            for new, known in zip(ids[:own], self._client_ids.get(key, [])):
                if new is not None and known is not None:
                    self._id_map[new] = known
        for b, new in zip(union["breakpoints"][own:], ids[own:]):
            known = self._function_ids.get((key, b.get("line")))
            if new is not None and known is not None:
                self._id_map[new] = known
        if self._entry is not None and self._entry[0] == key:
            hit = results.get(self._entry[1], {})
            if isinstance(hit.get("id"), int):
                self._entry_ids.add(hit["id"])

    def function_breakpoint(self, key: str, line: int) -> Json:
        """debugpy's answer for a function breakpoint's line, with the id the client keeps."""
        bound = dict(self._answers.get(key, {}).get(line, {}))
        raw = bound.get("id")
        if isinstance(raw, int):
            client_id = self._id_map.get(raw, raw)
            bound["id"] = self._function_ids[(key, line)] = client_id
        bound.setdefault("verified", False)
        bound.setdefault("line", line)
        return bound

    # -- stops -------------------------------------------------------------------------------

    def client_ids(self, ids: list[int]) -> list[int]:
        return [self._id_map.get(i, i) for i in ids]

    def client_id(self, debugpy_id: int) -> int:
        return self._id_map.get(debugpy_id, debugpy_id)

    def take_entry(self) -> tuple[str, set[int]] | None:
        """At the first stop: the entry line's file and debugpy's ids for it (the one-off entry
        breakpoint is then dropped: re-send that file's union)."""
        entry, self._entry = self._entry, None
        return (entry[0], set(self._entry_ids)) if entry is not None else None
