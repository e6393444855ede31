"""The membrane's encoder in C (``membrane/_cbor.c``) writes the Python reference's bytes for
every wire value (and hands what it does not encode itself to the reference), and its
``plain_call_copy`` copies and encodes plain data as the reference does: the same copy, the
same bytes, the same refusals."""

from __future__ import annotations

import math
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distdev.membrane import _values
from distdev.membrane._values import (
    NotPlain,
    dumps_reference,
    plain_call_copy,
    plain_call_copy_reference,
)

ENCODER = _values.NATIVE_ENCODER
OWN_TAG = _values._FIRST_OWN_TAG


def test_the_package_encodes_in_c() -> None:
    # Built with the package wherever a compiler is (the test machines have one).
    assert ENCODER is not None
    assert _values.dumps == ENCODER.encode


ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from(
    [0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
     -1, -24, -25, -256, -257, -(2**63), -(2**63) - 1, -(2**64), -(2**64) - 1]))
texts = st.one_of(st.text(), st.sampled_from(["é", "日本", "\U0001f600", "\udc80", "a\udcffb"]))
scalars = st.one_of(ints, texts, st.binary(), st.booleans(), st.none(),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([math.nan, -math.nan, math.inf, -math.inf, -0.0]))


def _tagged(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cbor2.CBORTag, st.sampled_from([OWN_TAG, OWN_TAG + 5, 1, 32]), inner)


values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=6).map(tuple),
        st.dictionaries(st.one_of(ints, st.text(max_size=5), st.none()), inner, max_size=5),
        _tagged(inner),
    ),
    max_leaves=30,
)


@settings(max_examples=600, deadline=None)
@given(value=values)
def test_every_value_encodes_as_the_reference_encodes_it(value: Any) -> None:
    assert ENCODER is not None
    assert ENCODER.encode(value) == dumps_reference(value)


@pytest.mark.parametrize("value", [
    [[[[1]]]] * 3,
    [1] * 100_000,  # past the inline output space
    "x" * 70_000,
    {str(i): [i, float(i), None] for i in range(2000)},
])
def test_large_and_nested_values_encode_as_the_reference_encodes_them(value: Any) -> None:
    assert ENCODER is not None
    assert ENCODER.encode(value) == dumps_reference(value)


def test_nesting_past_the_c_encoders_depth_is_the_references_to_encode() -> None:
    assert ENCODER is not None
    deep: Any = 1
    for _ in range(400):
        deep = [deep]
    assert ENCODER.encode(deep) == dumps_reference(deep) == cbor2.dumps(deep)


plain = st.recursive(
    st.one_of(ints, texts, st.binary(), st.booleans(), st.none(), st.floats()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.integers(), st.text(max_size=5), st.none(),
                                  st.booleans()), inner, max_size=4),
    ),
    max_leaves=25,
)
not_plain = st.one_of(st.tuples(st.integers()), st.sets(st.integers(), max_size=2),
                      st.builds(cbor2.CBORTag, st.just(OWN_TAG), st.integers()),
                      st.dictionaries(st.tuples(st.integers()), st.integers(), min_size=1,
                                      max_size=2))


@settings(max_examples=400, deadline=None)
@given(args=st.lists(st.one_of(plain, plain.map(lambda v: [v]), not_plain), max_size=4),
       kwargs=st.dictionaries(st.text(max_size=4), st.one_of(plain, not_plain), max_size=3),
       as_list=st.booleans())
def test_plain_arguments_copy_and_encode_as_the_reference_copies_them(
        args: list[Any], kwargs: dict[str, Any], as_list: bool) -> None:
    given_args = args if as_list else tuple(args)
    try:
        expected = plain_call_copy_reference(given_args, kwargs)
    except (NotPlain, RecursionError):
        with pytest.raises(NotPlain):
            plain_call_copy(given_args, kwargs)
        return
    copied, kwargs_copied, encoded = plain_call_copy(given_args, kwargs)
    assert (copied, kwargs_copied, encoded) == expected
    assert encoded == dumps_reference(list(args)) + dumps_reference(kwargs)
    assert copied is not args and kwargs_copied is not kwargs
    for original, copy in zip(args, copied):
        if type(original) in (list, dict):
            assert copy is not original  # a copy the callee may change


def test_plain_data_the_c_encoder_leaves_is_copied_by_the_reference() -> None:
    assert ENCODER is not None
    for args in ([2**70], ["a\udcffb"], [[1, -(2**65)]]):
        assert ENCODER.plain_call_copy(args, {}) is None
        assert plain_call_copy(args, {}) == plain_call_copy_reference(args, {})
