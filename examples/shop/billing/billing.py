"""Charges customers; keeps its books in a nested ledger service."""

from __future__ import annotations

import os
import secrets
import uuid

from models import Receipt, format_cents

from distdev import effect, host, import_service

host.process()

region = os.environ.get("SHOP_REGION", "eu")  # an environment read, journaled
signing_key = secrets.token_hex(16)  # generated once, at build time
ledger = import_service("./ledger.py")
charges: list[dict] = []


@effect
def send_receipt(user: str, text: str) -> str:
    """User IO: deliver a receipt. Journaled; not repeated on replay."""
    outbox = os.environ.get("SHOP_OUTBOX")
    if outbox:
        with open(outbox, "a") as f:
            f.write(f"{user}: {text}\n")
    return f"sent-{len(text)}"


def charge(user: str, cents: int) -> Receipt:
    if cents <= 0:  # @billing-charge-first
        raise ValueError(f"cannot charge {cents} cents")
    receipt_id = str(uuid.uuid4())
    entry = ledger.record(user, cents)  # @billing-call-record
    delivery = send_receipt(user, f"charged {format_cents(cents)} ({receipt_id})")
    charges.append({"receipt": receipt_id, "user": user, "cents": cents, "delivery": delivery})
    return Receipt(receipt_id, user, cents, entry)  # @billing-charge-return


def revenue() -> dict:
    return {"region": region, "charges": len(charges), "total_cents": ledger.total()}
