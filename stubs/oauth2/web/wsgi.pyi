# python-oauth2 1.1.1 ships no types: the WSGI application of oauth2.web.wsgi.
from collections.abc import Callable, Iterable
from typing import Any

from oauth2 import Provider

class Application:
    def __init__(self, provider: Provider, authorize_uri: str = "/authorize", env_vars: list[str] | None = None, request_class: type = ..., token_uri: str = "/token") -> None: ...
    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]: ...
