"""The queue's consumer: counts each message it handles; a message marked poison fails."""

from __future__ import annotations

from typing import Any

handled: list[int] = []
cured = False


def handle(message: dict[str, Any]) -> None:
    if message.get("poison") and not cured:
        raise ValueError(f"cannot handle {message['n']}")
    handled.append(message["n"])


def cure() -> None:
    """From now on, poison is handled like any message."""
    global cured
    cured = True


def seen() -> list[int]:
    return list(handled)
