"""Like tests/apps/counting, but a call can ask the tally to hold it open for a while, so that a
test can kill the caller while the tally is inside the call."""

from __future__ import annotations

from distdev import import_service

tally = import_service("./tally.py")


def add(n: int, pause: float = 0.0) -> int:
    return tally.record(n, pause)
