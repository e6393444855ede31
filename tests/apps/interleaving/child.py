"""Holds a call until the test opens its gate: ``wait_for`` says it is waiting (a file
``<name>.waiting``), then waits for the file ``<name>``."""

from __future__ import annotations

import os
import time

import distdev

seen: list[str] = []


@distdev.effect
def _gate(gates: str, name: str) -> None:
    open(os.path.join(gates, name + ".waiting"), "w").close()
    while not os.path.exists(os.path.join(gates, name)):
        time.sleep(0.01)


def wait_for(gates: str, name: str) -> str:
    _gate(gates, name)
    seen.append(name)
    return name.upper()


def echo(n: int) -> int:
    seen.append(str(n))
    return n
