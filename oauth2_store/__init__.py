"""oauth2-store: typed, immutable records and stores for an OAuth 2.0 provider.

The records live here (``oauth2_store.AccessToken``, ``AuthorizationCode``, ``Client``), the
errors in :mod:`oauth2_store.error`, the versioned byte formats in :mod:`oauth2_store.codec`.
"""

from oauth2_store.json_data import FrozenJSON
from oauth2_store.models import AccessToken, AuthorizationCode, Client
from oauth2_store.urls import open_store

__all__ = ["AccessToken", "AuthorizationCode", "Client", "FrozenJSON", "open_store"]

__version__ = "0.1.0"
