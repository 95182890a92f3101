"""oauth2-store: typed, immutable records and stores for an OAuth 2.0 provider.

The records live here (``oauth2_store.AccessToken``, ``AuthorizationCode``, ``Client``, and
:func:`hash_secret` for a client secret kept as a hash), with :func:`open_store`, which opens a
store from its URL. The errors are in :mod:`oauth2_store.error`,
the versioned byte formats in :mod:`oauth2_store.codec`, the store contracts in
:mod:`oauth2_store.protocols`, the stores in :mod:`oauth2_store.store`, the conformance suite
in :mod:`oauth2_store.testing`, and the wiring into OAuth servers in
:mod:`oauth2_store.integrations`. The ``oauth2-store`` command lives apart, in
:mod:`oauth2_store.cli`.
"""

from oauth2_store.json_data import FrozenJSON
from oauth2_store.models import AccessToken, AuthorizationCode, Client, hash_secret
from oauth2_store.urls import open_store

__all__ = ["AccessToken", "AuthorizationCode", "Client", "FrozenJSON", "hash_secret", "open_store"]

__version__ = "0.1.0"
