"""The oauthlib seam, in process: oauthlib's own ``Server`` on :class:`StoreRequestValidator`.

Each test drives oauthlib's endpoints the way a web framework's view does (URI, method, body,
headers) over the in-memory stores and a manual clock, and checks both the answers and what the
stores then hold: records, errors, codes and refresh tokens used once, grants as families.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from oauthlib.oauth2 import Server
from oauthlib.oauth2.rfc6749 import errors

from oauth2_store import AccessToken
from oauth2_store.clock import ManualClock
from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodecError, StoreError, StoreUnavailableError
from oauth2_store.integrations.oauthlib import (
    CODE_SECONDS,
    OAuthlibClient,
    StoreFailure,
    StoreRequestValidator,
    StoreUnavailable,
    access_token_of,
)
from oauth2_store.models import AuthorizationCode
from oauth2_store.protocols import TokenTypeHint
from oauth2_store.store import LocalClientStore, LocalTokenStore

BASE = "https://auth.example"
APP, APP_SECRET, APP_URI = "app", "s3cret:+/%", "https://app.example/cb"
POST_APP, POST_SECRET = "post-app", "p0st-secret"
SPA, SPA_URI = "spa", "https://spa.example/cb"
VERIFIER = "v" * 43 + secrets.token_urlsafe(8)
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
REFRESH_SECONDS = 7 * 24 * 3600


class FlakyTokenStore(LocalTokenStore):
    """A local store whose named operations raise ``failure`` (a backend gone, a corrupt record)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.failing: set[str] = set()
        self.failure: StoreError = StoreUnavailableError("memcached did not answer", server="127.0.0.1:1")
        self.used_meanwhile: set[str] = set()
        self.revoke_on_consume = False
        """Revoke a code's grant as it is handed out: what a concurrent replay does before the token is saved."""

    def _check(self, operation: str) -> None:
        if operation in self.failing:
            raise self.failure

    def save_token(self, access_token: AccessToken) -> None:
        self._check("save_token")
        super().save_token(access_token)

    def fetch_by_token(self, token: str) -> AccessToken:
        self._check("fetch_by_token")
        return super().fetch_by_token(token)

    def fetch_by_refresh_token(self, refresh_token: str) -> AccessToken:
        self._check("fetch_by_refresh_token")
        found = super().fetch_by_refresh_token(refresh_token)
        if refresh_token in self.used_meanwhile:  # another request refreshes it right after this read
            super().delete_refresh_token(refresh_token)
        return found

    def delete_refresh_token(self, refresh_token: str) -> None:
        self._check("delete_refresh_token")
        super().delete_refresh_token(refresh_token)

    def revoke_token(self, token: str, token_type_hint: TokenTypeHint | None = None) -> None:
        self._check("revoke_token")
        super().revoke_token(token, token_type_hint)

    def save_code(self, authorization_code: AuthorizationCode) -> None:
        self._check("save_code")
        super().save_code(authorization_code)

    def consume_code(self, code: str) -> AuthorizationCode:
        self._check("consume_code")
        found = super().consume_code(code)
        if self.revoke_on_consume:
            self.revoke_grant(found.grant_id)
        return found


class Provider:
    """oauthlib's ``Server`` on the validator, with the calls a view makes."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.tokens = FlakyTokenStore(self.clock)
        self.clients = LocalClientStore()
        self.clients.add_client(APP, APP_SECRET, [APP_URI], scopes=["read", "write"])
        self.clients.add_client(POST_APP, POST_SECRET, [APP_URI, APP_URI + "/2"], token_endpoint_auth_method="client_secret_post")
        self.clients.add_client(SPA, "", [SPA_URI])
        self.validator = StoreRequestValidator(self.tokens, self.clients, refresh_token_expires_in=REFRESH_SECONDS, clock=self.clock)
        self.server = Server(self.validator, token_expires_in=3600)

    def authorize(self, user: str | None = "alice", **params: str) -> tuple[int, dict[str, list[str]]]:
        """Ask for a code; return the status and the parameters of the redirect."""
        query = {"response_type": "code", "client_id": APP, "redirect_uri": APP_URI, "state": "st4te", **params}
        headers, _, status = self.server.create_authorization_response(f"{BASE}/authorize?{urlencode(query)}", credentials={"user": user})
        return status, parse_qs(urlsplit(headers["Location"]).query)

    def code(self, **params: str) -> str:
        status, redirect = self.authorize(**params)
        assert status == 302 and "code" in redirect, redirect
        return redirect["code"][0]

    def token(self, form: dict[str, str], *, basic: tuple[str, str] | None = (APP, APP_SECRET)) -> tuple[int, dict[str, Any]]:
        """POST the token endpoint (client_secret_basic unless ``basic`` is None); status and JSON."""
        _, body, status = self.server.create_token_response(f"{BASE}/token", "POST", urlencode(form), _headers(basic))
        document: dict[str, Any] = json.loads(body)
        return status, document

    def redeem(self, code: str, **form: str) -> tuple[int, dict[str, Any]]:
        return self.token({"grant_type": "authorization_code", "code": code, "redirect_uri": APP_URI, "code_verifier": VERIFIER, **form})

    def issue(self, **params: str) -> dict[str, Any]:
        status, token = self.redeem(self.code(code_challenge=CHALLENGE, code_challenge_method="S256", **params))
        assert status == 200, token
        return token

    def me(self, access_token: str, scopes: list[str] | None = None) -> tuple[bool, AccessToken | None]:
        valid, request = self.server.verify_request(f"{BASE}/api/me", headers={"Authorization": f"Bearer {access_token}"}, scopes=scopes)
        return valid, access_token_of(request)

    def introspect(self, token: str, *, basic: tuple[str, str] = (APP, APP_SECRET), **form: str) -> dict[str, object]:
        _, body, status = self.server.create_introspect_response(f"{BASE}/introspect", "POST", urlencode({"token": token, **form}), _headers(basic))
        assert status == 200, body
        document: dict[str, object] = json.loads(body)
        return document

    def revoke(self, token: str, *, basic: tuple[str, str] = (APP, APP_SECRET), **form: str) -> int:
        """Revoke ``token``; return the status (200, or that of a JSON error)."""
        _, body, status = self.server.create_revocation_response(f"{BASE}/revoke", "POST", urlencode({"token": token, **form}), _headers(basic))
        assert status == 200 or json.loads(body)["error"], body
        return int(status)


def _headers(basic: tuple[str, str] | None) -> dict[str, str]:
    if basic is None:
        return dict(FORM)
    credentials = base64.b64encode(f"{quote(basic[0], safe='')}:{quote(basic[1], safe='')}".encode()).decode()
    return {**FORM, "Authorization": f"Basic {credentials}"}


@pytest.fixture
def provider() -> Iterator[Provider]:
    yield Provider()


def test_a_code_with_pkce_becomes_a_token_stored_with_every_field(provider: Provider) -> None:
    status, redirect = provider.authorize(code_challenge=CHALLENGE, code_challenge_method="S256", scope="read")
    assert status == 302 and redirect["state"] == ["st4te"]
    code = provider.tokens.fetch_by_code(redirect["code"][0])
    assert (code.client_id, code.user_id, code.scopes, code.redirect_uri) == (APP, "alice", ("read",), APP_URI)
    assert (code.code_challenge, code.code_challenge_method, code.expires_at) == (CHALLENGE, "S256", int(provider.clock()) + CODE_SECONDS)
    status, token = provider.redeem(code.code)
    assert status == 200, token
    assert (token["token_type"], token["expires_in"], token["scope"]) == ("Bearer", 3600, "read")
    record = provider.tokens.fetch_by_token(token["access_token"])
    now = int(provider.clock())
    assert record == AccessToken(
        APP,
        "authorization_code",
        token["access_token"],
        expires_at=now + 3600,
        refresh_token=token["refresh_token"],
        scopes=["read"],
        refresh_expires_at=now + REFRESH_SECONDS,
        user_id="alice",
        issued_at=now,
        token_type="Bearer",
        grant_id=code.grant_id,
    )
    assert provider.me(token["access_token"]) == (True, record)


def test_a_code_is_consumed_by_its_first_redemption_even_a_failed_one(provider: Provider) -> None:
    code = provider.code(code_challenge=CHALLENGE, code_challenge_method="S256")
    assert provider.redeem(code, code_verifier="w" * 43) == (400, {"error": "invalid_grant"})
    with pytest.raises(AuthCodeNotFound):
        provider.tokens.fetch_by_code(code)
    assert provider.redeem(code) == (400, {"error": "invalid_grant"})  # the right verifier is too late
    code = provider.code()
    assert provider.redeem(code)[0] == 200  # a confidential client may skip PKCE
    assert provider.redeem(code) == (400, {"error": "invalid_grant"})


def test_a_code_is_bound_to_its_client_and_redirect_uri(provider: Provider) -> None:
    code = provider.code()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP_URI, "client_id": POST_APP, "client_secret": POST_SECRET}
    assert provider.token(form, basic=None) == (400, {"error": "invalid_grant"})  # another client's code ...
    assert provider.redeem(code) == (400, {"error": "invalid_grant"})  # ... is used up all the same
    code = provider.code()
    status, answer = provider.token({"grant_type": "authorization_code", "code": code})  # the authorization request named its URI
    assert (status, answer["error"]) == (400, "invalid_grant")  # RFC 6749 §5.2 (oauthlib alone: invalid_request)
    with pytest.raises(errors.MismatchingRedirectURIError):  # never a redirect to an unregistered URI
        provider.authorize(redirect_uri="https://app.example/other")
    with pytest.raises(errors.InvalidClientIdError):
        provider.authorize(client_id="nobody")


def test_a_request_without_redirect_uri_uses_the_only_registered_one(provider: Provider) -> None:
    query = urlencode({"response_type": "code", "client_id": APP, "state": "s"})
    headers, _, status = provider.server.create_authorization_response(f"{BASE}/authorize?{query}", credentials={"user": "alice"})
    assert status == 302 and headers["Location"].startswith(APP_URI + "?")
    code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
    assert provider.tokens.fetch_by_code(code).redirect_uri is None
    assert provider.token({"grant_type": "authorization_code", "code": code})[0] == 200
    with pytest.raises(errors.MissingRedirectURIError):  # several registered: the request must name one
        query = urlencode({"response_type": "code", "client_id": POST_APP})
        provider.server.create_authorization_response(f"{BASE}/authorize?{query}", credentials={"user": "alice"})


def test_a_public_client_must_use_pkce_and_sends_only_its_client_id(provider: Provider) -> None:
    status, redirect = provider.authorize(client_id=SPA, redirect_uri=SPA_URI)
    assert status == 302 and redirect["error"] == ["invalid_request"]  # RFC 7636: a challenge is required
    code = provider.code(client_id=SPA, redirect_uri=SPA_URI, code_challenge=CHALLENGE, code_challenge_method="S256")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": SPA_URI, "client_id": SPA}
    status, answer = provider.token(form, basic=None)  # no verifier
    assert (status, answer["error"]) == (400, "invalid_request")
    code = provider.code(client_id=SPA, redirect_uri=SPA_URI, code_challenge=CHALLENGE, code_challenge_method="S256")
    status, token = provider.token({**form, "code": code, "code_verifier": VERIFIER}, basic=None)
    assert status == 200 and provider.tokens.fetch_by_token(token["access_token"]).client_id == SPA
    status, refreshed = provider.token({"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": SPA}, basic=None)
    assert status == 200 and refreshed["refresh_token"] != token["refresh_token"]
    # A code stored without a challenge (by another server, say) is refused to a public client.
    provider.tokens.save_code(AuthorizationCode(SPA, "no-challenge", int(provider.clock()) + 60, SPA_URI, [], user_id="bob"))
    status, answer = provider.token({**form, "code": "no-challenge", "code_verifier": VERIFIER}, basic=None)
    assert (status, answer["error"]) == (400, "invalid_grant")
    assert provider.token({"grant_type": "client_credentials", "client_id": SPA}, basic=None)[1]["error"] == "invalid_client"
    assert provider.token({"grant_type": "client_credentials"}, basic=(SPA, ""))[1]["error"] == "invalid_client"


def test_clients_authenticate_with_their_method_and_one_method_only(provider: Provider) -> None:
    basic_app = {"grant_type": "client_credentials"}
    post_app = {"grant_type": "client_credentials", "client_id": APP, "client_secret": APP_SECRET}
    status, token = provider.token(basic_app)  # the secret holds ":+/%": form-urlencoded in the header (RFC 6749 §2.3.1)
    assert status == 200 and "refresh_token" not in token
    record = provider.tokens.fetch_by_token(token["access_token"])
    assert (record.grant_type, record.user_id, record.scopes, record.refresh_token) == ("client_credentials", None, (), None)  # none asked, none granted
    refused = (401, {"error": "invalid_client"})
    assert provider.token(post_app, basic=None) == refused  # APP is registered with client_secret_basic
    assert provider.token({"grant_type": "client_credentials", "client_id": POST_APP, "client_secret": POST_SECRET}, basic=None)[0] == 200
    assert provider.token(basic_app, basic=(POST_APP, POST_SECRET)) == refused  # POST_APP with client_secret_post
    assert provider.token(basic_app, basic=(APP, "wrong")) == refused
    assert provider.token(basic_app, basic=("nobody", APP_SECRET)) == refused
    assert provider.token({**basic_app, "client_secret": APP_SECRET}) == refused  # two methods at once
    assert provider.token({**basic_app, "client_id": POST_APP}) == refused  # two client ids
    _, body, status = provider.server.create_token_response(f"{BASE}/token", "POST", urlencode(basic_app), {**FORM, "Authorization": "Basic !!"})
    assert (status, json.loads(body)) == refused
    lenient = StoreRequestValidator(provider.tokens, provider.clients, any_secret_method=True, clock=provider.clock)
    _, body, status = Server(lenient).create_token_response(f"{BASE}/token", "POST", urlencode(post_app), FORM)
    assert status == 200, body


def test_a_refresh_rotates_the_refresh_token_and_revokes_the_old_pair(provider: Provider) -> None:
    first = provider.issue(scope="read write")
    provider.clock.advance(3600)  # the access token has expired; its refresh token has not
    assert provider.me(first["access_token"]) == (False, None)
    status, second = provider.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert status == 200 and second["scope"] == "read write"
    assert second["access_token"] != first["access_token"] and second["refresh_token"] not in (None, first["refresh_token"])
    now = int(provider.clock())
    record = provider.tokens.fetch_by_token(second["access_token"])
    assert (record.grant_type, record.user_id, record.issued_at, record.refresh_expires_at) == ("authorization_code", "alice", now, now + REFRESH_SECONDS)
    status, narrowed = provider.token({"grant_type": "refresh_token", "refresh_token": second["refresh_token"], "scope": "read"})
    assert status == 200 and narrowed["scope"] == "read"
    assert provider.me(second["access_token"]) == (False, None)  # revoked with its refresh token
    status, answer = provider.token({"grant_type": "refresh_token", "refresh_token": narrowed["refresh_token"], "scope": "read write"})
    assert (status, answer["error"]) == (400, "invalid_scope")  # a refresh never widens
    form = {"grant_type": "refresh_token", "refresh_token": narrowed["refresh_token"], "client_id": POST_APP, "client_secret": POST_SECRET}
    assert provider.token(form, basic=None) == (400, {"error": "invalid_grant"})  # not POST_APP's
    assert provider.me(narrowed["access_token"])[0]
    assert provider.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}) == (400, {"error": "invalid_grant"})
    assert provider.me(narrowed["access_token"]) == (False, None)  # the reuse ended the grant


def test_a_refresh_token_used_by_a_concurrent_request_issues_nothing(provider: Provider) -> None:
    token = provider.issue()
    provider.tokens.used_meanwhile.add(token["refresh_token"])
    body = urlencode({"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    with pytest.raises(errors.InvalidGrantError):  # raised while saving: oauthlib lets it escape
        provider.server.create_token_response(f"{BASE}/token", "POST", body, _headers((APP, APP_SECRET)))
    assert provider.me(token["access_token"]) == (False, None)  # the pair the other request revoked
    with pytest.raises(AccessTokenNotFound):  # and nothing new: the user has no live token
        provider.tokens.fetch_existing_token_of_user(APP, "authorization_code", "alice")


def test_a_replayed_code_is_invalid_grant_and_ends_the_token_issued_from_it(provider: Provider) -> None:
    code = provider.code(code_challenge=CHALLENGE, code_challenge_method="S256")
    status, first = provider.redeem(code)
    assert status == 200 and provider.me(first["access_token"])[0]
    assert provider.redeem(code) == (400, {"error": "invalid_grant"})
    assert provider.me(first["access_token"]) == (False, None)
    assert provider.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}) == (400, {"error": "invalid_grant"})
    assert provider.me(provider.issue()["access_token"])[0]  # other grants are untouched


def test_a_rotated_refresh_token_presented_again_is_invalid_grant_and_ends_the_newest_tokens(provider: Provider) -> None:
    first = provider.issue()
    status, second = provider.token({"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert status == 200
    status, newest = provider.token({"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert status == 200 and provider.me(newest["access_token"])[0]
    assert provider.token({"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}) == (400, {"error": "invalid_grant"})
    assert provider.me(newest["access_token"]) == (False, None)
    assert provider.token({"grant_type": "refresh_token", "refresh_token": newest["refresh_token"]}) == (400, {"error": "invalid_grant"})


def test_tokens_issued_by_refreshes_carry_the_original_grant(provider: Provider) -> None:
    code = provider.code(code_challenge=CHALLENGE, code_challenge_method="S256")
    grant_id = provider.tokens.fetch_by_code(code).grant_id
    status, token = provider.redeem(code)
    assert status == 200 and provider.tokens.fetch_by_token(token["access_token"]).grant_id == grant_id
    for _ in range(3):
        status, token = provider.token({"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
        assert status == 200, token
        record = provider.tokens.fetch_by_token(token["access_token"])
        assert (record.grant_id, record.grant_type, record.refresh_token) == (grant_id, "authorization_code", token["refresh_token"])
    machine = provider.token({"grant_type": "client_credentials"})[1]
    assert provider.tokens.fetch_by_token(machine["access_token"]).grant_id != grant_id  # a grant of its own


def test_a_token_saved_into_a_revoked_grant_is_invalid_grant_not_a_server_error(provider: Provider) -> None:
    provider.tokens.revoke_on_consume = True  # as a concurrent replay would, between redemption and saving
    code = provider.code(code_challenge=CHALLENGE, code_challenge_method="S256")
    body = urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": APP_URI, "code_verifier": VERIFIER})
    with pytest.raises(errors.InvalidGrantError) as refused:  # raised while saving: oauthlib lets it escape
        provider.server.create_token_response(f"{BASE}/token", "POST", body, _headers((APP, APP_SECRET)))
    assert (refused.value.status_code, json.loads(refused.value.json)["error"]) == (400, "invalid_grant")
    with pytest.raises(AccessTokenNotFound):  # nothing was issued
        provider.tokens.fetch_existing_token_of_user(APP, "authorization_code", "alice")


def test_bearer_tokens_are_checked_for_life_and_scope(provider: Provider) -> None:
    token = provider.issue(scope="read")
    assert provider.me(token["access_token"], ["read"])[0]
    assert provider.me(token["access_token"], ["read", "write"]) == (False, None)
    assert provider.me("unknown") == (False, None)
    valid, _ = provider.server.verify_request(f"{BASE}/api/me", scopes=[])
    assert not valid
    provider.clock.advance(3599)
    assert provider.me(token["access_token"])[0]
    provider.clock.advance(1)
    assert provider.me(token["access_token"]) == (False, None)


def test_revocation_revokes_only_the_callers_tokens(provider: Provider) -> None:
    token = provider.issue()
    assert provider.revoke(token["access_token"], basic=(POST_APP, POST_SECRET), client_id=POST_APP) == 401  # basic: not its method
    assert provider.revoke(token["access_token"], basic=(APP, "wrong")) == 401
    with pytest.raises(errors.InvalidGrantError):  # another client's token: refused (RFC 7009 §2.1), raised while revoking
        provider.server.create_revocation_response(
            f"{BASE}/revoke", "POST", urlencode({"token": token["access_token"], "client_id": POST_APP, "client_secret": POST_SECRET}), FORM
        )
    assert provider.me(token["access_token"])[0]  # and not revoked
    assert provider.revoke("unknown") == 200
    assert provider.revoke(token["access_token"], token_type_hint="refresh_token") == 200  # a wrong hint still finds it
    assert provider.me(token["access_token"]) == (False, None)
    refreshed = provider.token({"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert refreshed[0] == 200  # RFC 7009: an access token is revoked alone
    assert provider.revoke(refreshed[1]["refresh_token"], token_type_hint="unknown-hint") == 200
    assert provider.me(refreshed[1]["access_token"]) == (False, None)  # with its refresh token
    public = provider.token(
        {"grant_type": "authorization_code", "code": provider.code(client_id=SPA, redirect_uri=SPA_URI, code_challenge=CHALLENGE, code_challenge_method="S256"),
         "redirect_uri": SPA_URI, "client_id": SPA, "code_verifier": VERIFIER}, basic=None
    )[1]
    _, _, status = provider.server.create_revocation_response(f"{BASE}/revoke", "POST", urlencode({"token": public["access_token"], "client_id": SPA}), FORM)
    assert status == 200 and provider.me(public["access_token"]) == (False, None)


def test_introspection_claims(provider: Provider) -> None:
    token = provider.issue(scope="write read")
    now = int(provider.clock())
    claims = {"scope": "write read", "client_id": APP, "token_type": "Bearer", "iat": now, "sub": "alice", "username": "alice"}
    assert provider.introspect(token["access_token"]) == {"active": True, **claims, "exp": now + 3600}
    assert provider.introspect(token["refresh_token"], token_type_hint="refresh_token") == {"active": True, **claims, "exp": now + REFRESH_SECONDS}
    _, body, status = provider.server.create_introspect_response(f"{BASE}/introspect", "POST", urlencode({"token": token["access_token"]}), _headers((APP, "wrong")))
    assert (status, json.loads(body)["error"]) == (401, "invalid_client")
    machine = provider.token({"grant_type": "client_credentials"})[1]
    assert "sub" not in provider.introspect(machine["access_token"])
    with pytest.raises(errors.InvalidClientError):  # a public client cannot authenticate to introspect
        provider.server.create_introspect_response(f"{BASE}/introspect", "POST", urlencode({"token": token["access_token"], "client_id": SPA}), FORM)
    form = urlencode({"token": token["access_token"], "client_id": POST_APP, "client_secret": POST_SECRET})
    _, body, _ = provider.server.create_introspect_response(f"{BASE}/introspect", "POST", form, FORM)
    assert json.loads(body) == {"active": False}  # another client's token: as if unknown
    assert provider.introspect("unknown") == {"active": False}
    provider.clock.advance(3600)
    assert provider.introspect(token["access_token"]) == {"active": False}
    assert provider.introspect(token["refresh_token"])["active"] is True
    provider.revoke(token["refresh_token"])
    assert provider.introspect(token["refresh_token"]) == {"active": False}


def test_the_all_in_one_servers_other_grants_are_refused(provider: Provider) -> None:
    status, answer = provider.token({"grant_type": "password", "username": "alice", "password": "pa55"})
    assert (status, answer["error"]) == (400, "unsupported_grant_type")
    status, answer = provider.token({"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"})
    assert (status, answer["error"]) == (400, "unauthorized_client")
    assert provider.token({"grant_type": "made-up"})[1]["error"] == "unsupported_grant_type"
    query = urlencode({"response_type": "token", "client_id": APP, "redirect_uri": APP_URI})
    headers, _, status = provider.server.create_authorization_response(f"{BASE}/authorize?{query}", credentials={"user": "alice"})
    assert status == 302 and parse_qs(urlsplit(headers["Location"]).fragment)["error"] == ["unauthorized_client"]


def test_pkce_is_s256_only_and_refused_back_to_the_client(provider: Provider) -> None:
    for params in (
        {"code_challenge": CHALLENGE, "code_challenge_method": "plain"},
        {"code_challenge": CHALLENGE},  # no method: RFC 7636 reads it as plain
        {"code_challenge": "too-short", "code_challenge_method": "S256"},
        {"code_challenge_method": "S256"},
    ):
        status, redirect = provider.authorize(**params)
        assert status == 302 and redirect["error"] == ["invalid_request"] and redirect["state"] == ["st4te"], params
    assert len(provider.tokens) == 0  # no code was issued


def test_a_bearer_token_counts_only_in_the_authorization_header(provider: Provider) -> None:
    token = provider.issue()
    assert provider.me(token["access_token"])[0]
    valid, request = provider.server.verify_request(f"{BASE}/api/me?{urlencode({'access_token': token['access_token']})}", scopes=[])
    assert not valid and access_token_of(request) is None
    body = urlencode({"access_token": token["access_token"]})
    valid, _ = provider.server.verify_request(f"{BASE}/api/me", "POST", body, FORM, scopes=[])
    assert not valid


def test_scopes_are_scope_tokens_the_client_may_have(provider: Provider) -> None:
    for scope in ("admin", 're"ad'):
        status, redirect = provider.authorize(scope=scope)
        assert status == 302 and redirect["error"] == ["invalid_scope"], scope
    assert provider.tokens.fetch_by_code(provider.code()).scopes == ()  # none asked, none granted (as with Authlib)
    assert provider.tokens.fetch_by_code(provider.code(client_id=POST_APP, scope="anything")).scopes == ("anything",)


def test_the_user_is_an_identifier_and_required(provider: Provider) -> None:
    with pytest.raises(errors.AccessDeniedError) as denied:  # raised with the request: the view redirects it
        provider.authorize(user=None)
    assert denied.value.in_uri(denied.value.redirect_uri or "") == f"{APP_URI}?error=access_denied&error_description=no+user+approved+the+request&state=st4te"
    with pytest.raises(TypeError):
        provider.server.create_authorization_response(f"{BASE}/authorize?{urlencode({'response_type': 'code', 'client_id': APP})}", credentials={"user": 7})
    assert OAuthlibClient(provider.clients.fetch_by_client_id(APP)).client_id == APP


@pytest.mark.parametrize(
    ("failure", "raised", "status", "error"),
    [
        (StoreUnavailableError("memcached did not answer"), StoreUnavailable, 503, "temporarily_unavailable"),
        (CodecError("corrupt payload"), StoreFailure, 500, "server_error"),
    ],
)
def test_a_failing_store_is_an_error_answer_never_invalid(
    provider: Provider, failure: StoreError, raised: type[errors.OAuth2Error], status: int, error: str
) -> None:
    token = provider.issue()
    code = provider.code()
    provider.tokens.failure = failure
    provider.tokens.failing = {"consume_code", "fetch_by_refresh_token"}
    assert provider.redeem(code) == (status, {"error": error, "error_description": raised.description})
    assert provider.token({"grant_type": "refresh_token", "refresh_token": token["refresh_token"]})[0] == status
    provider.tokens.failing = {"save_token", "save_code", "fetch_by_token", "fetch_by_refresh_token", "revoke_token"}
    redirected = errors.TemporarilyUnavailableError if raised is StoreUnavailable else errors.ServerError
    with pytest.raises(redirected) as at_authorize:  # the redirect URI is validated by then: the view sends it back to the client
        provider.authorize()
    assert (at_authorize.value.status_code, at_authorize.value.error, at_authorize.value.redirect_uri) == (status, error, APP_URI)
    # Raised where oauthlib lets an OAuth2Error escape (saving, revoking, verify_request): the
    # view answers it with its status, never a 401 or a redirect.
    for call in (
        lambda: provider.token({"grant_type": "client_credentials"}),
        lambda: provider.me(token["access_token"]),
        lambda: provider.revoke(token["access_token"]),
        lambda: provider.introspect(token["access_token"]),
    ):
        with pytest.raises(raised) as caught:
            call()
        assert (caught.value.status_code, json.loads(caught.value.json)["error"]) == (status, error)
    provider.tokens.failing = set()
    assert provider.me(token["access_token"])[0]  # nothing was lost
