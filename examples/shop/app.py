"""The shop: the root service. Its exports are the HTTP API (POST /<export>)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from distdev import host, import_service, resources

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

# A SQL database (SQLite; engine="postgres" for PostgreSQL), a node of the service tree. Its
# schema and the rows written here at build time are its content when the deployment starts.
reviews = resources.sql("reviews")
reviews.executescript("""
    CREATE TABLE reviews (
        item TEXT NOT NULL,
        stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
        text TEXT NOT NULL DEFAULT ''
    );
""")
reviews.transaction([("INSERT INTO reviews VALUES (?, ?, ?)", [item, 5, "staff pick"])
                     for item in sorted(config["products"])[:2]])

# A topic: every review posted reaches the catalog's on_review, once and in the order posted,
# as an incoming call of the catalog's (its journal records it; a re-delivery runs it once).
reviewed = resources.topic("reviewed")
reviewed.subscribe(catalog.on_review)


def place_order(user: str, item: str, quantity: int = 1) -> dict:
    """Order ``quantity`` of ``item`` for ``user``; returns the order."""
    return orders.place(user, item, quantity)  # @app-call-place


def order_status(order_id: str) -> dict:
    return orders.status(order_id)


def list_products() -> dict:
    return catalog.products()


def revenue() -> dict:
    return billing.revenue()


def add_review(item: str, stars: int, text: str = "") -> dict:
    """Review a product (1 to 5 stars); returns its reviews so far."""
    if item not in config["products"]:
        raise KeyError(f"no product {item!r}")
    reviews.execute("INSERT INTO reviews VALUES (?, ?, ?)", [item, stars, text])
    reviewed.publish({"item": item, "stars": stars})
    return reviews_of(item)


def reviews_of(item: str) -> dict:
    rows = reviews.query("SELECT stars, text FROM reviews WHERE item = ? ORDER BY rowid", [item])
    average = round(sum(stars for stars, _ in rows) / len(rows), 2) if rows else None
    return {"item": item, "average": average,
            "reviews": [{"stars": stars, "text": text} for stars, text in rows]}


def receipt_signature(receipt_id: str) -> str:
    """The shop's signature of a receipt (billing signs it with a secret)."""
    return billing.sign(receipt_id)


def shop_info() -> dict:
    """What the shop sells in and since when: answered by the root alone, calling nothing."""
    return {"currency": config["currency"], "built_at": built_at}
