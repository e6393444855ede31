from __future__ import annotations


def charge(user: str, cents: int) -> str:
    return f"{user}:{cents}"
