"""A user's mistakes: mypy --strict against the installed wheel must report each marked line, with
exactly the error code after "E:" (tests/test_wheel_typing.py). Excluded from the main mypy run.
"""

from __future__ import annotations

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.integrations.authlib import AuthlibStorage
from oauth2_store.integrations.oauthlib import StoreRequestValidator
from oauth2_store.integrations.python_oauth2 import TokenStore
from oauth2_store.store import LocalClientStore, LocalTokenStore, MemcacheTokenStore
from oauth2_store.store.memcache import pymemcache_client
from oauth2_store.store.memcache_clients import safe_pylibmc_client_class

local = LocalTokenStore()
token = AccessToken("app", "password", "t0ken")
code = AuthorizationCode("app", "c0de", 600, None, ["read"])

pymemcache_client(["127.0.0.1:11211"]).no_such_method()  # E: union-attr
pymemcache_client(["127.0.0.1:11211"], timeout="soon")  # E: arg-type
local.save_token(code)  # E: arg-type
token.scopes = ("admin",)  # E: misc
TokenStore(local).save_token(token)  # E: arg-type
TokenStore(local).fetch_by_token("t").no_such_field  # E: attr-defined
MemcacheTokenStore(servers=42)  # E: call-overload
MemcacheTokenStore(servers=["127.0.0.1"], no_such_option=True)  # E: call-overload
MemcacheTokenStore(servers=["127.0.0.1"], binary="yes")  # E: call-overload
safe_pylibmc_client_class()(["127.0.0.1:11211"], binary=True).no_such_method()  # E: attr-defined
AuthlibStorage(LocalClientStore(), local)  # E: arg-type
StoreRequestValidator(local, LocalClientStore(), any_secret_method="yes")  # E: arg-type
local.revoke_token("t", "id_token")  # E: arg-type
Client("spa", "", token_endpoint_auth_method="private_key_jwt")  # E: arg-type
