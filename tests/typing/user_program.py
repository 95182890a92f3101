"""A user's program, type-checked by tests/test_wheel_typing.py against the installed wheel alone.

It uses what the README shows: mypy --strict must accept all of it, with nothing from this
repository on the path (no stubs/ directory, no mypy.ini).
"""

from __future__ import annotations

import time

import attrs
from oauth2.datatype import AccessToken as PythonOAuth2AccessToken
from pymemcache.client.base import Client, PooledClient

from oauth2_store import AccessToken, AuthorizationCode, open_store
from oauth2_store.integrations.authlib import AuthlibStorage, BearerTokenValidator
from oauth2_store.integrations.oauthlib import StoreRequestValidator
from oauth2_store.integrations.python_oauth2 import TokenStore
from oauth2_store.protocols import TokenStoreProtocol
from oauth2_store.store import LocalClientStore, LocalTokenStore, MemcacheTokenStore
from oauth2_store.store.memcache import pymemcache_client
from oauth2_store.store.redis import RedisClientStore, RedisTokenStore, redis_client, redis_cluster_client

client: PooledClient = PooledClient(("127.0.0.1", 11211), connect_timeout=1.0, timeout=1.0)
built = pymemcache_client(["127.0.0.1:11211"], timeout=0.5)
built.close()
store: TokenStoreProtocol = MemcacheTokenStore(mc=client, prefix="app")
single = MemcacheTokenStore(mc=Client(("127.0.0.1", 11211)))
local = LocalTokenStore()
with_pylibmc = MemcacheTokenStore(None, "app", ["127.0.0.1:11211"], binary=True, behaviors={"tcp_nodelay": True})
with_python_memcached = MemcacheTokenStore(servers=["127.0.0.1:11211"], debug=0, socket_timeout=1.0)
with_pymemcache = MemcacheTokenStore(servers=["127.0.0.1:11211"], timeout=0.5)
opened: TokenStoreProtocol = open_store("memory://")
token = AccessToken("app", "authorization_code", "t0ken", expires_at=int(time.time()) + 600, user_id="alice")
later = attrs.evolve(token, scopes=("read",))
code = AuthorizationCode("app", "c0de", int(time.time()) + 600, None, ["read"])
local.save_token(later)
local.save_code(code)
found: AccessToken = local.fetch_by_token("t0ken")
python_oauth2 = TokenStore(local)
python_oauth2.save_token(PythonOAuth2AccessToken("app", "password", "t2", scopes=["read"], user_id=1))
issued: PythonOAuth2AccessToken = python_oauth2.fetch_by_token("t2")
seconds: int = issued.expires_in if issued.expires_at is not None else 0

clients = LocalClientStore()
clients.add_client("app", "s3cret", ["https://app.example/cb"], scopes=["read"], token_endpoint_auth_method="client_secret_post")
authlib_storage = AuthlibStorage(local, clients, code_expires_in=300)
validator: BearerTokenValidator = authlib_storage.bearer_token_validator(realm="api")
oauthlib_validator = StoreRequestValidator(local, clients, any_secret_method=True)
local.revoke_token("t0ken", "access_token")
issued_at: int | None = found.issued_at

# Redis: one server with credentials and TLS, a cluster, a client store that hashes secrets.
on_redis: TokenStoreProtocol = RedisTokenStore(redis_client("127.0.0.1", 6379, password="pw", tls=True, ca_file="/ca.pem"), "app", reissue_key=b"k" * 32)
cluster_client = redis_cluster_client  # built only when called: it reads the slots from a node
redis_registry = RedisClientStore(redis_client(), prefix="app")
hashed_client = redis_registry.add_client("app", "s3cret", ["https://app.example/cb"])
verified: bool = hashed_client.check_secret("s3cret")
