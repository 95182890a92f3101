from typing import ClassVar

from ..authorization_server import AuthorizationServer
from ..hooks import Hookable
from ..models import ClientMixin
from ..requests import OAuth2Request

class BaseGrant(Hookable):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]]
    GRANT_TYPE: ClassVar[str | None]
    TOKEN_RESPONSE_HEADER: ClassVar[list[tuple[str, str]]]
    prompt: str | None
    redirect_uri: str | None
    request: OAuth2Request
    server: AuthorizationServer
    def __init__(self, request: OAuth2Request, server: AuthorizationServer) -> None: ...
    @property
    def client(self) -> ClientMixin | None: ...
    def generate_token(
        self,
        user: object = None,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, object]: ...
    # Raises InvalidClientError.
    def authenticate_token_endpoint_client(self) -> ClientMixin: ...
    def save_token(self, token: dict[str, object]) -> None: ...
    def validate_requested_scope(self) -> None: ...

class TokenEndpointMixin:
    TOKEN_ENDPOINT_HTTP_METHODS: ClassVar[list[str]]
    GRANT_TYPE: ClassVar[str | None]
    @classmethod
    def check_token_endpoint(cls, request: OAuth2Request) -> bool: ...
    # Raise OAuth2Error for a request to refuse.
    def validate_token_request(self) -> None: ...
    def create_token_response(self) -> tuple[int, dict[str, object], list[tuple[str, str]]]: ...

class AuthorizationEndpointMixin:
    RESPONSE_TYPES: ClassVar[set[str]]
    ERROR_RESPONSE_FRAGMENT: ClassVar[bool]
    @classmethod
    def check_authorization_endpoint(cls, request: OAuth2Request) -> bool: ...
    # Raises InvalidRequestError.
    @staticmethod
    def validate_authorization_redirect_uri(request: OAuth2Request, client: ClientMixin) -> str: ...
    @staticmethod
    def validate_no_multiple_request_parameter(request: OAuth2Request) -> None: ...
    def validate_consent_request(self) -> str: ...
    # Raise OAuth2Error for a request to refuse; return the redirect URI.
    def validate_authorization_request(self) -> str: ...
    # (302, "", [("Location", ...)])
    def create_authorization_response(self, redirect_uri: str, grant_user: object) -> tuple[int, str, list[tuple[str, str]]]: ...
