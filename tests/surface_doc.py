"""The classification table (runtime/compartment/_surface.py) as the tables in
docs/determinism.md: per covered module, what is journaled, refused (and why) or covered by a
mechanism of its own; everything else in the module is deterministic.

    python tests/surface_doc.py            # print the tables
    python tests/surface_doc.py --write    # rewrite them in docs/determinism.md
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from distdev.compartment._surface import DETERMINISTIC, SURFACE, Journaled, Refused, Special

DOC = Path(__file__).resolve().parent.parent / "docs" / "determinism.md"
BEGIN = "<!-- surface: written by tests/surface_doc.py --write -->"
END = "<!-- /surface -->"


def _names(names: list[str]) -> str:
    return " ".join(f"`{name}`" for name in sorted(names))


def tables() -> str:
    rows = ["| module | journaled | refused outside an `@effect` | own mechanism | deterministic |",
            "|---|---|---|---|---|"]
    for module, read in SURFACE.items():
        journaled: list[str] = []
        refused: dict[str, list[str]] = defaultdict(list)
        special: dict[str, list[str]] = defaultdict(list)
        deterministic = 0
        for name, rule in read().items():
            if rule == DETERMINISTIC:
                deterministic += 1
            elif isinstance(rule, Journaled):
                journaled.append(name)
            elif isinstance(rule, Refused):
                refused[rule.what].append(name)
            elif isinstance(rule, Special):
                special[rule.why].append(name)
        refused_cell = "<br>".join(f"*{what}*: {_names(names)}" for what, names in refused.items())
        special_cell = "<br>".join(f"{_names(names)}: {why}" for why, names in special.items())
        rows.append(f"| `{module}` | {_names(journaled)} | {refused_cell} | {special_cell} "
                    f"| {deterministic} names |")
    return "\n".join(rows)


def write(doc: Path = DOC) -> None:
    text = doc.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{tables()}\n{END}{tail}")


def written(doc: Path = DOC) -> str:
    text = doc.read_text()
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(tables())
