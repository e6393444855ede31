"""JSON for values that cross a membrane: the one rule of the HTTP ingress and ``distdev call``.

Out, from a wire form (so it needs none of the service's classes, and a command line holding
only a reply encodes it the same as the ingress holding the objects): datetimes, dates and
times as ISO 8601 text, timedeltas as ISO 8601 durations, Decimals as strings, UUIDs in their
canonical text, bytes as base64, tuples and sets as arrays, Enums by value, dataclasses and
Structs as objects of their fields, proxies as ``{"$service": id}``; UTF-8 is kept as it is.
Those are msgspec's own JSON encodings, so ``msgspec.json.schema`` describes the output.

In, towards the annotations of an export's parameters (``decode_arguments``): each JSON value is
converted with ``msgspec.convert`` (strict: ``"12"`` is no int), so an object becomes the
annotated dataclass or Struct, a string the annotated datetime, UUID or Decimal, an array the
annotated set or tuple, ``{"$service": id}`` a proxy. A value that does not fit raises
``HTTPError(422)`` naming the parameter and the path inside it (``money.currency``).

A call whose arguments are JSON (``distdev call``) carries them as one tagged wire value
(``json_call``), so the *callee*, which has the annotations and classes, converts them; the
journal keeps the JSON as it arrived, and a replay converts it again the same way.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import inspect
import re
import typing
import uuid
import weakref
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import msgspec
from cbor2 import CBORTag, frozendict

from ..errors import HTTPError, MembraneError
from . import _values as v
from ._proxy import ServiceProxy

__all__ = ["wire_to_json", "value_to_json", "json_ready", "json_call", "is_json_call",
           "decode_arguments", "call_arguments", "UNPROCESSABLE"]

UNPROCESSABLE = HTTPStatus.UNPROCESSABLE_ENTITY.value
"""The status of arguments that do not fit the export's annotations (422)."""

# -- out: a wire form as JSON ---------------------------------------------------------------------


def wire_to_json(wire: Any) -> bytes:
    """The UTF-8 JSON of a wire value."""
    return msgspec.json.encode(json_ready(wire))


def value_to_json(value: Any, where: str) -> bytes:
    """The UTF-8 JSON of a value that can cross a membrane (else ``MembraneError`` naming
    ``where``): the same JSON as its wire form's. JSON goes to the outside, which imports no
    service module: classes defined in one may be in it."""
    with v.with_the_outside():
        return wire_to_json(v.to_wire(value, where))


def json_ready(wire: Any) -> Any:
    """A wire value as data msgspec encodes to JSON by the rule above."""
    t = type(wire)
    if t in (str, int, float, bool, bytes) or wire is None:
        return wire
    if t is list or t is tuple:
        return [json_ready(x) for x in wire]
    if t is dict or t is frozendict:  # a map inside a tag, as cbor2 decodes it
        return {_key_text(k): json_ready(x) for k, x in wire.items()}
    if t is CBORTag:
        return _tag_ready(wire.tag, wire.value)
    raise MembraneError(f"a reply holds a value of unexpected type {t.__name__}")


_AS_ARRAY = frozenset({v.TAG_TUPLE, v.TAG_SET, v.TAG_FROZENSET})
_REBUILT: dict[int, Callable[[Any], Any]] = {
    v.TAG_DATETIME: _dt.datetime.fromisoformat,
    v.TAG_DATE: _dt.date.fromisoformat,
    v.TAG_TIME: _dt.time.fromisoformat,
    v.TAG_TIMEDELTA: lambda x: _dt.timedelta(days=x[0], seconds=x[1], microseconds=x[2]),
    v.TAG_DECIMAL: decimal.Decimal,
    v.TAG_UUID: lambda x: uuid.UUID(bytes=bytes(x)),
    # JSON text is UTF-8: a lone surrogate (an undecodable file name) becomes U+FFFD.
    v.TAG_ESCAPED_STR: lambda x: bytes(x).decode("utf-8", "replace"),
}


def _tag_ready(tag: int, value: Any) -> Any:
    if tag in _AS_ARRAY:
        return [json_ready(x) for x in value]
    rebuild = _REBUILT.get(tag)
    if rebuild is not None:
        return rebuild(value)  # msgspec encodes it: its text is the one its schemas describe
    if tag == v.TAG_ENUM:
        return json_ready(value[1])
    if tag == v.TAG_OBJECT:
        return {name: json_ready(x) for name, x in value[1].items()}
    if tag == v.TAG_PROXY:
        return {"$service": value}
    if tag == v.TAG_EXPORT:
        return {"$service": value[0], "$export": value[1]}
    if tag == v.TAG_JSON:
        return json_ready(value)
    raise MembraneError(f"a reply holds an unknown CBOR tag {tag}")


def _key_text(key: Any) -> str:
    """A JSON object key: a str as it is, anything else as its JSON (a string's unquoted)."""
    if type(key) is str:
        return key
    encoded = msgspec.json.decode(wire_to_json(key))
    return encoded if isinstance(encoded, str) else msgspec.json.encode(encoded).decode()


# -- a call whose arguments are JSON --------------------------------------------------------------


def json_call(args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    """The wire arguments of a call made with JSON values: the callee converts them to its
    parameters' annotated types (``call_arguments``)."""
    return [CBORTag(v.TAG_JSON, [args, kwargs])]


def is_json_call(args: list[Any], kwargs: dict[str, Any]) -> bool:
    return (len(args) == 1 and not kwargs and type(args[0]) is CBORTag
            and args[0].tag == v.TAG_JSON)


def call_arguments(function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any],
                   receiver: v.Receiver) -> tuple[list[Any], dict[str, Any]]:
    """The arguments to call ``function`` with, on the callee's side, from their wire form:
    rebuilt as they were sent, or, for a JSON call, converted to the annotated types."""
    if not is_json_call(args, kwargs):
        return v.from_wire(args, receiver), {k: v.from_wire(x, receiver) for k, x in kwargs.items()}
    json_args, json_kwargs = _thawed(args[0].value)
    return decode_arguments(function, json_args, json_kwargs, receiver.make_proxy)


def _thawed(value: Any) -> Any:
    """JSON as JSON decodes (lists and dicts), from a tag's contents as cbor2 decodes them
    (tuples and frozendicts): an export that takes the JSON as it is gets it mutable."""
    if isinstance(value, (list, tuple)):
        return [_thawed(x) for x in value]
    if isinstance(value, (dict, frozendict)):
        return {k: _thawed(x) for k, x in value.items()}
    return value


# -- in: JSON values towards the annotations ------------------------------------------------------


class _Shape:
    """What converting a function's arguments needs, worked out once per function."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.parameters = list(inspect.signature(function).parameters.values())
        self.hints = annotations_of(function)
        kinds = inspect.Parameter
        self.positional = [p for p in self.parameters
                           if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
        self.by_name = {p.name: p for p in self.parameters
                        if p.kind not in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)}
        self.var_positional = next((p for p in self.parameters
                                    if p.kind is kinds.VAR_POSITIONAL), None)
        self.var_keyword = next((p for p in self.parameters if p.kind is kinds.VAR_KEYWORD), None)


_shapes: weakref.WeakKeyDictionary[Callable[..., Any], _Shape] = weakref.WeakKeyDictionary()


def _shape(function: Callable[..., Any]) -> _Shape:
    try:
        return _shapes[function]
    except (KeyError, TypeError):
        shape = _Shape(function)
        try:
            _shapes[function] = shape
        except TypeError:  # not weak-referenceable: worked out again next time
            pass
        return shape


def annotations_of(function: Callable[..., Any]) -> dict[str, Any]:
    """Parameter name (and ``return``) -> annotated type, resolved in the function's module;
    an annotation that does not resolve (a name imported only under ``TYPE_CHECKING``) is
    ``Any``: its value is passed as the JSON holds it."""
    function = inspect.unwrap(function)  # a decorated export: its own module's names
    try:
        # With extras: ``Annotated[int, msgspec.Meta(ge=1)]`` is checked, and documented.
        return typing.get_type_hints(function, include_extras=True)
    except Exception:
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(function, "__globals__", {})
    for name, annotation in getattr(function, "__annotations__", {}).items():
        try:
            hints[name] = (eval(annotation, namespace) if isinstance(annotation, str)
                           else annotation)
        except Exception:
            hints[name] = Any
    return hints


def decode_arguments(function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any],
                     make_proxy: Callable[[str], Any] | None = None,
                     ) -> tuple[list[Any], dict[str, Any]]:
    """``function``'s arguments from JSON values: bound to its parameters as a call would
    bind them, each converted to its annotated type. Raises ``HTTPError(422)`` naming the
    parameter (and the path inside it) that is missing, unexpected or of the wrong type."""
    shape = _shape(function)
    named, extra = _bind(shape, args, kwargs)
    rest = shape.hints.get(shape.var_keyword.name, Any) if shape.var_keyword else Any
    converted = {name: _convert(value, shape.hints.get(name, Any) if name in shape.by_name
                                else rest, name, make_proxy)
                 for name, value in named.items()}
    star = shape.var_positional
    extra_args = [_convert(value, shape.hints.get(star.name, Any) if star else Any,
                           f"{star.name if star else 'args'}[{i}]", make_proxy)
                  for i, value in enumerate(extra)]
    call_args: list[Any] = []
    for p in shape.positional:
        if p.kind is not p.POSITIONAL_ONLY or p.name not in converted:
            break
        call_args.append(converted.pop(p.name))
    if extra_args:  # what follows *args in the call: every positional parameter, by position
        for p in shape.positional[len(call_args):]:
            call_args.append(converted.pop(p.name))
    return call_args + extra_args, converted


def _bind(shape: _Shape, args: list[Any], kwargs: dict[str, Any],
          ) -> tuple[dict[str, Any], list[Any]]:
    named: dict[str, Any] = {}
    extra: list[Any] = []
    for i, value in enumerate(args):
        if i < len(shape.positional):
            named[shape.positional[i].name] = value
        elif shape.var_positional is not None:
            extra.append(value)
        else:
            names = ", ".join(p.name for p in shape.positional) or "none"
            _refuse(f"args[{i}]", f"too many positional arguments: {len(args)} given, "
                    f"{len(shape.positional)} taken ({names})")
    for name, value in kwargs.items():
        if name in named:
            _refuse(name, "given twice: by position and by name")
        if name not in shape.by_name and shape.var_keyword is None:
            known = ", ".join(shape.by_name) or "none"
            _refuse(name, f"unexpected argument; the parameters are: {known}")
        named[name] = value
    for p in shape.by_name.values():
        if p.default is p.empty and p.name not in named:
            _refuse(p.name, "missing required argument")
    return named, extra


def _convert(value: Any, hint: Any, field: str, make_proxy: Callable[[str], Any] | None) -> Any:
    if hint is Any or hint is inspect.Parameter.empty:
        return value

    def dec_hook(kind: type, obj: Any) -> Any:
        base = value_base(kind)
        if base is not None:
            return msgspec.convert(obj, base, strict=True)
        if kind is ServiceProxy and make_proxy is not None and isinstance(obj, dict) \
                and set(obj) == {"$service"} and isinstance(obj["$service"], str):
            return make_proxy(obj["$service"])
        raise NotImplementedError(f"expected {getattr(kind, '__name__', kind)}")

    try:
        return msgspec.convert(value, hint, strict=True, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        path, problem = _located(str(exc))
        _refuse(field + path, problem)
    except TypeError as exc:  # the annotation itself: loud, not the JSON passed on unconverted
        raise MembraneError(
            f"argument {field} is annotated {getattr(hint, '__name__', hint)}, which JSON "
            f"cannot be converted to ({exc}); annotate it with a type JSON expresses (or Any, to "
            "take the value as the JSON has it)") from None
    raise AssertionError("unreachable")


_VALUE_TYPES = (_dt.datetime, _dt.date, _dt.time, _dt.timedelta, decimal.Decimal, uuid.UUID)


def value_base(kind: Any) -> type | None:
    """The membrane value type a subclass stands for (a service's virtualized ``datetime``,
    whose ``now()`` is journaled): it crosses, and converts, as that type."""
    mro: tuple[type, ...] = getattr(kind, "__mro__", ())
    return next((base for base in mro[1:] if base in _VALUE_TYPES), None)


_AT = re.compile(r"^(?P<problem>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<name>[^`]+)`$")


def _located(message: str) -> tuple[str, str]:
    """(path inside the value, problem) from a msgspec validation message."""
    found = _AT.match(message)
    assert found is not None
    problem, path = found["problem"], found["path"] or ""
    field = _FIELD.match(problem)
    if field is not None:  # the missing or unknown field is the wrong part
        path += f".{field['name']}"
    return path, problem


def _refuse(field: str, problem: str) -> typing.NoReturn:
    raise HTTPError(UNPROCESSABLE, f"argument {field}: {problem}",
                    {"field": field, "problem": problem})
