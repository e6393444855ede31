"""Holds a call until its gate (a file) exists; says it waits with a file ``<name>.waiting``."""

import os
import time

import distdev


@distdev.effect
def _gate(gates: str, name: str) -> None:
    open(os.path.join(gates, name + ".waiting"), "w").close()
    while not os.path.exists(os.path.join(gates, name)):
        time.sleep(0.01)


def wait_for(gates: str, name: str) -> str:
    _gate(gates, name)
    return name.upper()
