"""A root that holds a bank and a spy (tests of per-service credentials): the root may call the
bank, the spy may not. The spy holds a proxy to its own notes, so it has keys of its own."""

from __future__ import annotations

from distdev import import_service

bank = import_service("./bank.py")
spy = import_service("./spy.py")


def deposit(cents: int) -> int:
    """Deposit through the root, which holds the bank's proxy: the one legitimate way."""
    return bank.deposit(cents)


def hand_over() -> None:
    """Give the spy the bank's proxy at runtime: a proxy handed over carries no capability."""
    spy.take(bank)
