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
  authenticate at the token endpoint (python-oauth2 has no PKCE).

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
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from oauth2 import Provider
from oauth2.error import UserNotAuthenticated
from oauth2.grant import AuthorizationCodeGrant, ClientCredentialsGrant, RefreshToken, ResourceOwnerGrant
from oauth2.tokengenerator import Uuid4
from oauth2.web import AuthorizationCodeGrantSiteAdapter, Request, ResourceOwnerGrantSiteAdapter, Response
from oauth2.web.wsgi import Application

from oauth2_store import open_store
from oauth2_store.integrations.python_oauth2 import ClientStore, TokenStore

StartResponse = Callable[..., object]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600

log = logging.getLogger("python_oauth2_server")


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


def build_provider(store_url: str, clients: Iterable[str], users: dict[str, str], unique_token: bool) -> Provider:
    """The provider: every grant of the demo, tokens in the store of ``store_url``.

    Raises:
        ValueError: a bad store URL or ``--client`` value.
    """
    client_store = ClientStore()
    for client in clients:
        client_id, secret, redirect_uri = _client(client)
        client_store.add_client(client_id, secret, [redirect_uri])
    token_store = TokenStore(open_store(store_url))
    provider = Provider(access_token_store=token_store, auth_code_store=token_store, client_store=client_store, token_generator=Uuid4())
    provider.add_grant(AuthorizationCodeGrant(unique_token=unique_token, expires_in=ACCESS_TOKEN_SECONDS, site_adapter=DemoApproval()))
    provider.add_grant(RefreshToken(expires_in=REFRESH_TOKEN_SECONDS, reissue_refresh_tokens=True))
    provider.add_grant(ClientCredentialsGrant())
    provider.add_grant(ResourceOwnerGrant(unique_token=unique_token, expires_in=ACCESS_TOKEN_SECONDS, site_adapter=PasswordCheck(users)))
    return provider


def never_a_traceback(app: WSGIApp) -> WSGIApp:
    """Wrap ``app`` so that an exception it lets escape is a JSON ``server_error`` (status 500).

    python-oauth2's Provider answers most failures itself, but not all: its WSGI application
    decodes form bodies before its error handling (a body that is not UTF-8 raises), and at
    ``/authorize`` a client store that fails makes its own error handler fail.
    """

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return list(app(environ, start_response))
        except Exception as error:
            log.error("request failed: %s", type(error).__name__)
            body = json.dumps({"error": "server_error", "error_description": "the server failed; try again later"}).encode()
            start_response("500 Internal Server Error", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], sys.exc_info())
            return [body]

    return guarded


def _client(value: str) -> tuple[str, str, str]:
    client_id, sep1, rest = value.partition(":")
    secret, sep2, redirect_uri = rest.partition(":")
    if not (sep1 and sep2 and client_id and redirect_uri):
        raise ValueError("--client takes ID:SECRET:REDIRECT_URI (SECRET may be empty)")
    return client_id, secret, redirect_uri


def _user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not (sep and name and password):
        raise argparse.ArgumentTypeError("--user takes NAME:PASSWORD")
    return name, password


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    parser = argparse.ArgumentParser(description="A python-oauth2 provider on oauth2-store (a demo: no login page)")
    parser.add_argument("--store", default="memory://", help="the token store's URL (default memory://)")
    parser.add_argument("--port", type=int, required=True, help="the port to listen on, on 127.0.0.1")
    parser.add_argument("--client", action="append", default=[], help="ID:SECRET:REDIRECT_URI, repeatable")
    parser.add_argument("--user", action="append", default=[], type=_user, help="NAME:PASSWORD for the password grant, repeatable")
    parser.add_argument("--unique-token", action="store_true", help="hand out a user's live token again instead of a new one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        provider = build_provider(args.store, args.client, dict(args.user), args.unique_token)
    except (ValueError, ImportError) as error:
        print(f"python_oauth2_server: {error}", file=sys.stderr)
        return 2
    server: WSGIServer = make_server("127.0.0.1", args.port, never_a_traceback(Application(provider=provider)), handler_class=_QuietHandler)
    stop_after_this_request(server)
    print("DEMO: /authorize approves whoever ?user= names, with no login page", flush=True)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def stop_after_this_request(server: WSGIServer) -> None:
    """Make SIGTERM and SIGINT end ``serve_forever`` once the request in hand is answered.

    Raising from the handler would not do: a signal that lands inside the application is an
    exception in the request, which wsgiref's handler answers and swallows, and the server goes on.
    ``shutdown`` waits for the serving loop, so it runs on its own thread, not in the handler.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


if __name__ == "__main__":
    sys.exit(main())
