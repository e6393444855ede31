"""A shop that mails notices: jinja2 templates, email dates, pydantic models and an in-memory
SQLite table — libraries that reach the world on the service's behalf (tests of determinism)."""

from __future__ import annotations

from distdev import host, import_service

host.process()
catalog = import_service("./catalog.py")
mailer = import_service("./mailer.py")
orders: list[dict] = []


def order(user: str, name: str, cents: int) -> str:
    product = catalog.add(name, cents)
    notice = mailer.notify(user, product)
    orders.append({"user": user, "product": product})
    return notice


def count() -> int:
    return len(orders)
