"""An oauthlib authorization server on oauth2-store's stores, as a plain WSGI application.

    python examples/oauthlib_server.py --store memcache://127.0.0.1:11211 --port 8080 \\
        --client app:s3cret:https://app.example/cb [--client spa::https://spa.example/cb ...]

A DEMO: ``/oauth/authorize`` approves at once for the user named by the request's ``user``
parameter; there is no login page and no consent screen. Never run this in front of real users.

- ``GET /oauth/authorize?response_type=code&client_id=..&redirect_uri=..&user=NAME[&code_challenge=..]``:
  redirects with a code (PKCE required of a public client).
- ``POST /oauth/token``: ``authorization_code``, ``refresh_token`` (rotating) and
  ``client_credentials`` (confidential clients only). A confidential client authenticates with
  ``client_secret_basic`` or ``client_secret_post`` (the validator's ``any_secret_method``); a
  public one (empty SECRET) sends only its ``client_id``. A code presented again, or a refresh
  token presented again after it was rotated, is ``invalid_grant`` and ends its grant: every token
  issued from that code, or refreshed from that token, stops working.
- ``POST /oauth/revoke`` (RFC 7009), ``POST /oauth/introspect`` (RFC 7662).
- ``GET /api/me`` with ``Authorization: Bearer ..``: the token's user, client and scope.

Access tokens live 3600 s, refresh tokens 30 days, in the store of ``--store``; clients live in
this process. Every error is RFC 6749 §5.2 JSON; a failing store is a 503 (or 500), never a 401.
"""

from __future__ import annotations

import http
import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.util import request_uri

from oauthlib.common import urldecode
from oauthlib.oauth2 import FatalClientError, OAuth2Error, Server
from oauthlib.oauth2.rfc6749.tokens import random_token_generator

from oauth2_store.integrations.oauthlib import GRANT_TYPES, StoreRequestValidator, access_token_of
from serving import DemoClient, StartResponse, WSGIApp, WSGIEnvironment, demo_arguments, lifecycle_store, registered_clients, serve

ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
MAX_BODY = 64 * 1024

Answer = tuple[int, dict[str, str], str]
"""An HTTP answer: status, headers, body."""
Handler = Callable[[str, str, dict[str, str]], Answer]
"""Answers a request from its URI, form body and headers."""


def build_server(store_url: str, clients: Iterable[DemoClient]) -> Server:
    """oauthlib's all-in-one server, on the validator over these stores.

    Raises:
        ValueError: a bad store URL or client.
    """
    token_store = lifecycle_store(store_url)
    # An empty secret makes a public client (token_endpoint_auth_method "none").
    validator = StoreRequestValidator(token_store, registered_clients(token_store, clients), refresh_token_expires_in=REFRESH_TOKEN_SECONDS, any_secret_method=True)
    server = Server(validator, token_expires_in=ACCESS_TOKEN_SECONDS, refresh_token_generator=random_token_generator)
    # Only what the validator serves: without the implicit grant, response_type=token is
    # unsupported_response_type in the redirect's query (as for Authlib), not in a fragment.
    for response_type in ("token", "none"):
        server.response_types.pop(response_type)
    for grant_type in [name for name in server.grant_types if name not in GRANT_TYPES]:
        server.grant_types.pop(grant_type)
    return server


def application(server: Server) -> WSGIApp:
    """The WSGI application serving ``server`` at the demo's paths."""

    def authorize(uri: str, body: str, headers: dict[str, str]) -> Answer:
        user = parse_qs(uri.partition("?")[2]).get("user", [""])[0] or None  # DEMO: whoever ?user= names; None is access_denied
        try:
            answer_headers, answer_body, status = server.create_authorization_response(uri, "GET", None, headers, credentials={"user": user})
        except OAuth2Error as error:  # raised once the redirect URI is validated: back to the client (RFC 6749 §4.1.2.1)
            if isinstance(error, FatalClientError) or not error.redirect_uri:
                raise  # a bad client or redirect URI: JSON to the user agent, never a redirect
            return 302, {"Location": error.in_uri(error.redirect_uri)}, ""
        return status, answer_headers, answer_body or ""

    def me(uri: str, body: str, headers: dict[str, str]) -> Answer:
        valid, request = server.verify_request(uri, "GET", None, headers, scopes=[])
        access_token = access_token_of(request) if valid else None
        if access_token is None:
            sent_a_bearer_token = headers.get("Authorization", "").lower().startswith("bearer ")
            challenge = 'Bearer realm="api", error="invalid_token"' if sent_a_bearer_token else 'Bearer realm="api"'  # RFC 6750 §3.1
            status, answer_headers, answer_body = _json(401, {"error": "invalid_token", "error_description": "a valid bearer token is required"})
            return status, {**answer_headers, "WWW-Authenticate": challenge}, answer_body
        return _json(200, {"user": access_token.user_id, "client_id": access_token.client_id, "scope": " ".join(access_token.scopes)})

    def form_endpoint(create: Callable[..., tuple[dict[str, str], str, int]]) -> Handler:
        def handle(uri: str, body: str, headers: dict[str, str]) -> Answer:
            answer_headers, answer_body, status = create(uri, "POST", body, headers)
            return status, answer_headers, answer_body

        return handle

    routes: dict[str, tuple[str, Handler]] = {
        "/oauth/authorize": ("GET", authorize),
        "/oauth/token": ("POST", form_endpoint(server.create_token_response)),
        "/oauth/revoke": ("POST", form_endpoint(server.create_revocation_response)),
        "/oauth/introspect": ("POST", form_endpoint(server.create_introspect_response)),
        "/api/me": ("GET", me),
    }

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method, handler = routes.get(environ.get("PATH_INFO", ""), ("", None))
        if handler is None:
            status, headers, body = _json(404, {"error": "not_found", "error_description": "no such endpoint"})
        elif environ["REQUEST_METHOD"] != method:
            status, headers, body = _json(405, {"error": "method_not_allowed", "error_description": f"use {method}"})
        else:
            status, headers, body = _answer(handler, environ)
        encoded = body.encode("utf-8")
        start_response(f"{status} {http.HTTPStatus(status).phrase}", [*headers.items(), ("Content-Length", str(len(encoded)))])
        return [encoded]

    return app


def _answer(handler: Handler, environ: dict[str, Any]) -> Answer:
    """Call ``handler`` with the request's URI, form body and headers; an ``OAuth2Error`` it lets
    escape is answered as JSON. oauthlib raises one for an error it does not redirect, or while
    saving or revoking (a store failure: 503 or 500; a refresh token used concurrently: 400)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY:
        return _json(413, {"error": "invalid_request", "error_description": "the request body is too large"})
    try:
        body = environ["wsgi.input"].read(length).decode("utf-8") if length > 0 else ""
        urldecode(environ.get("QUERY_STRING", ""))  # oauthlib raises ValueError deep inside for a malformed one
    except ValueError:  # UnicodeDecodeError included
        return _json(400, {"error": "invalid_request", "error_description": "the request is not UTF-8 form-urlencoded"})
    headers = {name[5:].replace("_", "-").title(): value for name, value in environ.items() if name.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    try:
        status, answer_headers, answer_body = handler(request_uri(environ), body, headers)
    except OAuth2Error as error:
        status, answer_headers, answer_body = error.status_code, {"Content-Type": "application/json", **error.headers}, error.json
    if status == 401 and answer_headers.get("WWW-Authenticate", "").startswith('Bearer error="invalid_client"'):
        answer_headers["WWW-Authenticate"] = 'Basic realm="oauth"'  # oauthlib says Bearer; RFC 6749 §5.2: the client's scheme
    return status, answer_headers, answer_body


def _json(status: int, document: dict[str, object]) -> Answer:
    return status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(document)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    args = demo_arguments("An oauthlib authorization server on oauth2-store").parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        server = build_server(args.store, args.client)
    except (ValueError, ImportError) as error:
        print(f"oauthlib_server: {error}", file=sys.stderr)
        return 2
    return serve(application(server), args.port)


if __name__ == "__main__":
    sys.exit(main())
