"""A topic subscriber: keeps every message's number, in the order it got them."""

from __future__ import annotations

from typing import Any

received: list[int] = []


def on_event(message: dict[str, Any]) -> None:
    received.append(message["n"])


def seen() -> list[int]:
    return list(received)
