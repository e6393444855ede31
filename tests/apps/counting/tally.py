"""Counts calls: every number recorded, in the order the calls ran."""

from __future__ import annotations

seen: list[int] = []


def record(n: int) -> int:
    seen.append(n)
    return len(seen)


def snapshot() -> list[int]:
    """What the running service holds (compared with a replay of its journal)."""
    return list(seen)
