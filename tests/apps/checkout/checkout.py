"""The checkout: catches the bank's exceptions by their own classes and keeps a record of
each in its state."""

from __future__ import annotations

import dataclasses
import decimal
import json

import pydantic
from payments import CreditCardError, PaymentError

from distdev import MembraneError, ServiceError, ServiceProxy, host

host.process()
_bank: ServiceProxy | None = None
declined: list[list[object]] = []
paid: list[str] = []


@dataclasses.dataclass
class Ticket:
    """Defined in this service module: refused as an argument to another service."""

    number: int


def connect(bank: ServiceProxy) -> None:
    global _bank
    _bank = bank


def pay(card: str, cents: int) -> str:
    assert _bank is not None
    try:
        receipt = _bank.charge(card, cents)
    except CreditCardError as exc:  # the bookkeeping a declined card needs
        declined.append([type(exc).__name__, exc.last4, exc.cents, str(exc)])
        return "declined"
    paid.append(receipt)
    return receipt


def history() -> list[list[object]]:
    return declined


def settle() -> list[str]:
    assert _bank is not None
    try:
        _bank.settle()
    except PaymentError as exc:  # the base class catches what the bank raised
        return [type(exc).__name__, *getattr(exc, "__notes__", [])]
    return []


def parse(text: str) -> list[object]:
    assert _bank is not None
    try:
        return [_bank.parse(text)]
    except json.JSONDecodeError as exc:
        return [type(exc).__name__, exc.pos, exc.msg]


def amount(text: str) -> list[object]:
    assert _bank is not None
    try:
        return [_bank.amount(text)]
    except decimal.InvalidOperation as exc:  # its arguments (a class) cannot cross: said so
        return [type(exc).__name__, *getattr(exc, "__notes__", [])]


def order(cents: object) -> list[object]:
    assert _bank is not None
    try:
        return [_bank.order({"cents": cents})]
    except pydantic.ValidationError as exc:
        return [type(exc).__name__, exc.title, exc.error_count(), exc.errors()[0]["type"]]


def receipt() -> str:
    assert _bank is not None
    try:
        _bank.receipt()
    except MembraneError as exc:
        return str(exc)
    return "it crossed"


def ticket() -> str:
    assert _bank is not None
    try:
        _bank.parse(Ticket(1))
    except MembraneError as exc:
        return str(exc)
    return "it crossed"


def overdraw() -> list[object]:
    assert _bank is not None
    try:
        _bank.overdraw()
    except ServiceError as exc:
        return [exc.type_name, exc.message, *getattr(exc, "__notes__", [])]
    return []
