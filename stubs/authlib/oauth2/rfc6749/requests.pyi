from collections import defaultdict
from collections.abc import Mapping

from .models import AuthorizationCodeMixin, ClientMixin, TokenMixin

class OAuth2Payload:
    # The request's parameters (query and form): what a framework integration provides.
    @property
    def data(self) -> Mapping[str, str]: ...
    @property
    def datalist(self) -> defaultdict[str, list[str]]: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def response_type(self) -> str | None: ...
    @property
    def grant_type(self) -> str | None: ...
    @property
    def redirect_uri(self) -> str | None: ...
    @property
    def scope(self) -> str | None: ...
    @property
    def state(self) -> str | None: ...

class BasicOAuth2Payload(OAuth2Payload):
    def __init__(self, payload: Mapping[str, str]) -> None: ...

class OAuth2Request(OAuth2Payload):
    method: str
    uri: str
    headers: Mapping[str, str]
    # None only until a framework integration sets it, in its constructor.
    payload: OAuth2Payload
    # Set by the grants and endpoints as they validate the request.
    client: ClientMixin | None
    auth_method: str | None
    user: object
    authorization_code: AuthorizationCodeMixin | None
    refresh_token: TokenMixin | None
    credential: object
    # Raises InsecureTransportError for a URI that is not https or loopback http.
    def __init__(self, method: str, uri: str, body: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None) -> None: ...
    @property
    def args(self) -> Mapping[str, str]: ...
    @property
    def form(self) -> Mapping[str, str]: ...
    # The resolved scope once the grant has set it, else the requested one.
    @property
    def scope(self) -> str | None: ...
    @scope.setter
    def scope(self, value: str | None) -> None: ...

class JsonPayload:
    @property
    def data(self) -> object: ...

class JsonRequest:
    method: str
    uri: str
    headers: Mapping[str, str]
    payload: JsonPayload
    def __init__(self, method: str, uri: str, headers: Mapping[str, str] | None = None) -> None: ...
