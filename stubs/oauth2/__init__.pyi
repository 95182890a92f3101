# python-oauth2 1.1.1 ships no types: its Provider, the part of oauth2 that servers build.
from typing import Any

from oauth2.datatype import AccessToken as AccessToken
from oauth2.datatype import AuthorizationCode as AuthorizationCode
from oauth2.datatype import Client as Client
from oauth2.grant import GrantHandlerFactory
from oauth2.tokengenerator import TokenGenerator

class Provider:
    access_token_store: Any
    auth_code_store: Any
    client_store: Any
    token_generator: TokenGenerator
    def __init__(self, access_token_store: object, auth_code_store: object, client_store: object, token_generator: TokenGenerator, client_authentication_source: Any = ..., response_class: type = ...) -> None: ...
    def add_grant(self, grant: GrantHandlerFactory) -> None: ...
    def enable_unique_tokens(self) -> None: ...
