"""Mistakes mypy must catch. Each marked line must fail with exactly the error code after "E:".

Excluded from the main mypy run (mypy.ini); tests/test_typing.py checks it on its own.
"""

from __future__ import annotations

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.protocols import ExtendedAccessTokenStoreProtocol, TokenStoreProtocol
from oauth2_store.store import AccessTokenStore, LocalClientStore, LocalTokenStore

store = LocalTokenStore()
token = AccessToken("c", "password", "t", refresh_token="r")
code = AuthorizationCode("c", "x", 600, None, ["read"])

store.save_token(code)  # E: arg-type
store.save_code(token)  # E: arg-type
token.scopes = ("admin",)  # E: misc
code.expires_at = 0  # E: misc
AccessToken("c", "password", "t", expires_at=1.5)  # E: arg-type
AccessToken("c", "password", "t", None, None, None, ["read"], "user")  # E: call-arg arg-type
AuthorizationCode("c", "x", 600, None, [], code_challenge="a" * 43, code_challenge_method="S512")  # E: arg-type
Client("c", "s", authorized_grants=None).secret = ""  # E: misc
store.fetch_by_token(None)  # E: arg-type
refresh: str = store.fetch_by_token("t").refresh_token  # E: assignment


class DocumentedOnly(AccessTokenStore):
    def save_token(self, access_token: AccessToken) -> None:
        pass

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        return token


extended: ExtendedAccessTokenStoreProtocol = DocumentedOnly()  # E: assignment
clients_as_tokens: TokenStoreProtocol = LocalClientStore()  # E: assignment


def serve(tokens: TokenStoreProtocol) -> None:
    pass


serve(DocumentedOnly())  # E: arg-type


# The python-oauth2 seam takes python-oauth2's records, and wraps only our token stores.
from oauth2_store.integrations.python_oauth2 import TokenStore as PythonOAuth2TokenStore  # noqa: E402

PythonOAuth2TokenStore(store).save_token(token)  # E: arg-type
PythonOAuth2TokenStore(LocalClientStore())  # E: arg-type
PythonOAuth2TokenStore(store).fetch_by_code("x").code_challenge  # E: attr-defined
