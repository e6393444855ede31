"""Products and prices."""

from __future__ import annotations

from distdev import host

host.process()

_prices: dict[str, int] = {}
currency = "EUR"
ratings: dict[str, list[int]] = {}
"""The stars of every review posted, per product, as the shop's ``reviewed`` topic delivered
them."""


def load(prices: dict[str, int], currency_code: str) -> None:
    global currency
    _prices.update(prices)
    currency = currency_code


def price(item: str) -> int:
    if item not in _prices:
        raise KeyError(f"no product {item!r}; the catalog has {sorted(_prices)}")
    return _prices[item]


def products() -> dict:
    return {"currency": currency, "prices": dict(_prices)}


def on_review(review: dict) -> None:
    """A review was posted (delivered by the ``reviewed`` topic)."""
    ratings.setdefault(review["item"], []).append(review["stars"])
