"""Exceptions in their wire form, and back.

An exception crosses a membrane as itself whenever the receiving service can import its class:
a builtin, one of distdev's errors, a class of the standard library or of an installed package,
or one defined in a helper module of the application (rebuilt from the receiver's own copy of
that module, so ``except PaymentError`` in the caller catches a ``CreditCardError(PaymentError)``
raised in the callee). It comes with its arguments, its attributes and, as a note, the remote
traceback (its causes' descriptions included). Otherwise it arrives as ``ServiceError`` carrying
the type name, message and remote traceback, with a note saying why: its class is defined in a
service module (no service imports another's module), the receiver cannot import it, or the
class cannot be rebuilt from what crossed. An exception is never rebuilt silently different:
if the rebuilt one does not say what the original said, it arrives as ``ServiceError``.

Journals record the class by ``module:qualname`` (``ErrorInfo``), so a restore and a replay
rebuild the same class. A call's error recorded before exceptions crossed as themselves
(``ErrorInfo.crossing`` is ``""``) is rebuilt as it was then — builtins and distdev's errors as
themselves, anything else as ``ServiceError`` — so an old journal's code takes the same branch.
An effect's error was always rebuilt as its class and still is: one rule, ``_resolve``.
"""

from __future__ import annotations

import builtins
import traceback
from typing import Any

import msgspec

from .. import errors
from .._own_code import is_distdev_file
from ..errors import MembraneError, ServiceError
from ..rules import MOVE_TO_HELPER, app_module_name
from ._values import Receiver, can_cross, defining_service_module, from_wire, to_wire

AS_CLASS = "class"
"""``ErrorInfo.crossing``: the receiver rebuilds the exception as its class if it can import it."""
IN_SERVICE_MODULE = "service-module"
"""``ErrorInfo.crossing``: the class is defined in a service module; it arrives as ServiceError."""
BEFORE_CLASSES = ""
"""``ErrorInfo.crossing`` of records written before exceptions crossed as themselves."""


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
    crossing: str = BEFORE_CLASSES
    """How a call's receiver rebuilds it: ``AS_CLASS``, ``IN_SERVICE_MODULE``, or (a journal
    written before exceptions crossed as themselves) ``BEFORE_CLASSES``."""
    maker: str = ""
    """The class's own constructor that rebuilds it from ``args``, for a class whose
    ``__reduce__`` names one (pydantic's ``ValidationError.from_exception_data``); then ``args``
    are that constructor's. Empty: the class itself, from the exception's ``args``."""


_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def _attributes(exc: BaseException) -> tuple[dict[str, Any], list[str]]:
    """The attributes that cross, in wire form, and the names of those that cannot."""
    found: dict[str, Any] = {}
    lost: list[str] = []
    held = dict(getattr(exc, "__dict__", {}))
    if isinstance(exc, OSError):
        held.update(filename=exc.filename, filename2=exc.filename2)
    for name, value in held.items():
        if name.startswith("__"):
            continue
        if can_cross(value):
            found[name] = to_wire(value, name)
        else:
            lost.append(f".{name} ({type(value).__qualname__})")
    return found, lost


def _described(exc: BaseException, seen: set[int]) -> list[str]:
    """The traceback text of ``exc`` and of what it was raised from, without distdev's frames."""
    lines: list[str] = []
    cause = exc.__cause__ if exc.__cause__ is not None else (
        None if exc.__suppress_context__ else exc.__context__)
    if cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        lines += _described(cause, seen)
        lines.append(_CAUSE if exc.__cause__ is not None else _CONTEXT)
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if not is_distdev_file(f.filename)
    ]
    described = "".join(traceback.format_exception_only(exc))
    module = type(exc).__module__
    if module != app_module_name(module):  # a service's copy: named as the app names it
        described = described.replace(f"{module}.", f"{app_module_name(module)}.", 1)
    return [*lines, "Traceback (most recent call last):\n", *traceback.format_list(frames),
            described]


def error_info(exc: BaseException) -> ErrorInfo:
    """The wire form of an exception, with distdev's own frames left out of its traceback."""
    if isinstance(exc, ServiceError):  # carried through a middle service: keep the origin
        return ErrorInfo("distdev.errors", "ServiceError", exc.message,
                         [exc.service, exc.type_name, exc.message, exc.remote_traceback],
                         exc.remote_traceback, crossing=AS_CLASS)
    cls = type(exc)
    text = "".join(_described(exc, {id(exc)}))
    maker, made_from = _maker(exc)
    try:
        args = to_wire(list(made_from), "exception arguments")
    except MembraneError:
        maker, args = "", [str(exc)]
        text += "(its arguments cannot cross a membrane: they arrive as its message)\n"
    attributes, lost = _attributes(exc)
    if lost:
        text += (f"({', '.join(lost)} cannot cross a membrane: not set where this "
                 "exception arrives)\n")
    module = "distdev.errors" if cls.__module__ == errors.__name__ else cls.__module__
    crossing = AS_CLASS if defining_service_module(cls) is None else IN_SERVICE_MODULE
    return ErrorInfo(app_module_name(module), cls.__qualname__, str(exc), args, text,
                     attributes, crossing, maker)


def _maker(exc: BaseException) -> tuple[str, tuple[Any, ...]]:
    """The class method that ``exc.__reduce__`` says rebuilds it, and its arguments; or ``""``
    and ``exc.args`` (the class itself, for every exception that pickles the ordinary way)."""
    try:
        reduced = exc.__reduce__()
    except Exception:
        return "", exc.args
    if isinstance(reduced, tuple) and len(reduced) >= 2 and isinstance(reduced[1], tuple):
        make = reduced[0]
        name = getattr(make, "__name__", None)
        if make is not type(exc) and getattr(make, "__self__", None) is type(exc) and (
                isinstance(name, str) and getattr(type(exc), name, None) == make):
            return name, reduced[1]
    return "", exc.args


def rebuild_exception(
    info: ErrorInfo, origin: str, receiver: Receiver, *, effect: bool = False
) -> BaseException:
    """An exception to raise on the receiving side of a membrane: ``origin`` raised it (a
    service, or ``effect <kind>`` for an effect's error, which ``effect=True`` says)."""
    if (info.module, info.type) == ("distdev.errors", "ServiceError") and len(info.args) == 4:
        return ServiceError(*info.args)
    if not effect and info.crossing == IN_SERVICE_MODULE:
        return _stand_in(info, origin, (
            f"{info.type} is defined in {info.module}, a service's module, which no other "
            f"service imports; to catch it as itself, {MOVE_TO_HELPER}"))
    cls, why = _resolve(info, receiver, as_before=not effect and info.crossing == BEFORE_CLASSES)
    if cls is None:
        return _stand_in(info, origin, why)
    exc = _construct(cls, info, receiver)
    if isinstance(exc, str):
        return _stand_in(info, origin, exc)
    if info.traceback:
        exc.add_note(f"raised in {origin}:\n{info.traceback.rstrip()}")
    return exc


def _stand_in(info: ErrorInfo, origin: str, why: str | None) -> ServiceError:
    """The ``ServiceError`` that stands for an exception not rebuilt as itself (saying why)."""
    stand_in = ServiceError(origin, info.type, info.message, info.traceback)
    if why is not None:
        stand_in.add_note(f"it arrives as distdev.ServiceError: {why}")
    return stand_in


def _resolve(info: ErrorInfo, receiver: Receiver,
             as_before: bool) -> tuple[type[BaseException] | None, str | None]:
    """The receiver's own class of ``info``, or None and why not (None: a record written
    before classes crossed, whose class was not a builtin or distdev's)."""
    cls: Any = None
    if info.module == "builtins":
        cls = getattr(builtins, info.type, None)
    elif info.module == "distdev.errors":
        cls = getattr(errors, info.type, None)
    elif as_before:
        return None, None
    else:
        try:
            cls = receiver.resolve_class(info.module, info.type)
        except Exception as exc:
            return None, str(exc)
    if isinstance(cls, type) and issubclass(cls, BaseException) and cls is not ServiceError:
        return cls, None
    return None, f"{info.module}:{info.type} is not an exception class where it arrives"


def _construct(cls: type[BaseException], info: ErrorInfo,
               receiver: Receiver) -> BaseException | str:
    """The exception rebuilt from what crossed, or why it cannot be.

    Made by its class (its ``__init__`` runs: an OSError's errno and strerror come back), by the
    constructor its ``__reduce__`` named (``ErrorInfo.maker``) or, for a class whose ``__init__``
    takes other arguments than its ``args`` hold (keyword-only ones, a constructor of its own),
    copied as pickle copies an exception: its ``args`` and its attributes. Either way it must
    say what the original said, or it is not rebuilt: a silently different exception would
    take the caller's code down another branch than the callee's message describes."""
    try:
        args = from_wire(info.args, receiver)
    except Exception as why:
        return f"its arguments cannot be rebuilt here ({why})"
    exc: BaseException
    if info.maker:
        try:
            made = getattr(cls, info.maker)(*args)
        except Exception as why:
            return f"{cls.__qualname__}.{info.maker} cannot rebuild it here ({why})"
        if not isinstance(made, cls):
            return f"{cls.__qualname__}.{info.maker} does not make a {cls.__qualname__} here"
        exc, args = made, list(made.args)
    else:
        try:
            exc = cls(*args)
        except Exception:
            try:
                exc = cls.__new__(cls, *args)
            except Exception as why:
                return f"{cls.__qualname__} cannot be rebuilt from its arguments ({why})"
    # A record of an old journal is rebuilt as it was then: unchecked, keeping what took.
    exact = info.crossing != BEFORE_CLASSES
    try:
        exc.args = tuple(args)
        for name, wire in info.attributes.items():
            try:
                _set_attribute(exc, name, from_wire(wire, receiver))
            except Exception:
                if exact:
                    raise
        said = str(exc)
    except Exception as why:
        return f"{cls.__qualname__} cannot be rebuilt from what crossed ({why!r})"
    if exact and said != info.message:
        return (f"rebuilt from its arguments and attributes, it would say {said!r}: give "
                f"{cls.__qualname__} a __str__ that depends only on them (or raise one that does)")
    return exc


def _set_attribute(exc: BaseException, name: str, value: Any) -> None:
    if getattr(exc, name, _ABSENT) != value:  # set again, OSError's filename2=None would
        setattr(exc, name, value)             # print as "-> None"


_ABSENT = object()
