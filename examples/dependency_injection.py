"""A server wired by dependency injection: it depends on the contracts, not on a store class.

Type-checked by `make test` (mypy.ini includes examples/) and run by tests/test_examples.py.
"""

from __future__ import annotations

import time

from oauth2_store import AuthorizationCode
from oauth2_store.protocols import ClientStoreProtocol, TokenStoreProtocol
from oauth2_store.store import LocalClientStore, LocalTokenStore


class AuthorizationServer:
    def __init__(self, tokens: TokenStoreProtocol, clients: ClientStoreProtocol) -> None:
        self.tokens = tokens
        self.clients = clients

    def redeem(self, client_id: str, code: str, code_verifier: str) -> AuthorizationCode | None:
        client = self.clients.fetch_by_client_id(client_id)
        grant = self.tokens.consume_code(code)  # AuthCodeNotFound: unknown, expired or replayed
        if grant.client_id != client.identifier or not grant.verify_code_verifier(code_verifier):
            return None
        return grant


def main() -> None:
    clients = LocalClientStore()
    clients.add_client("app", "s3cret", ["https://app.example/cb"])
    server = AuthorizationServer(tokens=LocalTokenStore(), clients=clients)  # or any other store
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    server.tokens.save_code(
        AuthorizationCode("app", "c0de", int(time.time()) + 600, "https://app.example/cb", ["read"], code_challenge=verifier)
    )
    grant = server.redeem("app", "c0de", verifier)
    print("redeemed" if grant is not None else "refused")


if __name__ == "__main__":
    main()
