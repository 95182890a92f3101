from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import NoReturn, TypeVar

from authlib.oauth2 import ResourceProtector as _ResourceProtector
from authlib.oauth2.rfc6749 import OAuth2Error, TokenMixin

_F = TypeVar("_F", bound=Callable[..., object])

class ResourceProtector(_ResourceProtector):
    # Raises an HTTPException whose response is the error's JSON body, status and headers.
    def raise_error_response(self, error: OAuth2Error) -> NoReturn: ...
    # The token of Flask's current request, as the token validator returned it.
    # Raises OAuth2Error (MissingAuthorizationError, InvalidTokenError, ... or the validator's own).
    def acquire_token(self, scopes: str | list[str] | None = None, **kwargs: object) -> TokenMixin: ...
    def acquire(self, scopes: str | list[str] | None = None) -> AbstractContextManager[TokenMixin]: ...
    def __call__(self, scopes: str | list[str] | None = None, optional: bool = False, **kwargs: object) -> Callable[[_F], _F]: ...
