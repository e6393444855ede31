"""A checkout that pays through a bank; what both know about payments is in payments.py."""

from __future__ import annotations

from distdev import host, import_service

host.process()
bank = import_service("./bank.py")
checkout = import_service("./checkout.py")
checkout.connect(bank)


def pay(card: str, cents: int) -> str:
    return checkout.pay(card, cents)
