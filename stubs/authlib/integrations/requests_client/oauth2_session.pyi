from collections.abc import Callable

from requests import Response, Session

from authlib.oauth2.client import OAuth2Client

class OAuth2Session(OAuth2Client, Session):
    default_timeout: float | None
    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_endpoint_auth_method: str | None = None,
        revocation_endpoint_auth_method: str | None = None,
        scope: str | None = None,
        state: str | None = None,
        redirect_uri: str | None = None,
        token: dict[str, object] | None = None,
        token_placement: str = "header",
        update_token: Callable[..., object] | None = None,
        leeway: int = 60,
        default_timeout: float | None = None,
        **kwargs: object,
    ) -> None: ...
    def revoke_token(
        self,
        url: str,
        token: str | None = None,
        token_type_hint: str | None = None,
        body: str | None = None,
        auth: object = None,
        headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> Response: ...
    def introspect_token(
        self,
        url: str,
        token: str | None = None,
        token_type_hint: str | None = None,
        body: str | None = None,
        auth: object = None,
        headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> Response: ...
