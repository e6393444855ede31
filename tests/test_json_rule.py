"""The JSON rule of the ingress and `distdev call` (`distdev.membrane._json`), as logic: every
value that can cross a membrane to JSON from its wire form, and JSON arguments bound and
converted to a function's annotations the way a call binds them."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from typing import TYPE_CHECKING, Any

import cbor2
import msgspec
import pytest

from distdev import HTTPError, MembraneError, ServiceProxy
from distdev.membrane import (
    call_arguments,
    decode_arguments,
    dumps,
    from_wire,
    json_call,
    make_proxy,
    target_of,
    to_wire,
    wire_to_json,
)

if TYPE_CHECKING:
    from collections import OrderedDict


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Mixed(enum.Enum):
    ONE = 1
    TWO = "two"


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0
    labels: list[str] = dataclasses.field(default_factory=list)


class Shape(msgspec.Struct):
    points: list[Point]
    colour: Colour
    at: datetime.datetime | None = None


class _Router:
    def call(self, *args: Any) -> Any:
        raise AssertionError("not called")

    def exports(self, target: str) -> None:
        return None


def as_json(value: Any) -> Any:
    return json.loads(wire_to_json(to_wire(value, "a test value")))


def test_every_membrane_value_has_json() -> None:
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.UTC)
    value = {
        "when": when, "naive": datetime.datetime(2026, 1, 2), "day": datetime.date(2026, 1, 2),
        "time": datetime.time(3, 4), "span": datetime.timedelta(days=1, seconds=2),
        "price": decimal.Decimal("9.50"), "id": uuid.UUID(int=1), "set": {3}, "fs": frozenset({4}),
        "tuple": (1, "a"), "colour": Mixed.ONE, "bytes": b"\x00\xff",
        "shape": Shape([Point(1, 2, ["a"])], Colour.RED, when),
        "proxy": make_proxy("app/billing", _Router()), "keys": {1: "one", (1, 2): "pair"},
        "text": "Zoë 東京", "none": None, "float": 1.5,
    }
    assert as_json(value) == {
        "when": "2026-01-02T03:04:05.600000Z", "naive": "2026-01-02T00:00:00",
        "day": "2026-01-02", "time": "03:04:00", "span": "P1DT2S", "price": "9.50",
        "id": "00000000-0000-0000-0000-000000000001", "set": [3], "fs": [4], "tuple": [1, "a"],
        "colour": 1, "bytes": "AP8=",
        "shape": {"points": [{"x": 1, "y": 2, "labels": ["a"]}], "colour": "red",
                  "at": "2026-01-02T03:04:05.600000Z"},
        "proxy": {"$service": "app/billing"}, "keys": {"1": "one", "[1,2]": "pair"},
        "text": "Zoë 東京", "none": None, "float": 1.5,
    }
    assert "Zoë 東京".encode() in wire_to_json(to_wire("Zoë 東京", "text"))  # not escaped


def draw(shape: Shape, scale: decimal.Decimal = decimal.Decimal(1), *, dry: bool = False,
         ) -> tuple[Shape, decimal.Decimal, bool]:
    return shape, scale, dry


def test_json_arguments_become_the_annotated_types() -> None:
    shape = {"points": [{"x": 1}], "colour": "red", "at": "2026-01-02T03:04:05+01:00"}
    args, kwargs = decode_arguments(draw, [shape], {"scale": "2.5"})
    assert args == [] and kwargs["shape"] == Shape(
        [Point(1)], Colour.RED, datetime.datetime(
            2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=1))))
    assert kwargs["scale"] == decimal.Decimal("2.5")
    assert draw(*args, **kwargs)[2] is False  # the default, left to the function


@pytest.mark.parametrize(("args", "kwargs", "field", "problem"), [
    ([], {}, "shape", "missing required argument"),
    ([{"points": [], "colour": "green"}], {}, "shape.colour", "Invalid enum value 'green'"),
    ([{"points": [{"y": 1}], "colour": "red"}], {}, "shape.points[0].x",
     "Object missing required field `x`"),
    ([{"points": [], "colour": "blue"}], {"dry": "yes"}, "dry", "Expected `bool`, got `str`"),
    ([{}, 1, 2], {}, "args[2]", "too many positional arguments: 3 given, 2 taken (shape, scale)"),
    ([{}], {"shape": {}}, "shape", "given twice: by position and by name"),
    ([], {"colour": "red"}, "colour", "unexpected argument; the parameters are: shape, scale, "
                                      "dry"),
])
def test_json_arguments_that_do_not_fit_name_the_field(
    args: list[Any], kwargs: dict[str, Any], field: str, problem: str,
) -> None:
    with pytest.raises(HTTPError) as refused:
        decode_arguments(draw, args, kwargs)
    assert refused.value.status == 422
    assert refused.value.detail == {"field": field, "problem": problem}
    assert refused.value.message == f"argument {field}: {problem}"


def shaped(first: int, /, *rest: Point, held: ServiceProxy | None = None,
           later: OrderedDict[str, int] | None = None, **more: datetime.date) -> Any:
    return first, rest, held, later, more


def test_positional_only_varargs_proxies_and_unresolvable_annotations() -> None:
    args, kwargs = decode_arguments(
        shaped, [1, {"x": 2}, {"x": 3}],
        {"held": {"$service": "app/log"}, "later": {"a": 1}, "on": "2026-01-02"},
        lambda service_id: make_proxy(service_id, _Router()))
    first, rest, held, later, more = shaped(*args, **kwargs)
    assert (first, rest) == (1, (Point(2), Point(3)))
    assert target_of(held) == "app/log"
    assert later == {"a": 1}  # OrderedDict is imported only for type checkers: as the JSON has it
    assert more == {"on": datetime.date(2026, 1, 2)}


def mixed(value: Mixed) -> Mixed:
    return value


def test_an_annotation_json_cannot_express_is_refused_loudly() -> None:
    with pytest.raises(MembraneError, match="argument value is annotated Mixed, which JSON "
                       "cannot be converted to .*Enums must contain either all str or all int"):
        decode_arguments(mixed, [1], {})


class Opaque:
    """A class that cannot cross a membrane."""


def unusual(a, /, *rest: int, proxy: ServiceProxy, opaque: Opaque | None = None,
            later: OrderedDict[str, int] | None = None, colour: Mixed = Mixed.ONE,
            **more: datetime.date) -> dict[str, Shape]:
    """Take what a JSON object can name.

    The rest is described as any value."""
    return {}


def test_openapi_of_unusual_signatures_is_valid_and_says_what_it_can() -> None:
    from openapi_spec_validator import validate

    from distdev.engines._openapi import openapi

    document = openapi("app/odd", {"unusual": unusual, "draw": draw})
    validate(document)
    operation = document["paths"]["/unusual"]["post"]
    assert (operation["summary"], operation["description"]) == (
        "Take what a JSON object can name.", "The rest is described as any value.")
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert list(body["properties"]) == ["a", "proxy", "opaque", "later", "colour"]  # no *rest
    assert body["required"] == ["a", "proxy"]
    assert body["properties"]["proxy"]["required"] == ["$service"]
    assert body["properties"]["later"] == {"default": None}  # unresolvable: any value
    assert body["properties"]["colour"] == {"default": 1}  # msgspec has no schema for it
    assert body["additionalProperties"] == {"type": "string", "format": "date"}  # **more
    returned = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert returned == {"type": "object", "additionalProperties":
                        {"$ref": "#/components/schemas/Shape"}}


def takes_json(data, *, strict: bool = False):  # unannotated on purpose: JSON as it is
    return data


def test_a_json_call_as_a_callee_decodes_it() -> None:
    """Over a socket the JSON arrives inside a tag, which cbor2 decodes as tuples and
    frozendicts: the export gets JSON as JSON decodes, and a dataclass's dict field a dict."""
    wire = cbor2.loads(dumps(json_call([{"a": [1, {"b": 2}]}], {"strict": True})))
    args, kwargs = call_arguments(takes_json, wire, {}, _Receiver())
    assert (args, kwargs) == ([], {"data": {"a": [1, {"b": 2}]}, "strict": True})
    assert type(kwargs["data"]) is dict and type(kwargs["data"]["a"]) is list
    shape = cbor2.loads(dumps(to_wire({"s": Shape([Point(1, labels=["x"])], Colour.RED)}, "v")))
    assert from_wire(shape, _Receiver()) == {"s": Shape([Point(1, labels=["x"])], Colour.RED)}


class _Receiver:
    def resolve_class(self, module: str, qualname: str) -> type:
        return {"Shape": Shape, "Point": Point, "Colour": Colour}[qualname]

    def make_proxy(self, service_id: str) -> Any:
        return make_proxy(service_id, _Router())
