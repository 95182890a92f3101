from typing import ClassVar

from .endpoint import Endpoint
from .models import ClientMixin, TokenMixin
from .requests import OAuth2Request

class TokenEndpoint(Endpoint):
    SUPPORTED_TOKEN_TYPES: ClassVar[tuple[str, ...]]
    CLIENT_AUTH_METHODS: ClassVar[list[str]]
    def authenticate_endpoint_client(self, request: OAuth2Request) -> ClientMixin: ...
    def authenticate_token(self, request: OAuth2Request, client: ClientMixin) -> TokenMixin | None: ...
    def create_endpoint_response(self, request: OAuth2Request) -> tuple[int, object, list[tuple[str, str]]]: ...
