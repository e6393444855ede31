"""Sales per item: the state the function keeps out of its own globals."""

from __future__ import annotations

from distdev import host

host.process()

sales: dict[str, int] = {}


def add(sku: str) -> int:
    sales[sku] = sales.get(sku, 0) + 1
    return sales[sku]


def total() -> int:
    return sum(sales.values())
