"""Invoicing behind an HTTP ingress: exports typed with dataclasses, Structs, Enums, datetimes,
Decimals, UUIDs, sets, tuples, optional parameters and defaults; HTTPError from here and from a
child (customers)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Annotated

import msgspec
from contacts import Contact

from distdev import HTTPError, host, import_service

host.process(http=8080)

customers = import_service("./customers.py")


class Currency(enum.Enum):
    EUR = "EUR"
    USD = "USD"
    JPY = "JPY"


@dataclasses.dataclass
class Money:
    amount: decimal.Decimal
    currency: Currency = Currency.EUR


class Line(msgspec.Struct):
    item: str
    price: Money
    quantity: int = 1


@dataclasses.dataclass
class Invoice:
    id: uuid.UUID
    customer: str
    lines: list[Line]
    total: Money
    issued: datetime.datetime
    due: datetime.date
    tags: set[str]
    pages: tuple[int, int]
    note: str | None = None


_invoices: dict[uuid.UUID, Invoice] = {}


def issue(customer: str, lines: list[Line], issued: datetime.datetime,
          tags: set[str] | None = None, note: str | None = None,
          days: Annotated[int, msgspec.Meta(ge=1)] = 30) -> Invoice:
    """Issue an invoice to a known customer.

    All lines are in one currency; the invoice is due ``days`` after it is issued.
    """
    customers.require(customer)
    currencies = sorted({line.price.currency.value for line in lines})
    if len(currencies) > 1:
        raise HTTPError(409, "an invoice is in one currency", {"currencies": currencies})
    total = sum((line_total(line).amount for line in lines), decimal.Decimal(0))
    invoice = Invoice(uuid.uuid4(), customer, lines,
                      Money(total, lines[0].price.currency if lines else Currency.EUR),
                      issued, issued.date() + datetime.timedelta(days=days), tags or set(),
                      (1, len(lines)), note)
    _invoices[invoice.id] = invoice
    return invoice


def get(invoice_id: uuid.UUID) -> Invoice:
    if invoice_id not in _invoices:
        raise HTTPError(404, f"no invoice {invoice_id}")
    return _invoices[invoice_id]


def invoices(customer: str | None = None) -> list[Invoice]:
    return [i for i in _invoices.values() if customer is None or i.customer == customer]


def line_total(line: Line) -> Money:
    return Money(line.price.amount * line.quantity, line.price.currency)


def greet(name: str) -> str:
    return f"Γειά σου, {name}! {customers.require(name) if name in ('ann', 'bob') else ''}"


def overdue(on: datetime.date, after: datetime.timedelta = datetime.timedelta(0)) -> list[str]:
    return sorted(str(i.id) for i in _invoices.values() if i.due + after < on)


def update_contact(customer: str, contact: Contact) -> Contact:
    return customers.remember(customer, contact)


def brew() -> None:
    raise HTTPError(418, "I'm a teapot", {"pot": object()})  # a detail that cannot cross


def crash() -> None:
    raise ValueError("the ledger is on fire")
