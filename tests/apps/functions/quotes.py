"""Prices, stateless after the build: up to four instances of it serve calls."""

from __future__ import annotations

import hashlib
import time

from distdev import ServiceProxy, host

host.function(max_instances=4)

TAX = (("standard", 20), ("reduced", 5))  # checked by identity only: it cannot change in place
_rates: dict[str, int] = {}
_ledger: ServiceProxy | None = None
_recent: list[str] = []


def connect(ledger: ServiceProxy, rates: dict[str, int]) -> None:
    """Called at build time: a function's globals are its build's to set."""
    global _ledger
    _ledger = ledger
    _rates.update(rates)


def price(sku: str, qty: int) -> int:
    if sku not in _rates:
        raise KeyError(f"no rate for {sku!r}")
    return _rates[sku] * qty


def slow_price(sku: str, qty: int, seconds: float) -> int:
    """A price that waits on something slower (a journaled sleep stands for it)."""
    time.sleep(seconds)
    return price(sku, qty)


def digest(rounds: int) -> str:
    """CPU work: ``rounds`` chained hashes."""
    value = b"distdev"
    for _ in range(rounds):
        value = hashlib.sha256(value).digest()
    return value.hex()


def sell(sku: str) -> int:
    """Records a sale in the ledger (a call out): the number of sales of ``sku`` so far."""
    assert _ledger is not None
    return _ledger.add(sku)


def remember(sku: str) -> int:
    """Wrong in a function: keeps state of its own between calls."""
    _recent.append(sku)
    return len(_recent)


def discount(sku: str) -> int:
    """Wrong in a function: changes a rate in place."""
    _rates[sku] = _rates[sku] // 2
    return _rates[sku]


def reprice(rates: dict[str, int]) -> None:
    """Wrong in a function: binds a global to a new value."""
    global _rates
    _rates = rates
