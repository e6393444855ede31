"""An append-only ledger, two levels down the service tree (app/billing/ledger)."""

from __future__ import annotations

import datetime

entries: list[dict] = []


def record(user: str, cents: int) -> int:
    entries.append({"user": user, "cents": cents, "at": datetime.datetime.now().isoformat()})  # @ledger-record
    return len(entries) - 1


def total() -> int:
    return sum(e["cents"] for e in entries)
