"""The bank: raises the payments helper's exceptions, a standard library one and a pydantic
one, and defines classes of its own, which cannot leave it."""

from __future__ import annotations

import dataclasses
import decimal
import json

import pydantic
from payments import CreditCardError, PaymentError

from distdev import host

host.process()
print("the bank's top level ran")  # must be journaled by the bank only


@dataclasses.dataclass
class Receipt:
    """Defined in this service module: refused where it would leave."""

    cents: int


class Order(pydantic.BaseModel):
    cents: int


class Overdrawn(Exception):
    """Defined in this service module: it arrives elsewhere as ServiceError."""


def charge(card: str, cents: int) -> str:
    if card.endswith("0000"):
        raise CreditCardError(f"card ending {card[-4:]} declined", last4=card[-4:], cents=cents)
    return f"receipt-{card[-4:]}-{cents}"


def parse(text: str) -> object:
    return json.loads(text)


def amount(text: str) -> str:
    return str(decimal.Decimal(text))


def order(data: dict[str, object]) -> int:
    return Order.model_validate(data).cents


def settle() -> None:
    try:
        int("a reply that is not a number")
    except ValueError as exc:
        raise PaymentError("the gateway answered nonsense") from exc


def receipt() -> Receipt:
    return Receipt(5)


def overdraw() -> None:
    raise Overdrawn("no money left")
