"""Charges customers; keeps its books in a nested ledger service."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid

from models import Receipt, format_cents

from distdev import effect, host, import_service, resources

host.process()

region = os.environ.get("SHOP_REGION", "eu")  # an environment read, journaled
# Generated once, at build time, into the build's secret store: its value is in no journal
# (they record a reference), and reveal() returns it at runtime only.
signing_key = resources.secret("signing-key", generate=32)
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


def sign(receipt_id: str) -> str:
    """An HMAC-SHA256 of a receipt id under the signing key."""
    return hmac.new(signing_key.reveal().encode(), receipt_id.encode(), hashlib.sha256).hexdigest()


def revenue() -> dict:
    return {"region": region, "charges": len(charges), "total_cents": ledger.total()}
