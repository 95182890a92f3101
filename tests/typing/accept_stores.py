"""Code that mypy must accept: each store assigned to the contracts it claims.

Checked by the main mypy run (mypy.ini includes tests/). If a store stops fulfilling a Protocol,
mypy fails here, before any test runs.
"""

from __future__ import annotations

import attrs

from oauth2_store import AccessToken, AuthorizationCode
from oauth2_store.protocols import (
    AccessTokenStoreProtocol,
    AuthCodeStoreProtocol,
    ClientStoreProtocol,
    ExtendedAccessTokenStoreProtocol,
    ExtendedAuthCodeStoreProtocol,
    TokenStoreProtocol,
)
from oauth2_store.store import AccessTokenStore, AuthCodeStore, ClientStore, LocalClientStore, LocalTokenStore, MemcacheTokenStore

local = LocalTokenStore()
as_full: TokenStoreProtocol = local
as_extended_tokens: ExtendedAccessTokenStoreProtocol = local
as_extended_codes: ExtendedAuthCodeStoreProtocol = local
as_tokens: AccessTokenStoreProtocol = local
as_codes: AuthCodeStoreProtocol = local
as_legacy_tokens: AccessTokenStore = local
as_legacy_codes: AuthCodeStore = local

local_clients = LocalClientStore()
as_clients: ClientStoreProtocol = local_clients
as_legacy_clients: ClientStore = local_clients


class DocumentedOnly(AccessTokenStore):
    """A user's legacy subclass: it fulfils the documented contract, and only that."""

    def save_token(self, access_token: AccessToken) -> None:
        pass

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        return AccessToken("c", "password", "t", refresh_token=refresh_token)


documented: AccessTokenStoreProtocol = DocumentedOnly()


def serve(tokens: TokenStoreProtocol, clients: ClientStoreProtocol) -> AuthorizationCode:
    """A server wired by dependency injection: any conforming stores will do."""
    client = clients.fetch_by_client_id("app")
    code = AuthorizationCode(client.identifier, "c0de", 600, client.default_redirect_uri, ["read"])
    tokens.save_code(code)
    return tokens.consume_code(code.code)


serve(local, local_clients)
renewed: AccessToken = attrs.evolve(AccessToken("c", "password", "t"), scopes=["read"])
expires_in: int | None = renewed.expires_in


def memcached_tokens(store: MemcacheTokenStore) -> tuple[TokenStoreProtocol, AccessTokenStore, AuthCodeStore]:
    """The memcached store fulfils the whole token contract, and the documented bases."""
    return store, store, store
