"""Loans: checks the member, takes a copy in one transaction, signs the receipt with the key
(only its digest leaves this service)."""

import hashlib
import hmac

from distdev import ServiceProxy, host

host.process()

_catalogue: ServiceProxy | None = None
_members: ServiceProxy | None = None
_key: ServiceProxy | None = None
receipts: list[str] = []


def connect(catalogue: ServiceProxy, members: ServiceProxy, key: ServiceProxy) -> None:
    global _catalogue, _members, _key
    _catalogue, _members, _key = catalogue, members, key


def lend(member: str, title: str) -> str:
    assert _catalogue is not None and _members is not None and _key is not None
    if _members.get(f"member:{member}") is None:
        raise KeyError(f"no member {member!r}")
    changed = _catalogue.transaction([
        ("UPDATE books SET copies = copies - 1 WHERE title = ? AND copies > 0", [title]),
    ])
    if changed != [1]:
        raise ValueError(f"no copy of {title!r} left")
    signature = hmac.new(_key.reveal().encode(), f"{member}:{title}".encode(),
                         hashlib.sha256).hexdigest()
    receipts.append(signature)
    return signature


def key_digest() -> str:
    assert _key is not None
    return hashlib.sha256(_key.reveal().encode()).hexdigest()
