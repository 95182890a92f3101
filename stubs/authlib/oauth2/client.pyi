from collections.abc import Callable

from .rfc6749.wrappers import OAuth2Token

# The HTTP-library-agnostic client; authlib.integrations.requests_client.OAuth2Session is it on requests.
class OAuth2Client:
    client_id: str | None
    client_secret: str | None
    state: str | None
    token_endpoint_auth_method: str
    revocation_endpoint_auth_method: str
    scope: str | None
    redirect_uri: str | None
    code_challenge_method: str | None
    metadata: dict[str, object]
    leeway: int
    def __init__(
        self,
        session: object,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_endpoint_auth_method: str | None = None,
        revocation_endpoint_auth_method: str | None = None,
        scope: str | None = None,
        state: str | None = None,
        redirect_uri: str | None = None,
        code_challenge_method: str | None = None,
        token: dict[str, object] | None = None,
        token_placement: str = "header",
        update_token: Callable[..., object] | None = None,
        leeway: int = 60,
        **metadata: object,
    ) -> None: ...
    @property
    def token(self) -> OAuth2Token: ...
    @token.setter
    def token(self, token: dict[str, object]) -> None: ...
    # (authorization URL, state); with code_verifier and code_challenge_method "S256", a PKCE challenge.
    def create_authorization_url(self, url: str, state: str | None = None, code_verifier: str | None = None, **kwargs: str) -> tuple[str, str]: ...
    # Raises the integration's OAuth error (an error answer), or the HTTP library's (a 5xx answer).
    def fetch_token(
        self,
        url: str | None = None,
        body: str = "",
        method: str = "POST",
        headers: dict[str, str] | None = None,
        auth: object = None,
        grant_type: str | None = None,
        state: str | None = None,
        **kwargs: object,
    ) -> OAuth2Token: ...
    def refresh_token(
        self,
        url: str | None = None,
        refresh_token: str | None = None,
        body: str = "",
        auth: object = None,
        headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> OAuth2Token: ...
    # The HTTP library's response.
    def revoke_token(
        self,
        url: str,
        token: str | None = None,
        token_type_hint: str | None = None,
        body: str | None = None,
        auth: object = None,
        headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> object: ...
    def introspect_token(
        self,
        url: str,
        token: str | None = None,
        token_type_hint: str | None = None,
        body: str | None = None,
        auth: object = None,
        headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> object: ...
