"""A root service that forwards every call to a service that counts them (tests of the
local engine)."""

from __future__ import annotations

from distdev import import_service

tally = import_service("./tally.py")


def add(n: int) -> int:
    """Record ``n`` in the tally; returns how many numbers the tally has seen."""
    return tally.record(n)
