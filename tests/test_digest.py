"""State digests read the same whichever encoder wrote a global's form: msgspec's for the plain
data ``_plain.is_plain`` admits, ``json.dumps`` (and the walk) for the rest. A journal's
recorded digests are compared with what a later replay computes, so a form that changed would
make every older journal diverge; these tests hold the fast form to ``json.dumps``'s, over
generated plain data and over the edges where the two encoders would write otherwise."""

from __future__ import annotations

import collections
import enum
import json
import math
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distdev.membrane import _digest
from distdev.membrane._digest import _encoded, _json_form, is_plain

native = pytest.mark.skipif(is_plain([]) is False, reason="distdev was built without its C "
                            "modules: every digest form is json.dumps's")

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),  # every kind, in range or not
    st.floats(min_value=1e-4, max_value=1e16, exclude_max=True),  # in range
    st.floats(min_value=-1e16, max_value=-1e-4, exclude_min=True),
    st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0,
                     5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 2.0**53]),
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)))  # every code point but surrogates
SCALARS = st.one_of(st.none(), st.booleans(), INT64, st.integers(), FLOATS, TEXT)
PLAIN = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.tuples(inner, inner),
                            st.dictionaries(TEXT, inner, max_size=6)),
    max_leaves=40,
)


@native
@settings(max_examples=3000, deadline=None)
@given(PLAIN)
def test_a_digest_form_is_json_dumps_form_for_any_plain_data(value: Any) -> None:
    assert _encoded(value) == _json_form(value)


@native
def test_the_state_most_services_hold_takes_the_fast_form() -> None:
    orders = {f"o{i}": {"id": f"o{i}", "qty": i % 7, "total": i * 19.99, "paid": i % 2 == 0,
                        "note": None, "lines": [{"sku": "sku-\u00e9\n", "price": 1999}],
                        "at": (2026, 12, i % 28 + 1)} for i in range(200)}
    assert is_plain(orders)
    assert _encoded(orders) == _json_form(orders)


class Level(enum.IntEnum):
    LOW = 1


class Name(str):
    pass


def _cycle() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


NOT_PLAIN = {
    "a subclass of dict": collections.OrderedDict(a=1),
    "a subclass of int": Level.LOW,
    "a subclass of str": Name("x"),
    "a key that is no str": {1: "one"},
    "a float json writes with an exponent": [1e16],
    "a small float json writes with an exponent": [1e-05],
    "nan": float("nan"),
    "an int past 64 bits": 2**64,
    "bytes": [b"\x00"],
    "a set": {1},
    "a cycle": _cycle(),
    "nesting deeper than json.dumps may go": _nested(200),
}


@native
@pytest.mark.parametrize("case", list(NOT_PLAIN), ids=list(NOT_PLAIN))
def test_what_the_fast_form_could_write_otherwise_is_not_plain(case: str) -> None:
    value = NOT_PLAIN[case]
    assert not is_plain(value)
    assert _encoded(value) == _json_form(value)


@native
def test_a_lone_surrogate_takes_json_dumps() -> None:
    value = {"name": "\udc80"}  # a file name os.fsdecode gave a byte it could not decode
    assert is_plain(value)
    assert _encoded(value) == _json_form(value) == '{"name":"\udc80"}'


def test_without_the_c_module_every_form_is_json_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_digest, "is_plain", lambda value: False)
    value = {"a": [1, 2.5, "x"], "b": None}
    assert _encoded(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@native
def test_in_range_floats_and_their_edges_read_as_repr() -> None:
    for value in (0.0, -0.0, 1e-4, 0.5, 123456789012345.6, 9999999999999998.0):
        assert is_plain(value)
        assert _encoded(value) == repr(value)
    assert not any(is_plain(v) for v in (math.inf, -math.inf, 1e16, 9.999999999999999e-05,
                                         sys.float_info.max, 5e-324))
