"""The queue's consumer: counts each message it handles; a message marked poison fails."""

from __future__ import annotations

from typing import Any

handled: list[int] = []


def handle(message: dict[str, Any]) -> None:
    if message.get("poison"):
        raise ValueError(f"cannot handle {message['n']}")
    handled.append(message["n"])


def seen() -> list[int]:
    return list(handled)
