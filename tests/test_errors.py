"""The error hierarchy: one base class, the documented names, the built-in bases callers expect."""

from __future__ import annotations

import inspect

import pytest

import oauth2_store.error as error_module
from oauth2_store.error import (
    AccessTokenNotFound,
    AuthCodeNotFound,
    ClientNotFoundError,
    CodecError,
    NotFoundError,
    RecordTypeError,
    RecordValueError,
    StoreError,
    StoreUnavailableError,
)


def test_every_exported_error_derives_from_store_error() -> None:
    exported = [getattr(error_module, name) for name in error_module.__all__]
    assert exported and all(inspect.isclass(cls) and issubclass(cls, StoreError) for cls in exported)
    defined = {name for name, obj in vars(error_module).items() if inspect.isclass(obj) and issubclass(obj, BaseException)}
    assert defined == set(error_module.__all__)


@pytest.mark.parametrize("cls", [AccessTokenNotFound, AuthCodeNotFound, ClientNotFoundError])
def test_documented_not_found_errors_are_misses(cls: type[StoreError]) -> None:
    assert issubclass(cls, NotFoundError)
    assert not issubclass(cls, (StoreUnavailableError, CodecError))


def test_record_errors_are_the_builtin_errors_python_code_expects() -> None:
    assert issubclass(RecordTypeError, TypeError) and issubclass(RecordValueError, ValueError)
    assert issubclass(CodecError, ValueError)


def test_unavailable_names_the_server() -> None:
    error = StoreUnavailableError("memcached did not answer within 1.0 s", server="127.0.0.1:11211")
    assert error.server == "127.0.0.1:11211" and "did not answer" in str(error)
    assert StoreUnavailableError("down").server is None
