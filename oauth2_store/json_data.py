"""Read-only, JSON-compatible values for the ``data`` field of records.

A record's ``data`` must survive any store, so it is limited to what JSON can carry: str keys;
str, int, float, bool and None values; lists and dicts of those. :func:`freeze_data` validates such
a value and turns it into :class:`FrozenJSON` (dicts) and tuples (lists), read-only all the way
down and hashable, so a record that holds it is immutable and hashable by value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import NoReturn, TypeAlias, Union

from oauth2_store._fields import plain_str
from oauth2_store.error import RecordTypeError, RecordValueError

__all__ = ["EMPTY", "MAX_DEPTH", "FrozenJSON", "JSONValue", "freeze_data", "freeze_parsed", "thaw"]

JSONValue: TypeAlias = Union[None, bool, int, float, str, tuple["JSONValue", ...], "FrozenJSON"]
"""A frozen JSON value: what :class:`FrozenJSON` holds."""

MAX_DEPTH = 32
"""How deeply lists and dicts may nest in ``data`` (the top-level mapping is depth 1)."""

_INT_BOUND = 2**63
"""Integers must fit in a signed 64-bit integer, so every JSON reader can take them back."""


class FrozenJSON(Mapping[str, JSONValue]):
    """An immutable, hashable JSON object: str keys, frozen JSON values.

    Build one with :func:`freeze_data` (or ``FrozenJSON(mapping)``, which does the same
    validation). It compares equal to a mapping with the same items; lists inside it are tuples.
    Use :func:`thaw` for a plain, mutable ``dict`` copy.

    Raises:
        RecordTypeError: from the constructor, for a key or value JSON cannot carry.
        RecordValueError: from the constructor, for NaN/infinite floats, integers beyond 64 bits,
            strings that are not valid Unicode, or nesting deeper than :data:`MAX_DEPTH`.
    """

    __slots__ = ("_hash", "_items")

    _items: dict[str, JSONValue]
    _hash: int | None

    def __init__(self, mapping: Mapping[str, object] | None = None) -> None:
        items = _freeze_items(mapping, "data", 1) if mapping else {}
        _set_items(self, items)
        _set_hash(self, None)

    @classmethod
    def _trusted(cls, items: dict[str, JSONValue]) -> FrozenJSON:
        """Wrap an already frozen dict that nothing else references, skipping validation."""
        frozen = object.__new__(cls)
        _set_items(frozen, items)
        _set_hash(frozen, None)
        return frozen

    def __getitem__(self, key: str) -> JSONValue:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenJSON):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            _set_hash(self, hash(frozenset(self._items.items())))
        assert self._hash is not None
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenJSON({self._items!r})"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("FrozenJSON is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("FrozenJSON is immutable")

    def json_object(self) -> dict[str, JSONValue]:
        """The frozen items as the dict ``json`` serialises (internal to codecs; do not mutate)."""
        return self._items


# The slots' member descriptors set them past FrozenJSON.__setattr__, which refuses every write;
# cheaper than object.__setattr__ by name, and records are built on every read.
_set_items: Callable[[FrozenJSON, dict[str, JSONValue]], None] = vars(FrozenJSON)["_items"].__set__
_set_hash: Callable[[FrozenJSON, int | None], None] = vars(FrozenJSON)["_hash"].__set__

EMPTY = FrozenJSON()
"""The empty :class:`FrozenJSON`, shared by every record without data."""


def freeze_data(value: Mapping[str, object] | None, field: str = "data") -> FrozenJSON:
    """Validate a JSON-compatible mapping and return it frozen (None gives an empty mapping).

    The caller's dicts and lists are copied, never referenced, so mutating them later does not
    change the result. ``field`` names the argument in error messages.

    Raises:
        RecordTypeError: the value is not a mapping, or holds a key or value JSON cannot carry.
        RecordValueError: NaN/infinite floats, integers beyond 64 bits, strings that are not valid
            Unicode, or nesting deeper than :data:`MAX_DEPTH`.
    """
    if type(value) is dict:  # the common case, first: ABC isinstance checks cost more than freezing
        return FrozenJSON._trusted(_freeze_items(value, field, 1)) if value else EMPTY
    if value is None:
        return EMPTY
    if isinstance(value, FrozenJSON):
        return value
    if not isinstance(value, Mapping):
        raise RecordTypeError(f"{field} must be a mapping with str keys, not {type(value).__name__}")
    if not value:
        return EMPTY
    return FrozenJSON._trusted(_freeze_items(value, field, 1))


def freeze_parsed(value: dict[str, object]) -> FrozenJSON:
    """As :func:`freeze_data`, for a dict just made by a JSON parser, that nothing else
    references: one whose keys and values are all ASCII strings (the common ``data``) is wrapped
    as it is, not copied.

    Raises:
        RecordTypeError, RecordValueError: as :func:`freeze_data`.
    """
    for key, item in value.items():
        if type(item) is not str or type(key) is not str or not key.isascii() or not item.isascii():
            return freeze_data(value)
    return FrozenJSON._trusted(value) if value else EMPTY  # type: ignore[arg-type]  # every value was just checked to be a str


def thaw(value: FrozenJSON) -> dict[str, object]:
    """Return a plain, mutable deep copy of ``value``: dicts and lists instead of frozen types."""
    return {key: _thaw_value(item) for key, item in value.items()}


def _thaw_value(value: JSONValue) -> object:
    if isinstance(value, FrozenJSON):
        return thaw(value)
    if isinstance(value, tuple):
        return [_thaw_value(item) for item in value]
    return value


def _freeze_items(mapping: Mapping[str, object], path: str, depth: int) -> dict[str, JSONValue]:
    if depth > MAX_DEPTH:
        raise RecordValueError(f"{path} nests deeper than {MAX_DEPTH} levels")
    items: dict[str, JSONValue] = {}
    for key, item in mapping.items():
        # The annotation promises str keys; callers' data is checked all the same.
        if not isinstance(key, str):
            raise RecordTypeError(f"{path} keys must be str, not {type(key).__name__}")
        if type(key) is not str or not key.isascii():
            key = plain_str(key, f"a key of {path}")
        if type(item) is str and item.isascii():  # the common case, without building a path
            items[key] = item
        else:
            items[key] = _freeze_value(item, f"{path}[{_short(key)}]", depth)
    return items


def _short(key: str) -> str:
    """A key for an error path, cut short: keys are data, and messages must stay small."""
    return repr(key) if len(key) <= 24 else repr(key[:20]) + "..."


def _freeze_value(value: object, path: str, depth: int) -> JSONValue:
    # bool before int: bool is a subclass of int and must stay a bool.
    if value is None or type(value) is bool:
        return value
    if isinstance(value, str):
        return plain_str(value, path)
    if isinstance(value, int):
        if not -_INT_BOUND < value < _INT_BOUND:
            raise RecordValueError(f"{path} is an integer beyond 64 bits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordValueError(f"{path} is {value!r}, which JSON cannot carry")
        return float(value)
    if isinstance(value, Mapping):
        return FrozenJSON._trusted(_freeze_items(value, path, depth + 1))
    if isinstance(value, (list, tuple)):
        if depth + 1 > MAX_DEPTH:
            raise RecordValueError(f"{path} nests deeper than {MAX_DEPTH} levels")
        return tuple(_freeze_value(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
    raise RecordTypeError(f"{path} is a {type(value).__name__}, which JSON cannot carry")
