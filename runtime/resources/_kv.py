"""``resources.kv``: a key-value store — ``get``, ``put``, ``delete``, ``scan(prefix)`` — kept
in a SQLite file. Keys are strings; a value is anything that can cross a membrane, stored in
its wire form, so ``get`` returns what ``put`` was given."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cbor2

from ..membrane import from_wire, to_wire
from ._kinds import Kind, ResourceError, register
from ._sql import StoredBackend, _NoClasses, open_sqlite

__all__ = ["KV", "KvBackend"]

_TABLE = "distdev_kv"


def _key(export: str, key: Any) -> str:
    if not isinstance(key, str):
        raise ResourceError(f"{export}(key, ...): a key is a string, not a "
                            f"{type(key).__name__}")
    return key


class KvBackend(StoredBackend):
    def __init__(self, resource_id: str, folder: Path) -> None:
        super().__init__(resource_id, open_sqlite(folder))
        with self.db.lock, self.db.transaction() as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {_TABLE} "
                           "(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")

    def _get(self, cursor: Any, key: str, default: Any = None) -> Any:
        cursor.execute(f"SELECT value FROM {_TABLE} WHERE key = ?", (_key("get", key),))
        row = cursor.fetchone()
        return default if row is None else from_wire(cbor2.loads(row[0]), _NoClasses())

    def _put(self, cursor: Any, key: str, value: Any) -> None:
        encoded = cbor2.dumps(to_wire(value, f"the value put under {key!r}"))
        cursor.execute(f"INSERT OR REPLACE INTO {_TABLE} VALUES (?, ?)", (_key("put", key),
                                                                          encoded))

    def _delete(self, cursor: Any, key: str) -> bool:
        cursor.execute(f"DELETE FROM {_TABLE} WHERE key = ?", (_key("delete", key),))
        return bool(cursor.rowcount)

    def _scan(self, cursor: Any, prefix: str = "") -> list[tuple[str, Any]]:
        _key("scan", prefix)
        # Keys from prefix up to (not including) the next prefix: an index range, no LIKE.
        if prefix:
            cursor.execute(f"SELECT key, value FROM {_TABLE} WHERE key >= ? AND key < ? "
                           "ORDER BY key", (prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)))
        else:
            cursor.execute(f"SELECT key, value FROM {_TABLE} ORDER BY key")
        return [(k, from_wire(cbor2.loads(v), _NoClasses())) for k, v in cursor.fetchall()]

    methods = {"get": _get, "put": _put, "delete": _delete, "scan": _scan}
    reads = frozenset({"get", "scan"})


def _open(resource_id: str, options: Mapping[str, Any], folder: Path) -> KvBackend:
    return KvBackend(resource_id, folder)


def _check_options(resource_id: str, options: dict[str, Any]) -> dict[str, Any]:
    if options:
        raise ResourceError(f"resources.kv({resource_id.rpartition('/')[2]!r}) takes no options, "
                            f"not {', '.join(options)}")
    return {}


KV = register(Kind(
    name="kv",
    exports={"get": "(key: str, default: Any = None) -> Any",
             "put": "(key: str, value: Any) -> None",
             "delete": "(key: str) -> bool",
             "scan": "(prefix: str = '') -> list[tuple[str, Any]]"},
    docs={"get": "The value stored under key, or default.",
          "put": "Store value under key (any value that can cross a membrane).",
          "delete": "Remove key; whether it was there.",
          "scan": "Every (key, value) whose key starts with prefix, in key order."},
    open=_open,
    check_options=_check_options,
    ray=True,  # served by an actor, its storage in the shared state folder
))
KvBackend.kind = KV
