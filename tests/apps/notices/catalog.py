"""Products, validated by pydantic and kept in an in-memory SQLite table."""

from __future__ import annotations

import sqlite3

from pydantic import BaseModel, Field


class Product(BaseModel):
    name: str = Field(min_length=1)
    cents: int = Field(ge=0)


db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, cents INTEGER)")
for seed in (Product(name="pen", cents=120), Product(name="lamp", cents=2500)):
    db.execute("INSERT INTO products (name, cents) VALUES (?, ?)", (seed.name, seed.cents))
db.commit()


def add(name: str, cents: int) -> dict:
    product = Product(name=name, cents=cents)
    row = db.execute("INSERT INTO products (name, cents) VALUES (?, ?)",
                     (product.name, product.cents)).lastrowid
    db.commit()
    return {"id": row, **product.model_dump()}


def names() -> list[str]:
    return [name for (name,) in db.execute("SELECT name FROM products ORDER BY id")]
