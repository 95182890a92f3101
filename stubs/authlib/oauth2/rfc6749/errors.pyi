from authlib.oauth2.base import OAuth2Error as OAuth2Error

class InsecureTransportError(OAuth2Error):
    @classmethod
    def check(cls, uri: str) -> None: ...

class InvalidRequestError(OAuth2Error): ...

class InvalidClientError(OAuth2Error):
    def get_headers(self) -> list[tuple[str, str]]: ...

class InvalidGrantError(OAuth2Error): ...
class UnauthorizedClientError(OAuth2Error): ...

class UnsupportedResponseTypeError(OAuth2Error):
    response_type: str | None
    def __init__(
        self,
        response_type: str | None,
        description: str | None = None,
        uri: str | None = None,
        status_code: int | None = None,
        state: str | None = None,
        redirect_uri: str | None = None,
        redirect_fragment: bool = False,
        error: str | None = None,
    ) -> None: ...

class UnsupportedGrantTypeError(OAuth2Error):
    grant_type: str | None
    def __init__(self, grant_type: str | None) -> None: ...

class InvalidScopeError(OAuth2Error): ...
class AccessDeniedError(OAuth2Error): ...

class ForbiddenError(OAuth2Error):
    auth_type: str | None
    realm: str | None
    def __init__(self, auth_type: str | None = None, realm: str | None = None) -> None: ...

class MissingAuthorizationError(ForbiddenError): ...
class UnsupportedTokenTypeError(ForbiddenError): ...
