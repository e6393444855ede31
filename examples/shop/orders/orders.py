"""Takes orders: prices them with the catalog, charges them with billing."""

from __future__ import annotations

import random
import time
import uuid

from models import Receipt, format_cents

from distdev import ServiceProxy

_catalog: ServiceProxy | None = None
_billing: ServiceProxy | None = None
promo_rate = 0.0
promo_percent = 0
orders: dict[str, dict] = {}


def connect(catalog: ServiceProxy, billing: ServiceProxy, rate: float, percent: int) -> None:
    """Wiring done at build time: proxies cross the membrane as proxies."""
    global _catalog, _billing, promo_rate, promo_percent
    _catalog, _billing = catalog, billing
    promo_rate, promo_percent = rate, percent


def place(user: str, item: str, quantity: int) -> dict:
    assert _catalog is not None and _billing is not None, "connect() runs at build time"  # @orders-place-first
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    cents = _catalog.price(item) * quantity
    lucky = random.random() < promo_rate
    if lucky:
        cents -= cents * promo_percent // 100
    receipt: Receipt = _billing.charge(user, cents)  # @orders-call-charge
    order_id = str(uuid.uuid4())  # @orders-after-charge
    orders[order_id] = {
        "user": user,
        "item": item,
        "quantity": quantity,
        "cents": cents,
        "promo": lucky,
        "receipt": receipt.receipt_id,
        "placed_at": time.time(),
    }
    return {"order_id": order_id, "total": format_cents(cents), "promo": lucky}


def status(order_id: str) -> dict:
    if order_id not in orders:
        raise KeyError(f"no order {order_id}")
    return dict(orders[order_id], order_id=order_id)
