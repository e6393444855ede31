"""Values crossing a membrane: validation, copying and their journal form.

Every value that crosses (arguments, results, effect values, exception arguments) is turned into
its *wire form*: CBOR-ready data where every type CBOR would blur is wrapped in a semantic tag.
The wire form is what journals store and what the network carries; the receiving side rebuilds
fresh objects from it, so two services never share a mutable object, in one process or many.

Classes (Enums, dataclasses, msgspec Structs) travel as ``module:qualname`` and are rebuilt from
the *receiving* service's own copy of that module, since each service loads its own. A class
defined in a service module is refused where it would leave (``defining_service_module``): the
receiver would have to import that service's module, running its top level a second time.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import struct
import sys
import threading
import types
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import cbor2
import msgspec
from cbor2 import CBORTag, frozendict

from ..errors import MembraneError
from ..rules import MEMBRANE_TYPES, MOVE_TO_HELPER, app_module_name, service_module_file
from ._proxy import ServiceProxy, export_of, export_reference, is_export, target_of

if TYPE_CHECKING:
    from ._cbor import Encoder

# Private tags (cbor2 would decode the registered ones for set, date and UUID into objects
# whose contents skip from_wire, so distdev uses its own throughout).
TAG_TUPLE = 55800
_FIRST_OWN_TAG = TAG_TUPLE  # distdev's tags are 55800 and up: none means anything to cbor2
TAG_SET = 55809
TAG_FROZENSET = 55801
TAG_DATETIME = 55802
TAG_DATE = 55810
TAG_TIME = 55803
TAG_TIMEDELTA = 55804
TAG_DECIMAL = 55805
TAG_UUID = 55811
TAG_ENUM = 55806
TAG_OBJECT = 55807
TAG_PROXY = 55808
TAG_EXPORT = 55814
"""One export of a proxy, not called (``mailer.send``): ``[service id, export name]``."""
TAG_ESCAPED_STR = 55812
"""A str holding lone surrogates (a non-UTF-8 environment value or file name, decoded with
``surrogateescape``): CBOR text must be UTF-8, so it travels as its escaped bytes."""

TAG_JSON = 55813
"""A call's arguments as JSON values, ``[args, kwargs]`` (``distdev call``): the callee converts
them to its parameters' annotated types (``_json``)."""

_SCALARS = frozenset({type(None), bool, int, float, str, bytes})

ALLOWED = MEMBRANE_TYPES


class Receiver(Protocol):
    """What rebuilding a value needs from the receiving side."""

    def resolve_class(self, module: str, qualname: str) -> type: ...

    def make_proxy(self, service_id: str) -> Any: ...


class _Refused(Exception):
    """Raised deep inside ``_wire``; ``to_wire`` re-walks the value to name where it failed."""


def can_cross(value: Any) -> bool:
    """Whether ``value`` can cross a membrane."""
    try:
        _wire(value)
    except _Refused:
        return False
    return True


def to_wire(value: Any, where: str | Callable[[], str]) -> Any:
    """The wire form of ``value``, or ``MembraneError`` naming ``where`` and the bad part.

    ``where`` may be a function, so a hot path builds its description only on failure."""
    try:
        return _wire(value)
    except _Refused:
        _explain(value, where if isinstance(where, str) else where())
        raise AssertionError("unreachable") from None


def args_to_wire(
    args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any], target: str, export: str
) -> tuple[list[Any], dict[str, Any]]:
    """Wire forms of a call's arguments. One that cannot cross is named by its position or
    keyword only: the caller names it so at recording and at replay alike, where the callee's
    signature is not at hand (a caller that keeps the message keeps the same state)."""
    try:
        return [_wire(a) for a in args], {k: _wire(v) for k, v in kwargs.items()}
    except _Refused:
        for i, a in enumerate(args):
            to_wire(a, f"argument {i + 1} of {target}.{export}")
        for k, v in kwargs.items():
            to_wire(v, f"argument {k!r} of {target}.{export}")
        raise AssertionError("unreachable") from None


def _wire(value: Any) -> Any:
    t = type(value)
    if t in _SCALARS:
        return value
    if t is list:
        return [_wire(v) for v in value]
    if t is dict:
        return {_key(k): _wire(v) for k, v in value.items()}
    if t is tuple:
        return CBORTag(TAG_TUPLE, [_wire(v) for v in value])
    encode = _ENCODERS.get(t)
    if encode is not None:
        return encode(value)
    return _wire_other(value)


def _key(key: Any) -> Any:
    """The wire form of a dict key or set element: hashable all the way down."""
    return _frozen(_wire(key))


def _frozen(value: Any) -> Any:
    if type(value) is list:
        return tuple(_frozen(v) for v in value)
    if type(value) is CBORTag:
        return CBORTag(value.tag, _frozen(value.value))
    return value


def _encode_set(value: set[Any] | frozenset[Any]) -> CBORTag:
    return CBORTag(TAG_SET if type(value) is set else TAG_FROZENSET, [_key(v) for v in value])


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    set: _encode_set,
    frozenset: _encode_set,
    _dt.datetime: lambda v: CBORTag(TAG_DATETIME, v.isoformat()),
    _dt.date: lambda v: CBORTag(TAG_DATE, v.isoformat()),
    _dt.time: lambda v: CBORTag(TAG_TIME, v.isoformat()),
    _dt.timedelta: lambda v: CBORTag(TAG_TIMEDELTA, [v.days, v.seconds, v.microseconds]),
    decimal.Decimal: lambda v: CBORTag(TAG_DECIMAL, str(v)),
    uuid.UUID: lambda v: CBORTag(TAG_UUID, v.bytes),
}


_crossing = threading.local()
"""``outside``: whether values crossing on this thread go to or come from the outside."""


class with_the_outside:  # noqa: N801 - used as a function, in a with statement
    """Values crossing here go between a service and the outside (the ingress, ``distdev
    call``, a test), which imports no service module: instances of classes defined in service
    modules may cross (an HTTP root's models, defined beside its exports); the receiving
    service, if any, is the one whose module defines them.

    A class rather than a generator-based context manager: every call from the outside enters
    it twice, and a generator costs several times more to enter and leave."""

    __slots__ = ("_outer",)

    def __enter__(self) -> None:
        self._outer = getattr(_crossing, "outside", False)
        _crossing.outside = True

    def __exit__(self, *exc: object) -> None:
        _crossing.outside = self._outer


def _refused_service_module(cls: type) -> str | None:
    """The service module defining ``cls`` if that forbids it to cross here, else None."""
    service_file = defining_service_module(cls)
    if service_file is None or getattr(_crossing, "outside", False):
        return None
    return service_file


def defining_service_module(cls: type) -> str | None:
    """The file of the service module that defines ``cls``, or None if a helper module, the
    standard library or a package does (the rule: ``rules.SERVICE_MODULE_GLOBAL``)."""
    module = sys.modules.get(cls.__module__)
    return None if module is None else service_module_file(module.__dict__)


def _class_path(cls: type) -> str:
    if "<locals>" in cls.__qualname__ or _refused_service_module(cls) is not None:
        raise _Refused()
    return f"{app_module_name(cls.__module__)}:{cls.__qualname__}"


def _fields(value: Any) -> list[str] | None:
    if isinstance(value, msgspec.Struct):
        return list(value.__struct_fields__)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [f.name for f in dataclasses.fields(value)]
    return None


def _wire_other(value: Any) -> Any:
    if type(value) is ServiceProxy:
        return CBORTag(TAG_PROXY, target_of(value))
    if is_export(value):
        proxy, export = export_reference(value)
        return CBORTag(TAG_EXPORT, [target_of(proxy), export])
    cls = type(value)
    if isinstance(value, enum.Enum):
        return CBORTag(TAG_ENUM, [_class_path(cls), _wire(value.value)])
    names = _fields(value)
    if names is not None:
        fields = {name: _wire(getattr(value, name)) for name in names}
        return CBORTag(TAG_OBJECT, [_class_path(cls), fields])
    # Subclasses of the value types (a virtualized datetime, a str subclass) cross as the base.
    for base, encode in _ENCODERS.items():
        if isinstance(value, base):
            return encode(value)
    for scalar in (bool, int, float, str, bytes):
        if isinstance(value, scalar):
            return scalar(value)  # type: ignore[arg-type]
    if isinstance(value, list):
        return _wire(list(value))
    if isinstance(value, tuple):
        return _wire(tuple(value))
    if isinstance(value, dict):
        return _wire(dict(value))
    raise _Refused()


def _explain(value: Any, where: str) -> None:
    """Find the part of ``value`` that cannot cross and raise ``MembraneError`` naming it."""
    try:
        _wire(value)
        return
    except _Refused:
        pass
    parts: list[tuple[str, Any]] = []
    if isinstance(value, (list, tuple)):
        parts = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    elif isinstance(value, (set, frozenset)):
        parts = [(f"an element of {where}", v) for v in value]
    elif isinstance(value, dict):
        for k, v in value.items():
            parts += [(f"a key of {where}", k), (f"{where}[{k!r}]", v)]
    elif _fields(value) is not None:
        parts = [(f"{where}.{n}", getattr(value, n)) for n in _fields(value) or []]
    for part_where, part in parts:
        _explain(part, part_where)
    cls = type(value)
    service_file = _refused_service_module(cls)
    if service_file is not None:
        raise MembraneError(
            f"{where} is a {cls.__qualname__}, a class defined in service module {service_file}; "
            "no service imports another's module, so it cannot cross a membrane: "
            f"{MOVE_TO_HELPER} and import it from there in both services."
        )
    if "<locals>" in cls.__qualname__:
        raise MembraneError(
            f"{where} is a {cls.__qualname__}, a class defined inside a function; only classes "
            "defined at a module's top level can cross a membrane. Move the class to module level."
        )
    kind = "a function" if isinstance(value, types.FunctionType) else f"a {cls.__name__}"
    raise MembraneError(
        f"{where} is {kind} ({cls.__module__}.{cls.__qualname__}), which cannot cross a "
        f"membrane. Values cross by copy; pass {ALLOWED}."
    )


def dumps_reference(wire: Any) -> bytes:
    """The CBOR bytes of a wire value (what journals and frames carry): ``dumps``, in Python.

    The common values (scalars, and lists, dicts and distdev's tags of them) are encoded here,
    byte for byte as ``cbor2.dumps`` encodes them: cbor2 builds an encoder per call and asks
    ``isinstance(x, Mapping)`` of every list, which costs several times the encoding of a
    small call's arguments. Anything else (big integers, other tags, very deep nesting) is
    left to cbor2."""
    try:
        return _encode(wire)
    except (_Unencodable, RecursionError):
        pass
    except UnicodeEncodeError:
        return cbor2.dumps(_escape_strings(wire))
    try:
        return cbor2.dumps(wire)
    except UnicodeEncodeError:  # rare: a str with lone surrogates somewhere inside
        return cbor2.dumps(_escape_strings(wire))


class _Unencodable(Exception):
    """A value ``_encode`` leaves to cbor2."""


def _head(major: int, n: int) -> bytes:
    """A CBOR initial byte and argument, in the shortest form (as cbor2 writes them)."""
    if n < 24:
        return _HEADS[major + n]
    if n < 0x100:
        return _HEAD_1.pack(major + 24, n)
    if n < 0x10000:
        return _HEAD_2.pack(major + 25, n)
    if n < 0x100000000:
        return _HEAD_4.pack(major + 26, n)
    if n < 0x10000000000000000:
        return _HEAD_8.pack(major + 27, n)
    raise _Unencodable()  # a bignum: cbor2's tags 2 and 3


def _encode(value: Any) -> bytes:
    t = type(value)
    if t is int:
        number: int = value
        if 0 <= number < 24:
            return _HEADS[number]
        return _head(0x00, number) if number >= 0 else _head(0x20, -1 - number)
    if t is str:
        data: bytes = value.encode("utf-8")  # lone surrogates raise: dumps escapes them
        n = len(data)
        return (_HEADS[0x60 + n] if n < 24 else _head(0x60, n)) + data
    if t is list or t is tuple:
        n = len(value)
        if not n:
            return _HEADS[0x80]
        return (_HEADS[0x80 + n] if n < 24 else _head(0x80, n)) + b"".join(
            [_encode(v) for v in value])
    if t is dict:
        parts = [_head(0xA0, len(value))]
        for k, v in value.items():
            parts.append(_encode(k))
            parts.append(_encode(v))
        return b"".join(parts)
    if t is float:
        if value != value:
            return b"\xf9\x7e\x00"  # every NaN, as cbor2 writes it
        infinite = _INFINITIES.get(value)
        return infinite if infinite is not None else _DOUBLE.pack(0xFB, value)
    if value is None:
        return b"\xf6"
    if t is bool:
        return b"\xf5" if value else b"\xf4"
    if t is bytes:
        raw: bytes = value
        return _head(0x40, len(raw)) + raw
    if t is CBORTag and value.tag >= _FIRST_OWN_TAG:
        return _head(0xC0, value.tag) + _encode(value.value)
    raise _Unencodable()


_HEADS: list[bytes] = [bytes((b,)) for b in range(256)]
_HEAD_1, _HEAD_2 = struct.Struct(">BB"), struct.Struct(">BH")
_HEAD_4, _HEAD_8 = struct.Struct(">BI"), struct.Struct(">BQ")
_DOUBLE = struct.Struct(">Bd")
_INFINITIES = {float("inf"): b"\xf9\x7c\x00", float("-inf"): b"\xf9\xfc\x00"}


def _escape_strings(value: Any) -> Any:
    t = type(value)
    if t is str:
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return CBORTag(TAG_ESCAPED_STR, value.encode("utf-8", "surrogateescape"))
    if t is list or t is tuple:
        return [_escape_strings(v) for v in value]
    if t is dict:
        return {_frozen(_escape_strings(k)): _escape_strings(v) for k, v in value.items()}
    if t is CBORTag:
        return CBORTag(value.tag, _escape_strings(value.value))
    return value


class NotPlain(Exception):
    """A value ``plain_copy`` does not copy."""


def plain_copy(value: Any) -> Any:
    """A copy of ``value`` if it is plain data — exact scalars, and lists and dicts of plain
    data whose keys are scalars — else ``NotPlain`` (or ``RecursionError``, for a very deep
    one). Its wire form is the copy itself (``to_wire`` makes the same), and what a receiver
    rebuilds from that wire form is the same again: a hot path may journal the copy and hand
    it to the receiver, one walk where ``to_wire`` and ``from_wire`` take two."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is list:
        return [plain_copy(v) for v in value]
    if t is dict and _SCALARS.issuperset(map(type, value)):
        return {k: plain_copy(v) for k, v in value.items()}
    raise NotPlain()


def plain_call_copy_reference(args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
                              ) -> tuple[list[Any], dict[str, Any], bytes]:
    """``plain_copy`` of a call's arguments, with their encoding made in the same walk:
    ``(args, kwargs, dumps(args) + dumps(kwargs))``, the bytes ``dumps`` gives, or
    ``NotPlain``: ``plain_call_copy``, in Python."""
    parts: list[bytes] = []
    try:
        copied = _plain_encoded(list(args), parts)
        kwargs_copied = _plain_encoded(kwargs, parts)
    except (_Unencodable, UnicodeEncodeError):  # a bignum, a lone surrogate: dumps's to do
        copied, kwargs_copied = plain_copy(list(args)), plain_copy(kwargs)
        return copied, kwargs_copied, dumps(copied) + dumps(kwargs_copied)
    return copied, kwargs_copied, b"".join(parts)


def _plain_encoded(value: Any, parts: list[bytes]) -> Any:
    """``plain_copy(value)``, its encoding appended to ``parts`` as ``_encode`` makes it."""
    t = type(value)
    if t in _SCALARS:
        parts.append(_encode(value))
        return value
    if t is list:
        n = len(value)
        parts.append(_HEADS[0x80 + n] if n < 24 else _head(0x80, n))
        return [_plain_encoded(v, parts) for v in value]
    if t is dict and _SCALARS.issuperset(map(type, value)):
        n = len(value)
        parts.append(_HEADS[0xA0 + n] if n < 24 else _head(0xA0, n))
        copy = {}
        for k, v in value.items():
            parts.append(_encode(k))
            copy[k] = _plain_encoded(v, parts)
        return copy
    raise NotPlain()


def _native_encoder() -> Encoder | None:
    """The encoder in C (``_cbor.c``), built with the package where a compiler is; None
    without one (then the references above do the same, slower)."""
    try:
        from ._cbor import Encoder
    except ImportError:
        return None
    return Encoder(dumps_reference, CBORTag, _FIRST_OWN_TAG, NotPlain)


NATIVE_ENCODER = _native_encoder()
"""The C encoder, or None (``tests/test_membrane_cbor.py`` checks its bytes against the
references')."""

dumps: Callable[[Any], bytes] = (
    dumps_reference if NATIVE_ENCODER is None else NATIVE_ENCODER.encode)
"""``dumps(wire) -> bytes``: the CBOR bytes of a wire value (what journals and frames carry),
byte for byte as ``cbor2.dumps`` writes them (``dumps_reference`` says how)."""

_native_plain_call_copy = None if NATIVE_ENCODER is None else NATIVE_ENCODER.plain_call_copy


def plain_call_copy(args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
                    ) -> tuple[list[Any], dict[str, Any], bytes]:
    """``plain_copy`` of a call's arguments, with their encoding made in the same walk:
    ``(args, kwargs, dumps(args) + dumps(kwargs))``, the bytes ``dumps`` gives, or
    ``NotPlain`` (in C where it was built; a bignum or a lone surrogate is left to the
    reference)."""
    if _native_plain_call_copy is not None:
        copied = _native_plain_call_copy(args, kwargs)
        if copied is not None:
            return copied
    return plain_call_copy_reference(args, kwargs)


def from_wire(wire: Any, receiver: Receiver) -> Any:
    """Rebuild fresh Python values from a wire form, on the receiving side."""
    t = type(wire)
    if t in _SCALARS:
        return wire
    if t is list or t is tuple:
        return [from_wire(v, receiver) for v in wire]
    if t is dict or t is frozendict:  # cbor2 decodes a map inside a tag as a frozendict
        return {_hashable(from_wire(k, receiver)): from_wire(v, receiver) for k, v in wire.items()}
    if t is CBORTag:
        return _from_tag(wire.tag, wire.value, receiver)
    raise MembraneError(f"a journal or frame holds a value of unexpected type {t.__name__}")


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def _from_tag(tag: int, v: Any, receiver: Receiver) -> Any:
    if tag == TAG_TUPLE:
        return tuple(from_wire(x, receiver) for x in v)
    if tag == TAG_SET:
        return {_hashable(from_wire(x, receiver)) for x in v}
    if tag == TAG_FROZENSET:
        return frozenset(_hashable(from_wire(x, receiver)) for x in v)
    if tag == TAG_DATETIME:
        return _dt.datetime.fromisoformat(v)
    if tag == TAG_DATE:
        return _dt.date.fromisoformat(v)
    if tag == TAG_TIME:
        return _dt.time.fromisoformat(v)
    if tag == TAG_TIMEDELTA:
        return _dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    if tag == TAG_DECIMAL:
        return decimal.Decimal(v)
    if tag == TAG_UUID:
        return uuid.UUID(bytes=bytes(v))  # v: the 16 bytes
    if tag == TAG_PROXY:
        return receiver.make_proxy(v)
    if tag == TAG_EXPORT:
        return export_of(receiver.make_proxy(v[0]), v[1])
    if tag == TAG_ESCAPED_STR:
        return bytes(v).decode("utf-8", "surrogateescape")
    if tag == TAG_ENUM:
        cls = receiver.resolve_class(*v[0].split(":", 1))
        return cls(from_wire(v[1], receiver))
    if tag == TAG_OBJECT:
        return _rebuild_object(receiver.resolve_class(*v[0].split(":", 1)), v[1], receiver)
    raise MembraneError(f"a journal or frame holds an unknown CBOR tag {tag}")


def _rebuild_object(cls: type, fields: dict[str, Any], receiver: Receiver) -> Any:
    values = {name: from_wire(value, receiver) for name, value in fields.items()}
    if issubclass(cls, msgspec.Struct):
        return cls(**values)
    # A copy, not a construction: __init__ and __post_init__ already ran on the sending side.
    new: Any = cls.__new__  # the class's own, for a class that defines one
    obj = new(cls)
    for name, value in values.items():
        object.__setattr__(obj, name, value)
    return obj


def wire_repr(wire: Any) -> str:
    """A readable rendering of a wire value (for inspect and divergence reports)."""
    t = type(wire)
    if t is list:
        return "[" + ", ".join(wire_repr(v) for v in wire) + "]"
    if t is dict or t is frozendict:
        return "{" + ", ".join(f"{wire_repr(k)}: {wire_repr(v)}" for k, v in wire.items()) + "}"
    if t is not CBORTag:
        return repr(wire)
    tag, v = wire.tag, wire.value
    if tag == TAG_TUPLE:
        inner = ", ".join(wire_repr(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if tag in (TAG_SET, TAG_FROZENSET):
        return ("frozenset" if tag == TAG_FROZENSET else "") + "{" + ", ".join(
            wire_repr(x) for x in v) + "}"
    if tag == TAG_PROXY:
        return f"<proxy {v}>"
    if tag == TAG_EXPORT:
        return f"<export {v[0]}.{v[1]}>"
    if tag == TAG_JSON:
        return "json(" + ", ".join([wire_repr(x) for x in v[0]]
                                   + [f"{k}={wire_repr(x)}" for k, x in v[1].items()]) + ")"
    if tag == TAG_ESCAPED_STR:
        return repr(bytes(v).decode("utf-8", "surrogateescape"))
    if tag == TAG_UUID:
        return f"UUID('{uuid.UUID(bytes=bytes(v))}')"
    if tag in (TAG_DATETIME, TAG_DATE, TAG_TIME):
        return f"{_TAG_NAMES[tag]}({v!r})"
    if tag == TAG_DECIMAL:
        return f"Decimal({v!r})"
    if tag == TAG_TIMEDELTA:
        return f"timedelta({v[0]}, {v[1]}, {v[2]})"
    if tag == TAG_ENUM:
        return f"{v[0].split(':')[1]}({wire_repr(v[1])})"
    if tag == TAG_OBJECT:
        fields = ", ".join(f"{k}={wire_repr(x)}" for k, x in v[1].items())
        return f"{v[0].split(':')[1]}({fields})"
    return repr(wire)


_TAG_NAMES = {TAG_DATETIME: "datetime", TAG_DATE: "date", TAG_TIME: "time"}
