"""Exceptions in their wire form, and back.

Across a membrane, builtin exception types and distdev's own errors arrive as themselves; any
other type arrives as ``ServiceError`` carrying the type name, message and remote traceback — the
caller does not have the callee's classes (each service loads its own copy of its modules).
An effect's exception is rebuilt as its own class when this service can name it, so code that
catches a library's exception behaves the same when the effect is replayed.
"""

from __future__ import annotations

import builtins
import importlib
import traceback
from collections.abc import Callable
from typing import Any

import msgspec

from .. import errors
from .._own_code import is_distdev_file
from ..errors import MembraneError, ServiceError
from ._values import can_cross, from_wire, to_wire


class ErrorInfo(msgspec.Struct, frozen=True, array_like=True):
    """An exception as it crosses a membrane (and as journals record it)."""

    module: str
    type: str
    message: str
    args: list[Any]
    traceback: str
    attributes: dict[str, Any] = {}
    """What the exception held besides its arguments (``.status`` set in its ``__init__``, an
    OSError's ``filename``), in wire form: rebuilt with it, it behaves the same."""


def _attributes(exc: BaseException) -> dict[str, Any]:
    found: dict[str, Any] = {}
    held = dict(getattr(exc, "__dict__", {}))
    if isinstance(exc, OSError):
        held.update(filename=exc.filename, filename2=exc.filename2)
    for name, value in held.items():
        if name.startswith("__") or not can_cross(value):
            continue
        found[name] = to_wire(value, name)
    return found


def error_info(exc: BaseException) -> ErrorInfo:
    """The wire form of an exception, with distdev's own frames left out of its traceback."""
    cls = type(exc)
    try:
        args = to_wire(list(exc.args), "exception arguments")
    except MembraneError:
        args = [str(exc)]
    if isinstance(exc, ServiceError):  # carried through a middle service: keep the origin
        return ErrorInfo("distdev.errors", "ServiceError", exc.message,
                         [exc.service, exc.type_name, exc.message, exc.remote_traceback],
                         exc.remote_traceback)
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if not is_distdev_file(f.filename)
    ]
    text = "".join(
        ["Traceback (most recent call last):\n"]
        + traceback.format_list(frames)
        + traceback.format_exception_only(exc)
    )
    module = "distdev.errors" if cls.__module__ == errors.__name__ else cls.__module__
    return ErrorInfo(module, cls.__qualname__, str(exc), args, text, _attributes(exc))


def rebuild_exception(
    info: ErrorInfo,
    origin: str,
    receiver: Any,
    *,
    resolve: Callable[[str, str], type] | None = None,
) -> BaseException:
    """An exception to raise on the receiving side of a membrane.

    ``resolve`` names classes beyond builtins and distdev's errors (used for effects).
    """
    if (info.module, info.type) == ("distdev.errors", "ServiceError") and len(info.args) == 4:
        return ServiceError(*info.args)
    cls = _known_class(info.module, info.type, resolve)
    if cls is not None:
        try:
            args = from_wire(info.args, receiver)
        except Exception:
            args = [info.message]
        exc = _construct(cls, args)
        for name, value in info.attributes.items():
            try:
                value = from_wire(value, receiver)
                if getattr(exc, name, _ABSENT) == value:
                    continue  # set again, OSError's filename2=None would print as "-> None"
                setattr(exc, name, value)
            except Exception:
                continue  # an attribute the class does not take back: the rest still hold
        if info.traceback:
            exc.add_note(f"raised in {origin}:\n{info.traceback.rstrip()}")
        return exc
    return ServiceError(origin, info.type, info.message, info.traceback)


_ABSENT = object()


def _construct(cls: type[BaseException], args: list[Any]) -> BaseException:
    """The exception as its class makes it (its ``__init__`` runs: an OSError's errno and
    strerror come back), or, for a class whose ``__init__`` takes other arguments than its
    ``args`` hold, an instance with those args."""
    try:
        exc = cls(*args)
    except Exception:
        exc = cls.__new__(cls, *args)
    exc.args = tuple(args)
    return exc


def _known_class(
    module: str, qualname: str, resolve: Callable[[str, str], type] | None
) -> type[BaseException] | None:
    cls: Any = None
    if module == "builtins":
        cls = getattr(builtins, qualname, None)
    elif module == "distdev.errors":
        cls = getattr(errors, qualname, None)
    elif resolve is not None:
        try:
            cls = resolve(module, qualname)
        except Exception:
            try:
                cls = importlib.import_module(module)
                for part in qualname.split("."):
                    cls = getattr(cls, part)
            except Exception:
                cls = None
    if isinstance(cls, type) and issubclass(cls, BaseException) and cls is not ServiceError:
        return cls
    return None
