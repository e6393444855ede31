"""Values the services exchange. Each service loads its own copy of this module."""

from __future__ import annotations

from dataclasses import dataclass

instances_made = 0  # per service: two services importing this module get two copies


@dataclass(frozen=True)
class Receipt:
    receipt_id: str
    user: str
    cents: int
    ledger_entry: int


def format_cents(cents: int, currency: str = "EUR") -> str:
    global instances_made
    instances_made += 1
    return f"{cents / 100:.2f} {currency}"
