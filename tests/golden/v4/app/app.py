"""The application behind the golden journals of format v3: every kind of event, and calls that
interleave (``hold``, held in a waiter until make_golden.py opens its gate)."""

import logging
import os
import random
import time
import uuid
from pathlib import Path

from distdev import host, import_service

host.process(interleave=True)
ledger = import_service("./ledger.py")
waiters = {"left": import_service("./waiter.py", name="left"),
           "right": import_service("./waiter.py", name="right")}
started_at = time.time()
seed = random.random()
region = os.environ.get("GOLDEN_REGION", "nowhere")
settings = (Path(__file__).parent / "settings.txt").read_text().strip()
print("built with", settings)
orders: dict[str, int] = {}
held: list[str] = []


def place(cents: int) -> str:
    order = str(uuid.uuid4())
    orders[order] = ledger.record(cents)
    logging.getLogger("golden").warning("placed %s", order)
    return order


def refund(cents: int) -> int:
    try:
        return ledger.record(-cents)
    except ValueError as exc:
        return len(str(exc))


def report() -> str:
    import helpers  # loaded at runtime: a source record

    return helpers.summary(orders)


def hold(gates: str, name: str, via: str) -> str:
    held.append(f"start {name}")
    got = waiters[via].wait_for(gates, name)
    held.append(f"end {name}")
    return got
