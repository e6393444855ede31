"""Counts calls; ``record`` first records, then holds the call open for ``pause`` seconds."""

from __future__ import annotations

import time

seen: list[int] = []


def record(n: int, pause: float = 0.0) -> int:
    seen.append(n)
    if pause:
        print(f"recorded {n}; pausing {pause} s")  # shows in the log: the test's cue
        time.sleep(pause)
    return len(seen)


def snapshot() -> list[int]:
    return list(seen)
