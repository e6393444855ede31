"""The spy's own child: the one service the spy may call."""

from __future__ import annotations

notes: list[str] = []


def add(text: str) -> int:
    notes.append(text)
    return len(notes)
