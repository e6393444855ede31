"""Records deposits; its journal says who made each one."""

from __future__ import annotations

deposits: list[int] = []


def deposit(cents: int) -> int:
    deposits.append(cents)
    return sum(deposits)


def balance() -> int:
    return sum(deposits)
