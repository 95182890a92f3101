"""What the example servers share: their command line, their HTTP serving loop and its clean stop.

Every example takes ``--store URL --port PORT --client ID:SECRET:REDIRECT_URI`` (``--client``
repeatable, split at its first two colons; an empty SECRET is a public client), prints
``listening on http://127.0.0.1:PORT`` once it accepts requests, and on SIGTERM or SIGINT exits
with status 0 after answering the request in hand. They listen on 127.0.0.1 only. Their token
store must have the token lifecycle (:func:`lifecycle_store`).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterable
from types import FrameType
from typing import TYPE_CHECKING, NamedTuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from oauth2_store import open_store
from oauth2_store.protocols import ClientStoreProtocol, LifecycleTokenStoreProtocol
from oauth2_store.store import LocalClientStore
from oauth2_store.store.sql import SqlClientStore, SqlTokenStore

if TYPE_CHECKING:  # typeshed's WSGI types (wsgiref.types is Python 3.11+), the ones Flask's wsgi_app has
    from _typeshed.wsgi import StartResponse as StartResponse, WSGIApplication, WSGIEnvironment as WSGIEnvironment

    WSGIApp = WSGIApplication
else:
    StartResponse = WSGIApp = WSGIEnvironment = object

DEMO_WARNING = "DEMO: /authorize approves whoever ?user= names, with no login page"

log = logging.getLogger("examples.serving")


class DemoClient(NamedTuple):
    """A client registered with ``--client ID:SECRET:REDIRECT_URI``; ``secret`` is "" for a public one."""

    client_id: str
    secret: str
    redirect_uri: str


def demo_client(value: str) -> DemoClient:
    """Parse a ``--client`` value, split at its first two colons (the URI has colons of its own).

    Raises:
        argparse.ArgumentTypeError: no ID or no REDIRECT_URI.
    """
    client_id, sep1, rest = value.partition(":")
    secret, sep2, redirect_uri = rest.partition(":")
    if not (sep1 and sep2 and client_id and redirect_uri):
        raise argparse.ArgumentTypeError("--client takes ID:SECRET:REDIRECT_URI (SECRET may be empty)")
    return DemoClient(client_id, secret, redirect_uri)


def demo_arguments(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every example takes: ``--store``, ``--port``, ``--client``."""
    parser = argparse.ArgumentParser(description=f"{description} (a demo: no login page)")
    parser.add_argument("--store", default="memory://", help="the token store's URL (default memory://; on sqlite:// or postgresql://, clients are kept there too)")
    parser.add_argument("--port", type=int, required=True, help="the port to listen on, on 127.0.0.1")
    parser.add_argument("--client", action="append", default=[], type=demo_client, help="ID:SECRET:REDIRECT_URI, repeatable; empty SECRET: a public client")
    return parser


def lifecycle_store(url: str) -> LifecycleTokenStoreProtocol:
    """Open the token store ``url`` names, which must keep grants as families: a replayed code or
    a reused refresh token then revokes the grant (every store :func:`~oauth2_store.open_store`
    opens does).

    Raises:
        ValueError: a bad store URL, or a store without the token lifecycle.
        ImportError: the store's client library is not installed.
    """
    store = open_store(url)
    if not isinstance(store, LifecycleTokenStoreProtocol):
        raise ValueError(f"{type(store).__name__} does not revoke grants on code replay or refresh-token reuse")
    return store


def registered_clients(token_store: LifecycleTokenStoreProtocol, clients: Iterable[DemoClient]) -> ClientStoreProtocol:
    """A client store holding ``clients``: on a SQL token store, the database's (durable, secrets
    hashed; the clients are registered again, replacing what was stored under their identifiers),
    else one in memory.

    Raises:
        RecordTypeError, RecordValueError: a bad client.
        StoreUnavailableError: the database failed.
    """
    adding: LocalClientStore | SqlClientStore
    if isinstance(token_store, SqlTokenStore):
        adding = SqlClientStore(token_store.engine, token_store.prefix)
    else:
        adding = LocalClientStore()
    for client in clients:
        adding.add_client(client.client_id, client.secret, [client.redirect_uri])
    return adding


def never_a_traceback(app: WSGIApp) -> WSGIApp:
    """Wrap ``app`` so that an exception it lets escape is a JSON ``server_error`` (status 500),
    logged by its type only (the message may hold what a request sent)."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            return list(app(environ, start_response))
        except Exception as error:
            log.error("request failed: %s", type(error).__name__)
            body = json.dumps({"error": "server_error", "error_description": "the server failed; try again later"}).encode()
            start_response("500 Internal Server Error", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], sys.exc_info())
            return [body]

    return guarded


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(app: WSGIApp, port: int) -> int:
    """Serve ``app`` on 127.0.0.1:``port`` (0: a free port) until SIGTERM or SIGINT; return 0.

    Prints the demo warning, then ``listening on http://127.0.0.1:PORT`` once it accepts requests.
    """
    server: WSGIServer = make_server("127.0.0.1", port, never_a_traceback(app), handler_class=_QuietHandler)
    stop_after_this_request(server)
    print(DEMO_WARNING, flush=True)
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
