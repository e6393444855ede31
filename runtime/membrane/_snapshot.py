"""A service's state as JSON-ready data: what ``replay`` prints and tests compare.

State is the module's variables, except modules, functions, classes and other callables, and
dunders. Proxies appear as ``{"$service": id}``. Sets keep their iteration order, so the state
shows when a hash seed changed it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import functools
import inspect
import math
import types
import uuid
from typing import Any

import msgspec

from ..rules import app_module_name
from ._proxy import ServiceProxy, export_reference, is_export, target_of

_NOT_STATE = frozenset({"typing", "typing_extensions", "__future__", "distdev.service._api"})
_PLAIN = frozenset({int, float, str, bytes, bool, type(None), dict, list, set, tuple, frozenset})
"""Types whose values are state whatever they hold (no attributes of their own to look at):
most globals, decided without the look for a decorated def."""


def is_state(name: str, value: Any) -> bool:
    """Whether a module global is part of the service's state (not a dunder, a module, a
    function or class, or a typing construct)."""
    if type(value) in _PLAIN:
        return not (name.startswith("__") and name.endswith("__"))
    return (not (name.startswith("__") and name.endswith("__"))
            and not isinstance(value, (types.ModuleType, type, functools.partial))
            and not inspect.isroutine(value)
            # a decorated def; read without running any of the value's own code (a proxy
            # would ask its service, a user class's __getattr__ could do anything)
            and not inspect.isroutine(inspect.getattr_static(value, "__wrapped__", None))
            and type(value).__module__ not in _NOT_STATE)


def service_state(namespace: dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready state of a service module's namespace."""
    return {name: to_json(value) for name, value in namespace.items() if is_state(name, value)}


def to_json(value: Any, depth: int = 0) -> Any:
    if depth > 100:
        return {"$truncated": type(value).__name__}
    if value is None or isinstance(value, (bool, int, str)) and not isinstance(value, enum.Enum):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if type(value) is ServiceProxy:
        return {"$service": target_of(value)}
    if is_export(value):
        proxy, export = export_reference(value)
        return {"$service": target_of(proxy), "$export": export}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, enum.Enum):
        return to_json(value.value, depth + 1)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {_key(k): to_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, msgspec.Struct):
        return {f: to_json(getattr(value, f), depth + 1) for f in value.__struct_fields__}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name), depth + 1)
                for f in dataclasses.fields(value)}
    cls = type(value)
    module = app_module_name(cls.__module__)  # the app's name, not one service's copy's
    shown: dict[str, Any] = {"$object": f"{module}.{cls.__qualname__}"}
    if module != cls.__module__:  # a class of the application's: what its instance holds
        held = _own_attributes(value)
        shown.update({k: to_json(v, depth + 1) for k, v in held.items() if not k.startswith("_")})
    return shown


def _own_attributes(value: Any) -> dict[str, Any]:
    """The instance's ``__dict__``, read past its class's own attribute hooks."""
    try:
        held = object.__getattribute__(value, "__dict__")
    except AttributeError:
        return {}
    return dict(held) if isinstance(held, dict) else {}


def _key(key: Any) -> str:
    return key if isinstance(key, str) else repr(to_json(key))
