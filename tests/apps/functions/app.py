"""A shop's pricing: the root asks a function for quotes; the function records each sale in a
ledger (a service with state). Tests of functions (host.function) and their benchmark."""

from __future__ import annotations

from distdev import host, import_service

host.process()

quotes = import_service("./quotes.py")
ledger = import_service("./ledger.py")
quotes.connect(ledger, {"book": 1200, "pen": 150, "lamp": 4500})  # build time: may set state


def quote(sku: str, qty: int) -> int:
    return quotes.price(sku, qty)
