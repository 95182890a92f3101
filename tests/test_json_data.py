"""FrozenJSON: the read-only, hashable form of a record's ``data``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from oauth2_store.error import RecordTypeError, RecordValueError
from oauth2_store.json_data import EMPTY, MAX_DEPTH, FrozenJSON, freeze_data, thaw
from tests.strategies import frozen_equivalent, json_objects
from tests.support import raised_for


@given(json_objects)
def test_freeze_keeps_the_content_and_thaw_gives_it_back(data: dict[str, Any]) -> None:
    frozen = freeze_data(data)
    assert frozen == frozen_equivalent(data)
    assert thaw(frozen) == data
    assert freeze_data(thaw(frozen)) == frozen
    assert hash(freeze_data(thaw(frozen))) == hash(frozen)


def test_frozen_json_cannot_be_changed() -> None:
    frozen = freeze_data({"a": {"b": [1]}})
    with pytest.raises(TypeError):
        frozen["a"] = 1  # type: ignore[index]  # the point: no __setitem__
    with pytest.raises(AttributeError):
        frozen._items = {}  # the private dict cannot be swapped either
    with pytest.raises(AttributeError):
        del frozen._items
    assert not hasattr(frozen, "__dict__")
    inner = frozen["a"]
    assert isinstance(inner, FrozenJSON) and inner["b"] == (1,)


def test_thaw_returns_an_independent_copy() -> None:
    frozen = freeze_data({"a": {"b": [1]}})
    copy = thaw(frozen)
    inner = copy["a"]
    assert isinstance(inner, dict)
    inner["b"].append(2)
    assert frozen == {"a": {"b": (1,)}}


def test_types_survive_and_bool_stays_bool() -> None:
    frozen = freeze_data({"t": True, "one": 1, "half": 0.5, "none": None})
    assert [type(frozen[k]) for k in ("t", "one", "half", "none")] == [bool, int, float, type(None)]


def test_subclasses_of_json_types_become_plain_types() -> None:
    class Name(str):
        pass

    class Count(int):
        pass

    frozen = freeze_data({Name("k"): Count(3), "s": Name("v")})
    assert type(next(iter(frozen))) is str
    assert type(frozen["k"]) is int and type(frozen["s"]) is str


def test_empty_data_is_the_shared_empty_mapping() -> None:
    assert freeze_data(None) is EMPTY and freeze_data({}) is EMPTY and FrozenJSON() == EMPTY


def test_frozen_json_constructor_validates_too() -> None:
    assert FrozenJSON({"a": [1]}) == {"a": (1,)}
    with pytest.raises(RecordValueError):
        FrozenJSON({"a": float("nan")})


@pytest.mark.reliability
def test_nesting_is_limited() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH - 1):
        deep = [deep]
    assert freeze_data({"x": deep})  # exactly MAX_DEPTH levels
    with pytest.raises(RecordValueError, match="nests deeper"):
        freeze_data({"x": [deep]})
    nested: Any = {}
    for _ in range(MAX_DEPTH):
        nested = {"k": nested}
    with pytest.raises(RecordValueError, match="nests deeper"):
        freeze_data(nested)


@pytest.mark.reliability
def test_self_referencing_data_is_refused_not_a_recursion_error() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(RecordValueError, match="nests deeper"):
        freeze_data({"loop": loop})


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63) + 1])
def test_64_bit_integers_are_accepted(value: int) -> None:
    assert freeze_data({"n": value})["n"] == value


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"n": 2**63}, RecordValueError, "beyond 64 bits"),
        ({"f": float("-inf")}, RecordValueError, "JSON cannot carry"),
        ({"s": "\udc80"}, RecordValueError, "not valid Unicode"),
        ({"\ud800": 1}, RecordValueError, "not valid Unicode"),
        ({"b": bytearray(b"x")}, RecordTypeError, "data['b'] is a bytearray"),
        ({"l": [1, {2: 3}]}, RecordTypeError, "data['l'][1] keys must be str"),
    ],
)
def test_what_json_cannot_carry_is_refused(data: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(raised_for(error)) as caught:
        freeze_data(data)
    if isinstance(caught.value, error):
        assert message in str(caught.value)


def test_equality_with_plain_mappings() -> None:
    assert freeze_data({"a": 1}) == {"a": 1}
    assert freeze_data({"a": [1]}) != {"a": [1]}  # lists are tuples once frozen
    assert freeze_data({"a": 1}) != [("a", 1)]
