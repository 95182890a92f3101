"""A python-oauth2 provider on oauth2-store's stores, served by python-oauth2's WSGI Application.

    python examples/python_oauth2_server.py --store memcache://127.0.0.1:11211 --port 8080 \\
        --client app:s3cret:https://app.example/cb [--client ...] [--user alice:pa55] [--unique-token]

A DEMO: ``/authorize`` approves at once for the user named by the request's ``user`` parameter;
there is no login page and no consent screen. Never run this in front of real users.

- ``GET /authorize?response_type=code&client_id=..&redirect_uri=..&user=NAME``: redirects with a code.
- ``POST /token``: ``authorization_code``, ``refresh_token`` (a new refresh token each time),
  ``client_credentials`` and ``password`` (the users of ``--user NAME:PASSWORD``), with the client
  authenticated by ``client_id`` and ``client_secret`` in the body (python-oauth2's default).
  ``--client`` is split at its first two colons; an empty SECRET is a public client, which cannot
  authenticate at the token endpoint (python-oauth2 has no PKCE). A code presented again, or a
  refresh token presented again after it was rotated, is ``invalid_grant`` and ends its grant:
  every token issued from that code, or refreshed from that token, stops working.
- ``GET /api/me`` with ``Authorization: Bearer TOKEN``: the token's user, client and scope; 401
  ``invalid_token`` without a live token (python-oauth2 has no resource server: this route is the
  demo's own, on the same token store).

Tokens live in the store of ``--store`` (``memory://``, or ``memcache://`` shared by every process
pointed at it); clients live in this process. A failure python-oauth2's application does not
answer itself (a form body that is not UTF-8) is a JSON ``server_error`` with status 500, never a
traceback. It prints ``listening on http://127.0.0.1:PORT`` once it accepts
requests, and on SIGTERM or SIGINT exits cleanly after answering the request in hand.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import oauth2.error
from oauth2 import Provider
from oauth2.error import UserNotAuthenticated
from oauth2.grant import AuthorizationCodeGrant, ClientCredentialsGrant, RefreshToken, ResourceOwnerGrant
from oauth2.tokengenerator import Uuid4
from oauth2.web import AuthorizationCodeGrantSiteAdapter, Request, ResourceOwnerGrantSiteAdapter, Response
from oauth2.web.wsgi import Application

from oauth2_store.error import StoreUnavailableError
from oauth2_store.integrations.python_oauth2 import ClientStore, TokenStore
from oauth2_store.store.keyvalue import KeyValueTokenStore
from oauth2_store.store.sql import SqlTokenStore
from serving import DemoClient, StartResponse, WSGIApp, WSGIEnvironment, demo_arguments, lifecycle_store, serve

ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600

class DemoApproval(AuthorizationCodeGrantSiteAdapter):
    """Approves every authorization request for the user its ``user`` parameter names (a demo)."""

    def authenticate(self, request: Request, environ: dict[str, Any], scopes: list[str], client: object) -> tuple[dict[str, Any], object]:
        user = request.get_param("user")
        if not user:
            raise UserNotAuthenticated
        return {}, user

    def render_auth_page(self, request: Request, response: Response, environ: dict[str, Any], scopes: list[str], client: object) -> Response:
        response.status_code = 400
        response.add_header("Content-Type", "application/json")
        response.body = json.dumps({"error": "access_denied", "error_description": "name the user with ?user=NAME (demo)"})
        return response

    def user_has_denied_access(self, request: Request) -> bool:
        return False


class PasswordCheck(ResourceOwnerGrantSiteAdapter):
    """The password grant's users: those given with ``--user NAME:PASSWORD``."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def authenticate(self, request: Request, environ: dict[str, Any], scopes: list[str], client: object) -> tuple[dict[str, Any], object]:
        name = request.post_param("username")
        password = request.post_param("password")
        if name is None or password is None or self.users.get(name) != password:
            raise UserNotAuthenticated
        return {}, name


def build_provider(token_store: TokenStore, clients: Iterable[DemoClient], users: dict[str, str], unique_token: bool) -> Provider:
    """The provider: every grant of the demo, tokens in ``token_store``.

    Raises:
        ValueError: a bad client.
    """
    client_store = ClientStore()
    for client in clients:
        client_store.add_client(client.client_id, client.secret, [client.redirect_uri])
    provider = Provider(access_token_store=token_store, auth_code_store=token_store, client_store=client_store, token_generator=Uuid4())
    provider.add_grant(AuthorizationCodeGrant(unique_token=unique_token, expires_in=ACCESS_TOKEN_SECONDS, site_adapter=DemoApproval()))
    provider.add_grant(RefreshToken(expires_in=REFRESH_TOKEN_SECONDS, reissue_refresh_tokens=True))
    provider.add_grant(ClientCredentialsGrant())
    provider.add_grant(ResourceOwnerGrant(unique_token=unique_token, expires_in=ACCESS_TOKEN_SECONDS, site_adapter=PasswordCheck(users)))
    return provider


def with_api(app: WSGIApp, token_store: TokenStore) -> WSGIApp:
    """``app`` with ``GET /api/me`` added: the user, client and scope of the request's
    ``Authorization: Bearer`` token, as JSON; 401 ``invalid_token`` for no token or one that is
    not live (RFC 6750 §3.1), 503 ``temporarily_unavailable`` when the store is unreachable."""

    def answer(start_response: StartResponse, status: str, document: Mapping[str, object], *headers: tuple[str, str]) -> list[bytes]:
        body = json.dumps(document).encode()
        start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Content-Length", str(len(body))), *headers])
        return [body]

    def routed(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/api/me":
            return app(environ, start_response)
        if environ["REQUEST_METHOD"] != "GET":
            return answer(start_response, "405 Method Not Allowed", {"error": "method_not_allowed", "error_description": "use GET"})
        scheme, _, token = str(environ.get("HTTP_AUTHORIZATION", "")).strip().partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else ""
        try:
            found = token_store.fetch_by_token(bearer) if bearer else None
        except oauth2.error.AccessTokenNotFound:
            found = None
        except StoreUnavailableError:
            return answer(start_response, "503 Service Unavailable", {"error": "temporarily_unavailable", "error_description": "the token store is unavailable; try again later"})
        if found is None:
            challenge = 'Bearer realm="api", error="invalid_token"' if bearer else 'Bearer realm="api"'
            error = {"error": "invalid_token", "error_description": "a valid bearer token is required"}
            return answer(start_response, "401 Unauthorized", error, ("WWW-Authenticate", challenge))
        return answer(start_response, "200 OK", {"user": found.user_id, "client_id": found.client_id, "scope": " ".join(found.scopes)})

    return routed


def _user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not (sep and name and password):
        raise argparse.ArgumentTypeError("--user takes NAME:PASSWORD")
    return name, password


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    parser = demo_arguments("A python-oauth2 provider on oauth2-store")
    parser.add_argument("--user", action="append", default=[], type=_user, help="NAME:PASSWORD for the password grant, repeatable")
    parser.add_argument("--unique-token", action="store_true", help="hand out a user's live token again instead of a new one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        store = lifecycle_store(args.store)
        if args.unique_token and isinstance(store, (KeyValueTokenStore, SqlTokenStore)) and not store.reissues_tokens:
            raise ValueError("--unique-token on a shared store needs reissue_key_file=PATH in the store URL (a file of 32 random bytes)")
        token_store = TokenStore(store)
        provider = build_provider(token_store, args.client, dict(args.user), args.unique_token)
    except (ValueError, ImportError) as error:
        print(f"python_oauth2_server: {error}", file=sys.stderr)
        return 2
    return serve(with_api(Application(provider=provider), token_store), args.port)


if __name__ == "__main__":
    sys.exit(main())
