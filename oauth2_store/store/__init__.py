"""Stores: the documented base classes and the concrete stores.

As in python-oauth2's ``oauth2.store``: the abstract bases :class:`AccessTokenStore`,
:class:`AuthCodeStore` and :class:`ClientStore`, the in-memory :class:`LocalClientStore` and
:class:`LocalTokenStore`, and :class:`MemcacheTokenStore`. The typed contracts they fulfil are in
:mod:`oauth2_store.protocols`.
"""

from oauth2_store.store.base import AccessTokenStore, AuthCodeStore, ClientStore
from oauth2_store.store.memcache import MemcacheTokenStore
from oauth2_store.store.memory import LocalClientStore, LocalTokenStore

__all__ = ["AccessTokenStore", "AuthCodeStore", "ClientStore", "LocalClientStore", "LocalTokenStore", "MemcacheTokenStore"]
