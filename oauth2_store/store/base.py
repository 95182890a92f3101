"""The documented base classes of python-oauth2's ``oauth2.store``, as abstract base classes.

Only the documented methods are abstract, so an existing subclass that implements exactly those
keeps working. The extended operations (``fetch_by_token``, ``delete_refresh_token``,
``fetch_existing_token_of_user``, ``delete_code``, ``consume_code``) are deliberately *not* stubs
here that raise ``NotImplementedError``: a store either has them or it does not, which mypy and
``isinstance(store, ExtendedAccessTokenStoreProtocol)`` (see :mod:`oauth2_store.protocols`) can
tell, instead of a failure at run time.
"""

from __future__ import annotations

import abc

from oauth2_store.models import AccessToken, AuthorizationCode, Client

__all__ = ["AccessTokenStore", "AuthCodeStore", "ClientStore", "check_token_type_hint"]


class AccessTokenStore(abc.ABC):
    """Base class for persisting an access token after it has been generated.

    Used in two-legged and three-legged authentication flows.
    """

    @abc.abstractmethod
    def save_token(self, access_token: AccessToken) -> None:
        """Store an access token and its data.

        Raises:
            StoreUnavailableError: the backend failed.
        """

    @abc.abstractmethod
    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        """Fetch an access token from the store using its refresh token to identify it.

        Raises:
            AccessTokenNotFound: no live token has this refresh token.
            StoreUnavailableError: the backend failed.
        """


class AuthCodeStore(abc.ABC):
    """Base class for writing and retrieving an auth code during the Authorization Code Grant flow."""

    @abc.abstractmethod
    def save_code(self, authorization_code: AuthorizationCode) -> None:
        """Store the data belonging to an authorization code.

        Raises:
            StoreUnavailableError: the backend failed.
        """

    @abc.abstractmethod
    def fetch_by_code(self, code: str) -> AuthorizationCode:
        """Return the :class:`~oauth2_store.AuthorizationCode` stored for ``code``.

        Raises:
            AuthCodeNotFound: if no data could be retrieved for the given code.
            StoreUnavailableError: the backend failed.
        """


class ClientStore(abc.ABC):
    """Base class for handling OAuth2 clients."""

    @abc.abstractmethod
    def fetch_by_client_id(self, client_id: str) -> Client:
        """Retrieve a client by its identifier.

        Raises:
            ClientNotFoundError: no client has that identifier.
            StoreUnavailableError: the backend failed.
        """


def check_token_type_hint(token_type_hint: object) -> None:
    """Refuse a ``token_type_hint`` that is not one of RFC 7009's (for ``revoke_token``).

    Raises:
        ValueError: ``token_type_hint`` is not ``"access_token"``, ``"refresh_token"`` or None.
    """
    if token_type_hint is not None and token_type_hint != "access_token" and token_type_hint != "refresh_token":
        raise ValueError('token_type_hint must be "access_token", "refresh_token" or None')
