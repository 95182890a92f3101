"""The store contracts as ``typing.Protocol`` classes, checkable by mypy and at run time.

A server types its dependencies with these, and any object with the right methods fits: ours, a
subclass of the legacy ABCs in :mod:`oauth2_store.store`, or a third party's. Each is
``runtime_checkable``, so ``isinstance(store, ExtendedAccessTokenStoreProtocol)`` tells at run time
whether a store offers the extended operations (it checks that the methods exist, not their
signatures; mypy checks those).

The documented contracts (python-oauth2 v0.4.0) are :class:`AccessTokenStoreProtocol`,
:class:`AuthCodeStoreProtocol` and :class:`ClientStoreProtocol`. The extended ones add the
operations of later python-oauth2 releases and the atomic :meth:`consume_code`;
:class:`RevocableAccessTokenStoreProtocol` adds RFC 7009's ``revoke_token``;
:class:`TokenStoreProtocol` is the revocable token and extended code contracts, what a full
authorization server needs; :class:`LifecycleTokenStoreProtocol` adds grants as families (code
replay and refresh-token reuse revoke them) and revocation by user and by client.

Rules every implementation follows (the conformance suite in :mod:`oauth2_store.testing` checks
them):

- A miss raises the documented not-found error; nothing returns None.
- A record past its expiry is never returned. A refresh token outlives its access token: it is
  found until ``refresh_expires_at`` (forever when None) even after ``expires_at``.
- Tokens, refresh tokens and codes live in separate namespaces: equal strings never collide.
- A backend failure raises :class:`~oauth2_store.error.StoreUnavailableError`, never a miss.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from oauth2_store.models import AccessToken, AuthorizationCode, Client

__all__ = [
    "AccessTokenStoreProtocol",
    "AuthCodeStoreProtocol",
    "ClientStoreProtocol",
    "ExtendedAccessTokenStoreProtocol",
    "ExtendedAuthCodeStoreProtocol",
    "LifecycleTokenStoreProtocol",
    "RevocableAccessTokenStoreProtocol",
    "TokenStoreProtocol",
    "TokenTypeHint",
]

TokenTypeHint = Literal["access_token", "refresh_token"]
"""The ``token_type_hint`` values of RFC 7009 §2.1 (and RFC 7662 §2.1)."""


@runtime_checkable
class AccessTokenStoreProtocol(Protocol):
    """The documented access-token contract: save a token, find it by its refresh token."""

    def save_token(self, access_token: AccessToken) -> None:
        """Store ``access_token``, findable by its token, its refresh token and its user.

        A part that has already expired (the access token past ``expires_at``, the refresh token
        past ``refresh_expires_at``) is not stored. When this returns, the token is stored.

        Raises:
            RecordTypeError: ``access_token`` is not an :class:`~oauth2_store.AccessToken` (a
                foreign record, such as python-oauth2's); nothing is stored.
            StoreUnavailableError: the backend failed; the token may not be stored.
        """
        ...

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        """Return the access token issued with ``refresh_token``, even if the access token expired.

        Raises:
            AccessTokenNotFound: no such refresh token, it was revoked, or it expired.
            StoreUnavailableError: the backend failed.
        """
        ...


@runtime_checkable
class ExtendedAccessTokenStoreProtocol(AccessTokenStoreProtocol, Protocol):
    """The access-token contract with lookup by token, revocation and per-user lookup."""

    def fetch_by_token(self, token: str) -> AccessToken:
        """Return the live access token ``token``.

        Raises:
            AccessTokenNotFound: no such token, it was revoked, or it expired.
            StoreUnavailableError: the backend failed.
        """
        ...

    def delete_refresh_token(self, refresh_token: str) -> None:
        """Revoke ``refresh_token`` and the access token issued with it.

        Raises:
            AccessTokenNotFound: no such refresh token (already revoked, or expired).
            StoreUnavailableError: the backend failed; the tokens may still be live.
        """
        ...

    def fetch_existing_token_of_user(self, client_id: str, grant_type: str, user_id: str | None) -> AccessToken:
        """Return the live access token most recently saved for this client, grant and user.

        Raises:
            AccessTokenNotFound: none was saved, or the latest one was revoked or expired.
            StoreUnavailableError: the backend failed.
        """
        ...


@runtime_checkable
class RevocableAccessTokenStoreProtocol(ExtendedAccessTokenStoreProtocol, Protocol):
    """The extended access-token contract with RFC 7009 revocation of either kind of token."""

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        """Revoke ``token``, whether it is an access token or a refresh token (RFC 7009 §2.1).

        An access token is revoked alone: the refresh token issued with it stays usable. A refresh
        token is revoked together with the access token issued with it, and its user's entry for
        :meth:`fetch_existing_token_of_user`. A token that is unknown, expired or already revoked
        is not an error (RFC 7009 §2.2). ``token_type_hint`` says where to look first; the
        search always extends to the other kind, so a wrong hint never leaves a token live.

        Raises:
            ValueError: ``token_type_hint`` is not ``"access_token"``, ``"refresh_token"`` or None
                (an endpoint answers such a hint ``unsupported_token_type`` before calling this).
            StoreUnavailableError: the backend failed; the token may still be live.
        """
        ...


@runtime_checkable
class AuthCodeStoreProtocol(Protocol):
    """The documented authorization-code contract: save a code, fetch it."""

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        """Store ``authorization_code`` until its ``expires_at`` (an expired code is not stored).

        Raises:
            RecordTypeError: ``authorization_code`` is not an :class:`~oauth2_store.AuthorizationCode`;
                nothing is stored.
            StoreUnavailableError: the backend failed; the code may not be stored.
        """
        ...

    def fetch_by_code(self, code: str) -> AuthorizationCode:
        """Return the live authorization code ``code`` without using it up.

        Use :meth:`ExtendedAuthCodeStoreProtocol.consume_code` to redeem a code: fetch then
        delete is not atomic, and RFC 6749 §4.1.2 allows a code to be used once.

        Raises:
            AuthCodeNotFound: no such code, it was used or deleted, or it expired.
            StoreUnavailableError: the backend failed.
        """
        ...


@runtime_checkable
class ExtendedAuthCodeStoreProtocol(AuthCodeStoreProtocol, Protocol):
    """The authorization-code contract with deletion and atomic, exactly-once consumption."""

    def delete_code(self, code: str) -> None:
        """Delete ``code``; deleting a code that is not there is not an error.

        Raises:
            StoreUnavailableError: the backend failed; the code may still be there.
        """
        ...

    def consume_code(self, code: str) -> AuthorizationCode:
        """Atomically fetch and delete ``code``: of any number of concurrent callers, exactly one
        gets it and every other gets :class:`~oauth2_store.error.AuthCodeNotFound`.

        Raises:
            AuthCodeNotFound: no such code, someone else consumed it, or it expired.
            StoreUnavailableError: the backend failed; whether the code was used is unknown, and
                it was not returned to this caller.
        """
        ...


@runtime_checkable
class TokenStoreProtocol(RevocableAccessTokenStoreProtocol, ExtendedAuthCodeStoreProtocol, Protocol):
    """Every token and code operation: what an authorization server needs from one store."""


@runtime_checkable
class LifecycleTokenStoreProtocol(TokenStoreProtocol, Protocol):
    """Every token and code operation, with the token lifecycle of RFC 6749 §4.1.2, RFC 7009 §2.1
    and RFC 9700 §4.14.2.

    A *grant* is one authorization: the code, the token issued from it and every token refreshed
    from that, all with the same ``grant_id``. On top of :class:`TokenStoreProtocol`:

    - ``consume_code`` (and ``fetch_by_code``) of a code already consumed raises
      :class:`~oauth2_store.error.CodeReplayError` and revokes the code's grant. The marker that
      remembers a consumed code lives until the code's own expiry: an expired or unknown code
      revokes nothing. Of concurrent consumers, the losers are replays.
    - ``delete_refresh_token`` *retires* the refresh token (rotation: its access token goes with
      it, exactly once as before). Presenting a retired refresh token again (to
      ``fetch_by_refresh_token`` or ``delete_refresh_token``) raises
      :class:`~oauth2_store.error.RefreshTokenReuseError` and revokes the grant, the tokens
      refreshed from it included. Of concurrent retirers, the losers are reuse: an attacker
      racing the client looks the same as a client retrying, so both end the grant.
    - ``revoke_token`` of a refresh token revokes its grant (RFC 7009 §2.1); of an access token,
      that token alone.
    - ``save_token`` and ``save_code`` into a revoked grant raise
      :class:`~oauth2_store.error.GrantRevokedError` and leave nothing usable.
    - A code or refresh token whose grant cannot be confirmed live (revoked, or its state lost to
      eviction or a restart) is refused as not found: failure is never permission.

    Each store documents what ``fetch_by_token`` can let through when its state is lost.
    """

    def revoke_grant(self, grant_id: str) -> None:
        """End grant ``grant_id``: its access tokens, refresh tokens and unconsumed code stop
        working, in every process sharing the store. An unknown grant is not an error.

        Raises:
            StoreUnavailableError: the backend failed; the grant may still be live.
        """
        ...

    def revoke_user(self, user_id: str, client_id: str | None = None) -> None:
        """End every grant of ``user_id`` (with ``client_id``: of that client only) that exists
        when this is called, with their tokens and codes. Grants authorized afterwards work.

        Raises:
            StoreUnavailableError: the backend failed; grants may still be live.
        """
        ...

    def revoke_client(self, client_id: str) -> None:
        """End every grant of ``client_id`` that exists when this is called, with its tokens and
        unconsumed codes. Grants authorized afterwards work.

        Raises:
            StoreUnavailableError: the backend failed; grants may still be live.
        """
        ...


@runtime_checkable
class ClientStoreProtocol(Protocol):
    """The documented client contract: find a client by its identifier."""

    def fetch_by_client_id(self, client_id: str) -> Client:
        """Return the client registered as ``client_id``.

        Raises:
            ClientNotFoundError: no client has that identifier.
            StoreUnavailableError: the backend failed.
        """
        ...
