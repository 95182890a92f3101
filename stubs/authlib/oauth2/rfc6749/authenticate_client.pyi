from collections.abc import Callable

from .models import ClientMixin
from .requests import OAuth2Request

_QueryClient = Callable[[str], ClientMixin | None]

class ClientAuthentication:
    query_client: _QueryClient
    def __init__(self, query_client: _QueryClient) -> None: ...
    def register(self, method: str, func: Callable[[_QueryClient, OAuth2Request], ClientMixin | None]) -> None: ...
    # Raises InvalidClientError (status 401 when client_secret_basic is among the methods).
    def authenticate(self, request: OAuth2Request, methods: list[str], endpoint: str) -> ClientMixin: ...
    def __call__(self, request: OAuth2Request, methods: list[str], endpoint: str = "token") -> ClientMixin: ...
