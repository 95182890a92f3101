# python-oauth2 1.1.1 ships no types: the part of oauth2.datatype that oauth2-store uses.
from typing import Any

class AccessToken:
    client_id: str
    grant_type: str
    token: str
    data: dict[str, Any]
    expires_at: int | None
    refresh_token: str | None
    refresh_expires_at: int | None
    scopes: list[str]
    user_id: object
    def __init__(
        self,
        client_id: str,
        grant_type: str,
        token: str,
        data: dict[str, Any] = ...,
        expires_at: int | None = None,
        refresh_token: str | None = None,
        refresh_expires_at: int | None = None,
        scopes: list[str] = ...,
        user_id: object = None,
    ) -> None: ...
    @property
    def expires_in(self) -> int: ...
    def is_expired(self) -> bool: ...

class AuthorizationCode:
    client_id: str
    code: str
    data: dict[str, Any] | None
    expires_at: int
    redirect_uri: str | None
    scopes: list[str]
    user_id: object
    def __init__(
        self,
        client_id: str,
        code: str,
        expires_at: int,
        redirect_uri: str | None,
        scopes: list[str],
        data: dict[str, Any] | None = None,
        user_id: object = None,
    ) -> None: ...
    def is_expired(self) -> bool: ...

class Client:
    identifier: str
    secret: str
    authorized_grants: list[str] | None
    authorized_response_types: list[str] | None
    redirect_uris: list[str]
    def __init__(
        self,
        identifier: str,
        secret: str,
        authorized_grants: list[str] | None = None,
        authorized_response_types: list[str] | None = None,
        redirect_uris: list[str] | None = None,
    ) -> None: ...
    @property
    def redirect_uri(self) -> str: ...
    @redirect_uri.setter
    def redirect_uri(self, value: str) -> None: ...
    def grant_type_supported(self, grant_type: str) -> bool: ...
    def response_type_supported(self, response_type: str) -> bool: ...
