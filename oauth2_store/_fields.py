"""Validation of record fields, shared by the records and the codecs.

Each function checks one kind of field, names the field in its error and returns the value in the
form the record stores. Messages never include the value: it may be a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet

from oauth2_store.error import RecordTypeError, RecordValueError

TIMESTAMP_BOUND = 2**63
"""Timestamps are unix seconds in ``[0, 2**63)``, so every store and JSON reader can hold them."""

SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
"""RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )."""

GRANT_ID = re.compile(r"[\x21-\x7e]{1,255}")
"""A grant id: 1 to 255 printable ASCII characters without spaces."""

PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
"""RFC 7636 §4.1, §4.2: a code verifier or challenge is 43 to 128 unreserved characters."""


def plain_str(value: str, field: str) -> str:
    """Return ``value`` as a plain ``str``, refusing lone surrogates (they cannot be stored).

    Raises:
        RecordValueError: ``value`` is not valid Unicode.
    """
    if type(value) is str and value.isascii():  # the common case, checked first: records are built on every read
        return value
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise RecordValueError(f"{field} is not valid Unicode (lone surrogate)") from None
    return str.__str__(value)


def text(value: object, field: str) -> str:
    """Check a required, non-empty string field.

    Raises:
        RecordTypeError: ``value`` is not a str.
        RecordValueError: ``value`` is empty or not valid Unicode.
    """
    if type(value) is str and value and value.isascii():  # the common case, checked first
        return value
    if not isinstance(value, str):
        raise RecordTypeError(f"{field} must be a str, not {type(value).__name__}")
    if not value:
        raise RecordValueError(f"{field} must not be empty")
    return plain_str(value, field)


def optional_text(value: object, field: str) -> str | None:
    """Check an optional string field: None, or as :func:`text`."""
    return None if value is None else text(value, field)


def timestamp(value: object, field: str) -> int:
    """Check a required unix timestamp in whole seconds.

    Raises:
        RecordTypeError: ``value`` is not an int (bool and float are refused).
        RecordValueError: ``value`` is negative or does not fit in 63 bits.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordTypeError(f"{field} must be an int (unix seconds), not {type(value).__name__}")
    if not 0 <= value < TIMESTAMP_BOUND:
        raise RecordValueError(f"{field} must be between 0 and 2**63 - 1")
    return int(value)


def optional_timestamp(value: object, field: str) -> int | None:
    """Check an optional unix timestamp: None (never expires), or as :func:`timestamp`."""
    return None if value is None else timestamp(value, field)


def text_tuple(value: object, field: str) -> tuple[str, ...]:
    """Check a collection of non-empty strings and copy it into a tuple.

    Raises:
        RecordTypeError: ``value`` is a bare str or bytes (a common mistake: ``scopes="read"``),
            a set or mapping (no stable order), not iterable, or holds a non-str item.
        RecordValueError: an item is empty or not valid Unicode.
    """
    if type(value) is not list and type(value) is not tuple:  # the common cases skip the ABC checks
        if isinstance(value, (str, bytes)):
            raise RecordTypeError(f"{field} must be a list of str, not a bare {type(value).__name__}")
        if not isinstance(value, Iterable) or isinstance(value, (AbstractSet, Mapping)):
            # Sets and mappings have no order a record could keep the same in every process.
            raise RecordTypeError(f"{field} must be a list of str, not {type(value).__name__}")
    items: list[str] = []
    for index, item in enumerate(value):
        if type(item) is str and item and item.isascii():
            items.append(item)
        else:  # the full check, naming the item only when it is needed
            items.append(text(item, f"{field}[{index}]"))
    return tuple(items)


def optional_text_tuple(value: object, field: str) -> tuple[str, ...] | None:
    """Check an optional collection of strings: None, or as :func:`text_tuple`."""
    return None if value is None else text_tuple(value, field)


def scopes(value: object, field: str = "scopes") -> tuple[str, ...]:
    """Check scopes: a collection of RFC 6749 §3.3 scope tokens (printable ASCII, no space, ``"``, ``\\``).

    Raises:
        RecordTypeError: as :func:`text_tuple`.
        RecordValueError: a scope is empty or holds a character RFC 6749 does not allow.
    """
    checked = text_tuple(value, field)
    for index, scope in enumerate(checked):
        if SCOPE_TOKEN.fullmatch(scope) is None:
            raise RecordValueError(f"{field}[{index}] is not a valid scope token (RFC 6749 §3.3)")
    return checked


def code_challenge(value: str | None) -> str | None:
    """A PKCE ``code_challenge`` (RFC 7636 §4.2), or None.

    Raises:
        RecordValueError: not 43 to 128 unreserved characters.
    """
    if value is not None and PKCE_VALUE.fullmatch(value) is None:
        raise RecordValueError("code_challenge must be 43 to 128 unreserved characters (RFC 7636 §4.2)")
    return value


def grant_id(value: object) -> str:
    """Check a grant id: 1 to 255 printable ASCII characters without spaces.

    Raises:
        RecordTypeError: ``value`` is not a str.
        RecordValueError: ``value`` is empty, longer than 255 characters, or has other characters.
    """
    checked = text(value, "grant_id")
    if GRANT_ID.fullmatch(checked) is None:
        raise RecordValueError("grant_id must be 1 to 255 printable ASCII characters without spaces")
    return checked
