"""A resource's deliveries (a queue's or topic's messages) as calls over the deployment's
network: the resource calls each consumer as itself, with the key of that edge, on every engine
that serves resources in processes of their own (local, Ray)."""

from __future__ import annotations

from typing import Any

from ..resources import Deliver, Rejected
from ..service import CallFailed
from ._client import Network

__all__ = ["network_deliverer"]


def network_deliverer(resource_id: str, network: Network) -> Deliver:
    """A delivery as a call over ``network``: re-sent, with the same call id, while the
    consumer restarts (``Network.call``); an exception its code raised is a failed attempt,
    anything else (unreachable, timed out) leaves the message to be sent again as it is."""
    def deliver(service_id: str, export: str, caller_seq: str, args: list[Any]) -> Any:
        try:
            return network.call(service_id, f"{resource_id}-{caller_seq}", caller_seq, export,
                                args, {})
        except CallFailed as failed:
            raise Rejected(f"{failed.info.type}: {failed.info.message}") from None
    return deliver
