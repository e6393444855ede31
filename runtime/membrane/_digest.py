"""State digests: what a service's globals hold, hashed one global at a time, so that a replay
that ends in other state is reported — naming the global — instead of passing in silence.

A global's digest form goes deeper than the state tools print (``_snapshot``): into the
attributes of plain objects (a pydantic model, a class of the app's own), the rows of an
in-memory SQLite database, the items of containers — far enough to see what no journal event
shows (one service reaching into another's memory in one process, state built from object
identity or garbage-collection timing, a database's ``CURRENT_TIMESTAMP``). It never holds
addresses: an object that has nothing else to show is its type. The walk is bounded (depth and
size), the same way every time, so the same state always has the same digest.

Cost grows with the size of the state; ``Service`` spaces digests out when they cost more than
a small share of its calls.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import json
import logging
import math
import sqlite3
import types
import uuid
from typing import Any

import msgspec

from ._proxy import ServiceProxy, target_of
from ._snapshot import is_state

try:
    from ._plain import is_plain
except ImportError:  # built without a compiler: every digest form is json.dumps's
    def is_plain(value: object) -> bool:
        return False

__all__ = ["state_digest", "global_hash", "Digest"]

Digest = dict[str, list[str]]
"""Global name -> [its hash, a short preview of its value]."""

_MAX_DEPTH = 12
_MAX_NODES = 20_000
_PREVIEW = 100
_msgspec_json = msgspec.json.Encoder().encode


def state_digest(namespace: dict[str, Any]) -> Digest:
    """The digest of a service module's state: one entry per global that is state."""
    digest: Digest = {}
    for name, value in namespace.items():
        if not is_state(name, value):
            continue
        form = _encoded(value)
        preview = form if len(form) <= _PREVIEW else form[: _PREVIEW - 3] + "..."
        digest[name] = [_hash(form), preview.encode("utf-8", "backslashreplace").decode("utf-8")]
    return digest


def global_hash(value: Any) -> str:
    """The hash one global's entry in a state digest holds: what a function service's frozen
    globals are compared by after each call, without building the whole digest."""
    return _hash(_encoded(value))


def _hash(form: str) -> str:
    raw = form.encode("utf-8", "surrogatepass")  # a lone surrogate (a non-UTF-8 value)
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


def _encoded(value: Any) -> str:
    """A global's digest form as JSON text: for the plain data most state is, msgspec's
    encoder where it writes what ``json.dumps`` writes (``_plain``: ten times faster); else
    ``_json_form``."""
    if is_plain(value):
        try:
            return _msgspec_json(value).decode()
        except UnicodeEncodeError:  # a lone surrogate, which json.dumps writes as it is
            pass
    return _json_form(value)


def _json_form(value: Any) -> str:
    """The digest form by ``json.dumps``: C's encoder for plain data, the walk below for the
    rest (a key that is no string, a cycle, an object's attributes)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          default=_Walk().form)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(_Walk().form(value), separators=(",", ":"), ensure_ascii=False)


_ABSENT = object()


def _raw_attribute(value: object, name: str) -> Any:
    try:
        return object.__getattribute__(value, name)
    except AttributeError:
        return _ABSENT
    except Exception:  # a slot's descriptor of a C type, or the like
        return _ABSENT


def _is_distdev(cls: type) -> bool:
    module = cls.__module__
    return module == "distdev" or module.startswith("distdev.")


def _type_name(value: object) -> str:
    return type(value).__name__


class _Walk:
    """One global's digest form; ``seen`` cuts cycles and ``nodes`` bounds the walk."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.nodes = 0

    def form(self, value: Any, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES or depth > _MAX_DEPTH:
            return "$cut"
        if value is None or isinstance(value, (bool, int, str)) and not isinstance(value, enum.Enum):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else repr(value)
        if type(value) is ServiceProxy:
            return ["$service", target_of(value)]
        if isinstance(value, (bytes, bytearray, memoryview)):
            return ["$bytes", base64.b64encode(bytes(value)).decode()]
        if isinstance(value, (_dt.date, _dt.time, _dt.timedelta, decimal.Decimal, uuid.UUID)):
            return [type(value).__name__, str(value)]
        if isinstance(value, enum.Enum):
            return ["$enum", type(value).__qualname__, self.form(value.value, depth + 1)]
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                              type, types.ModuleType)):
            return ["$" + _type_name(value), str(getattr(value, "__qualname__", ""))]
        if id(value) in self.seen:
            return "$cycle"
        self.seen.add(id(value))
        try:
            return self._composite(value, depth)
        finally:
            self.seen.discard(id(value))

    def _composite(self, value: Any, depth: int) -> Any:
        if isinstance(value, (list, tuple)):
            return [type(value).__name__, [self.form(v, depth + 1) for v in value]]
        if isinstance(value, (set, frozenset)):
            return [type(value).__name__, [self.form(v, depth + 1) for v in value]]
        if isinstance(value, dict):
            return ["dict", [[self.form(k, depth + 1), self.form(v, depth + 1)]
                             for k, v in value.items()]]
        if isinstance(value, sqlite3.Connection):
            return ["$sqlite", self._database(value)]
        if isinstance(value, msgspec.Struct):
            return [type(value).__qualname__,
                    [self.form(getattr(value, f), depth + 1) for f in value.__struct_fields__]]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return [type(value).__qualname__, [self.form(getattr(value, f.name), depth + 1)
                                               for f in dataclasses.fields(value)]]
        if isinstance(value, logging.Logger):
            # its parent and manager are the process's whole logging tree (a host's handlers
            # included): the logger is its name and level
            return ["$logger", value.name, value.level]
        if _is_distdev(type(value)):
            return ["$distdev", type(value).__qualname__]  # distdev's own: the process's, not
            # the service's (a journaled stream holds the service it reads for)
        return [type(value).__qualname__, self._attributes(value, depth)]

    def _attributes(self, value: Any, depth: int) -> Any:
        """The instance's own attributes, read past its class's ``__getattr__`` and
        ``__getattribute__``: a digest never runs the code of the state it looks at."""
        held = _raw_attribute(value, "__dict__")
        found = dict(held) if isinstance(held, dict) else {}
        for cls in type(value).__mro__:
            slots = cls.__dict__.get("__slots__", ())
            for slot in (slots,) if isinstance(slots, str) else slots:
                if isinstance(slot, str) and slot not in found:
                    attribute = _raw_attribute(value, slot)
                    if attribute is not _ABSENT:
                        found[slot] = attribute
        return [[k, self.form(v, depth + 1)] for k, v in found.items()]

    @staticmethod
    def _database(connection: sqlite3.Connection) -> list[str]:
        try:
            return list(connection.iterdump())
        except sqlite3.Error as exc:  # closed, or mid-transaction in another thread
            return [f"$unreadable {type(exc).__name__}"]
