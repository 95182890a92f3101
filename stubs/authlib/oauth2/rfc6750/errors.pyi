from ..base import OAuth2Error

class InvalidTokenError(OAuth2Error):
    realm: str | None
    extra_attributes: dict[str, str]
    def __init__(
        self,
        description: str | None = None,
        uri: str | None = None,
        status_code: int | None = None,
        state: str | None = None,
        realm: str | None = None,
        extra_attributes: dict[str, str] | None = None,
    ) -> None: ...

class InsufficientScopeError(OAuth2Error): ...
