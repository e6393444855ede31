"""A root that is a function: its HTTP ingress spreads requests over up to three instances."""

from __future__ import annotations

import time

from distdev import host

host.function(max_instances=3, http=8080)

GREETING = "hello"
_seen: list[str] = []


def greet(name: str, wait: float = 0.0) -> str:
    time.sleep(wait)
    return f"{GREETING}, {name}"


def remember(name: str) -> int:
    _seen.append(name)
    return len(_seen)
