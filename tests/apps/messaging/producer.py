"""Pushes and publishes numbered messages."""

from __future__ import annotations

from typing import Any

_jobs: Any = None
_events: Any = None
produced: list[int] = []


def connect(jobs: Any, events: Any) -> None:
    global _jobs, _events
    _jobs, _events = jobs, events


def produce(start: int, count: int) -> int:
    for n in range(start, start + count):
        _jobs.push({"n": n})
        _events.publish({"n": n, "by": "producer"})
        produced.append(n)
    return count
