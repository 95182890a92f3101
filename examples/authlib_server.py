"""An Authlib authorization and resource server on oauth2-store's stores, served by Flask.

    python examples/authlib_server.py --store memcache://127.0.0.1:11211 --port 8080 \\
        --client app:s3cret:https://app.example/cb --client spa::https://spa.example/cb

A DEMO: ``/oauth/authorize`` approves at once for the user named by the request's ``user``
parameter; there is no login page and no consent screen. Never run this in front of real users.

- ``GET /oauth/authorize?response_type=code&client_id=..&redirect_uri=..&user=NAME``: redirects
  with a code (PKCE: ``code_challenge`` and ``code_challenge_method=S256``).
- ``POST /oauth/token``: ``authorization_code`` (PKCE checked when the code has a challenge;
  public clients must use it), ``refresh_token`` (a new refresh token each time; the old one and
  its access token are revoked) and ``client_credentials`` (confidential clients). A code
  presented again, or a refresh token presented again after it was rotated, is ``invalid_grant``
  and ends its grant: every token issued from that code, or refreshed from that token, stops
  working (the store must keep grants, as every ``--store`` does).
- ``POST /oauth/revoke`` (RFC 7009) and ``POST /oauth/introspect`` (RFC 7662).
- ``GET /api/me`` with ``Authorization: Bearer TOKEN``: the token's user, client and scope.

``--client ID:SECRET:REDIRECT_URI`` registers a confidential client, which authenticates with
``client_secret_basic`` or ``client_secret_post`` (either: the store's ``any_secret_method``);
an empty SECRET registers a public client (``none``, PKCE required). Access tokens last an hour,
refresh tokens 30 days. Tokens live in the store of ``--store`` (``memory://``, or
``memcache://`` shared by every process pointed at it); clients live in this process. Every answer
is JSON, errors included; a failing store is ``temporarily_unavailable`` (503) or
``server_error`` (500), never "invalid token".
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import MissingAuthorizationError, UnsupportedTokenTypeError
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from oauth2_store.integrations.authlib import AuthlibStorage, AuthlibToken
from serving import DemoClient, demo_arguments, lifecycle_store, registered_clients, serve

REALM = "api"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600


def build_app(store_url: str, clients: Iterable[DemoClient]) -> Flask:
    """The Flask application: Authlib's server on the store of ``store_url``.

    Raises:
        ValueError: a bad store URL or client.
    """
    token_store = lifecycle_store(store_url)
    storage = AuthlibStorage(token_store, registered_clients(token_store, clients), refresh_token_expires_in=REFRESH_TOKEN_SECONDS, any_secret_method=True)

    app = Flask(__name__)
    app.config.update(
        OAUTH2_REFRESH_TOKEN_GENERATOR=True,
        OAUTH2_TOKEN_EXPIRES_IN={"authorization_code": ACCESS_TOKEN_SECONDS, "client_credentials": ACCESS_TOKEN_SECONDS, "refresh_token": ACCESS_TOKEN_SECONDS},
    )
    server = AuthorizationServer(app, query_client=storage.query_client, save_token=storage.save_token)
    storage.register(server)
    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(storage.bearer_token_validator(realm=REALM))

    @app.get("/oauth/authorize")
    def authorize() -> Response:
        user = request.args.get("user") or None  # DEMO: whoever ?user= names; None is access_denied
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:  # redirected once client and redirect URI are known, else JSON 400
            return server.handle_error_response(None, error)
        return server.create_authorization_response(grant_user=user, grant=grant)

    @app.post("/oauth/token")
    def issue_token() -> Response:
        return server.create_token_response()

    @app.post("/oauth/revoke")
    def revoke() -> Response:
        return answered(server.create_endpoint_response("revocation"))

    @app.post("/oauth/introspect")
    def introspect() -> Response:
        return answered(server.create_endpoint_response("introspection"))

    @app.get("/api/me")
    def me() -> Response:
        try:
            token = require_oauth.acquire_token()  # raises OAuth2Error: 401 invalid_token, 503 ...
        except (MissingAuthorizationError, UnsupportedTokenTypeError):  # no bearer token at all
            return no_bearer_token()
        if not isinstance(token, AuthlibToken):  # the only validator registered makes these
            raise TypeError(f"unexpected token {type(token).__name__}")
        return jsonify(user=token.user_id, client_id=token.client_id, scope=token.get_scope())

    @app.errorhandler(OAuth2Error)
    def oauth2_error(error: OAuth2Error) -> Response:  # what Authlib raises outside its endpoints (/api/me)
        return server.handle_error_response(None, error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:  # 404, 405, ...: JSON, not HTML
        name = (error.name or "error").lower().replace(" ", "_")
        return jsonify(error=name, error_description=error.description), error.code or 500

    @app.errorhandler(Exception)
    def server_error(error: Exception) -> tuple[Response, int]:
        app.logger.error("request failed: %s", type(error).__name__)  # the type only: no request data
        return jsonify(error="server_error", error_description="the server failed; try again later"), 500

    return app


def no_bearer_token() -> Response:
    """401 for a request without a bearer token: a challenge without an error code (RFC 6750 §3.1)."""
    answer = jsonify(error="invalid_token", error_description="a valid bearer token is required")
    answer.status_code = 401
    answer.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
    return answer


def answered(response: Response | None) -> Response:
    """Authlib's endpoint response; None (the application answers) is for interactive endpoints only."""
    if response is None:
        raise RuntimeError("the endpoint left its answer to the application")
    return response


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    args = demo_arguments("An Authlib provider on oauth2-store").parse_args(argv)
    try:
        app = build_app(args.store, args.client)
    except (ValueError, ImportError) as error:
        print(f"authlib_server: {error}", file=sys.stderr)
        return 2
    return serve(app.wsgi_app, args.port)


if __name__ == "__main__":
    sys.exit(main())
