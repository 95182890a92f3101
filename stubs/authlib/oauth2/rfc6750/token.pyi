from collections.abc import Callable
from typing import ClassVar

from ..rfc6749.models import ClientMixin

# Called with keyword arguments client, grant_type, user and scope.
_ValueGenerator = Callable[..., str]

class BearerTokenGenerator:
    DEFAULT_EXPIRES_IN: ClassVar[int]
    GRANT_TYPES_EXPIRES_IN: ClassVar[dict[str, int]]
    access_token_generator: _ValueGenerator
    refresh_token_generator: _ValueGenerator | None
    expires_generator: Callable[[ClientMixin, str], int] | int | None
    def __init__(
        self,
        access_token_generator: _ValueGenerator,
        refresh_token_generator: _ValueGenerator | None = None,
        expires_generator: Callable[[ClientMixin, str], int] | int | None = None,
    ) -> None: ...
    # Raises InvalidScopeError when client.get_allowed_scope returns None.
    @staticmethod
    def get_allowed_scope(client: ClientMixin, scope: str | None) -> str: ...
    def generate(
        self,
        grant_type: str,
        client: ClientMixin,
        user: object = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, object]: ...
    def __call__(
        self,
        grant_type: str,
        client: ClientMixin,
        user: object = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, object]: ...
