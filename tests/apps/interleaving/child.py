"""Holds a call until the test opens its gate: ``wait_for`` says it is waiting (a file
``<name>.waiting``), then waits for the file ``<name>``, and raises if it says "fail"."""

from __future__ import annotations

import os
import time

import distdev

seen: list[str] = []


@distdev.effect
def _gate(gates: str, name: str) -> str:
    open(os.path.join(gates, name + ".waiting"), "w").close()
    path = os.path.join(gates, name)
    while not os.path.exists(path):
        time.sleep(0.01)
    with open(path) as opened:
        return opened.read()


def wait_for(gates: str, name: str) -> str:
    if _gate(gates, name) == "fail":
        raise ValueError(f"the gate of {name} says fail")
    seen.append(name)
    return name.upper()


def echo(n: int) -> int:
    seen.append(str(n))
    return n


def seen_so_far() -> list[str]:
    return list(seen)
