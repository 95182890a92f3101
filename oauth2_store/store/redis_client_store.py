"""The Redis client store: registered clients shared by every process and host of a provider, with
their secrets kept only as hashes.

Each client is one key, ``<prefix>:{<digest>}:client`` (the SHA-256 of the identifier, in hex, as a
Redis Cluster hash tag), holding its :data:`~oauth2_store.codec.CLIENT_CODEC` record without expiry.
The record's secret is a scrypt hash (:func:`~oauth2_store.models.hash_secret`): the plaintext is
never sent to Redis, so neither the server, its append-only file and snapshots nor a replica holds
anything a client could authenticate with. Everything particular to redis-py is in
:mod:`oauth2_store.store.redis_clients`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from oauth2_store.codec import CLIENT_CODEC
from oauth2_store.error import ClientNotFoundError, CodecError
from oauth2_store.models import Client, TokenEndpointAuthMethod
from oauth2_store.store.base import ClientStore
from oauth2_store.store.keyvalue import checked_prefix
from oauth2_store.store.redis_clients import RedisClient, RedisConnection

__all__ = ["RedisClientStore"]

_NEVER = 0
"""The key-value connection's expiration for a key that never expires."""


class RedisClientStore(ClientStore):
    """Stores clients in Redis, each secret as a scrypt hash.

    :meth:`add_client` hashes the secret before anything is written (one scrypt, about 30 ms);
    :meth:`fetch_by_client_id` returns the hashed record, whose
    :meth:`~oauth2_store.Client.check_secret` verifies against the hash (the same cost, on every
    client authentication).

    Args:
        client: A redis-py client without automatic retries: :func:`~oauth2_store.store.redis.redis_client`
            or :func:`~oauth2_store.store.redis.redis_cluster_client` build one.
        prefix: Put before every key: 1 to 100 characters of ``A-Z a-z 0-9 _ . : -``. A token
            store may share it: its keys never end in ``:client``.

    Raises:
        ValueError: an invalid prefix; a client that decodes replies or retries commands.
        TypeError: a prefix that is not a str, or a client that is not redis-py's.
    """

    def __init__(self, client: RedisClient, prefix: str = "oauth2") -> None:
        self._prefix = checked_prefix(prefix)
        self._connection = RedisConnection(client)

    @property
    def servers(self) -> str:
        """The server (``host:port``) or cluster nodes the store talks to, as errors name them."""
        return self._connection.servers

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Iterable[str],
        *,
        authorized_grants: Iterable[str] | None = None,
        authorized_response_types: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        token_endpoint_auth_method: TokenEndpointAuthMethod | None = None,
    ) -> Client:
        """Register a client app (replacing one with the same identifier) and return its record,
        the secret hashed (``secret`` ``""``, ``secret_hash`` set).

        Args:
            client_id: Identifier of the client app.
            client_secret: Secret the client app uses to authenticate; ``""`` for a public client.
                Only its hash is stored.
            redirect_uris: The URIs it may redirect to (absolute, no fragment).
            authorized_grants: Grant types it may use; None allows all.
            authorized_response_types: Response types it may request; None allows all.
            scopes: Scopes it may be granted; None allows any.
            token_endpoint_auth_method: How it authenticates at the token endpoint; None: ``none``
                for a public client, ``client_secret_basic`` otherwise.

        Raises:
            RecordTypeError, RecordValueError: as :class:`~oauth2_store.Client` does; nothing is
                written.
            StoreUnavailableError: Redis failed or could not be reached; the client may or may not
                be stored.
        """
        client = Client(
            client_id,
            client_secret,
            redirect_uris,
            authorized_grants=authorized_grants,
            authorized_response_types=authorized_response_types,
            scopes=scopes,
            token_endpoint_auth_method=token_endpoint_auth_method,
        ).with_hashed_secret()
        self._connection.set_many({self._key(client.identifier): CLIENT_CODEC.encode(client)}, _NEVER)
        return client

    def fetch_by_client_id(self, client_id: str) -> Client:
        """Retrieve a client by its identifier (a client stored with a plaintext secret by an
        older format is returned as it was stored).

        Raises:
            ClientNotFoundError: no client has that identifier (or ``client_id`` is not a str).
            CodecError: the key holds a corrupt record, or the record of another client.
            StoreUnavailableError: Redis failed or could not be reached.
        """
        if not isinstance(client_id, str):
            raise ClientNotFoundError("no client with that identifier")
        payload = self._connection.get(self._key(client_id))
        if payload is None:
            raise ClientNotFoundError("no client with that identifier")
        client = CLIENT_CODEC.decode(payload)
        if client.identifier != client_id:  # written there by something else than this store
            raise CodecError("the client record stored under that identifier names another client")
        return client

    def close(self) -> None:
        """Close the client's connections; the store reconnects on its next call.

        Raises:
            StoreUnavailableError: closing failed.
        """
        self._connection.close()

    def _key(self, client_id: str) -> str:
        digest = hashlib.sha256(client_id.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self._prefix}:{{{digest}}}:client"
