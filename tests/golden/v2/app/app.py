"""The application behind the golden journals of format v1: every kind of event."""

import logging
import os
import random
import time
import uuid
from pathlib import Path

from distdev import import_service

ledger = import_service("./ledger.py")
started_at = time.time()
seed = random.random()
region = os.environ.get("GOLDEN_REGION", "nowhere")
settings = (Path(__file__).parent / "settings.txt").read_text().strip()
print("built with", settings)
orders: dict[str, int] = {}


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
