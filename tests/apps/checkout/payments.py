"""What the checkout and the bank both know about payments: a helper module, not a service, so
each service has its own copy and exceptions defined here cross membranes as themselves."""

from __future__ import annotations


class PaymentError(Exception):
    """A payment did not go through."""


class CreditCardError(PaymentError):
    """The card was declined: a constructor of its own, with keyword-only arguments."""

    def __init__(self, message: str, *, last4: str, cents: int) -> None:
        super().__init__(message)
        self.last4 = last4
        self.cents = cents
