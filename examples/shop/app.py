"""The shop: the root service. Its exports are the HTTP API (POST /<export>)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from distdev import host, import_service

# Every request waits on the services below; interleaving lets the next request run meanwhile
# (one at a time still, switching only while a call waits on a call-out). The exports keep no
# state of their own across a call-out, so nothing here depends on running alone.
host.process(http=8080, interleave=True)

# Read at build time: the file's contents are journaled, so production replays them without it.
config = json.loads((Path(__file__).parent / "config.json").read_text())
built_at = time.time()

catalog = import_service("./catalog.py")
billing = import_service("./billing/billing.py")
orders = import_service("./orders/orders.py")

catalog.load(config["products"], config["currency"])
orders.connect(catalog, billing, config["promo_rate"], config["promo_percent"])  # @app-connect


def place_order(user: str, item: str, quantity: int = 1) -> dict:
    """Order ``quantity`` of ``item`` for ``user``; returns the order."""
    return orders.place(user, item, quantity)  # @app-call-place


def order_status(order_id: str) -> dict:
    return orders.status(order_id)


def list_products() -> dict:
    return catalog.products()


def revenue() -> dict:
    return billing.revenue()


def shop_info() -> dict:
    """What the shop sells in and since when: answered by the root alone, calling nothing."""
    return {"currency": config["currency"], "built_at": built_at}
