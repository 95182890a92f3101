"""A walk through the authorization-code lifecycle on any token store with the token lifecycle,
printed step by step.

``python -m oauth2_store demo`` runs it on the in-memory stores. Secrets are printed only as
fingerprints.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import TextIO

import attrs

from oauth2_store.error import AccessTokenNotFound, AuthCodeNotFound, CodeReplayError, RefreshTokenReuseError
from oauth2_store.models import AccessToken, AuthorizationCode
from oauth2_store.protocols import LifecycleTokenStoreProtocol
from oauth2_store.redaction import fingerprint
from oauth2_store.store.memory import LocalClientStore

__all__ = ["DemoFailed", "run_demo"]

REDIRECT_URI = "https://app.example/callback"


class DemoFailed(Exception):
    """A step of the demo did not behave as the contract says; the message names the step."""


def run_demo(tokens: LifecycleTokenStoreProtocol, out: TextIO, clock: Callable[[], float] = time.time) -> None:
    """Register a client, then issue and consume a code, issue a token in its grant, look it up,
    refresh it, replay the code (which revokes the grant) and check the grant's tokens are gone,
    on ``tokens``.

    Raises:
        DemoFailed: a step did not behave as the contract says.
        StoreUnavailableError: the store failed.
    """

    def step(title: str, detail: str) -> None:
        out.write(f"{title:<34} {detail}\n")

    clients = LocalClientStore()
    client = clients.add_client(
        "demo-app",
        secrets.token_urlsafe(24),
        [REDIRECT_URI],
        authorized_grants=["authorization_code", "refresh_token"],
        authorized_response_types=["code"],
    )
    step("1. register client", f"{client.identifier}, redirect {REDIRECT_URI}, secret <redacted>")

    now = int(clock())
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    code = AuthorizationCode(
        client.identifier,
        secrets.token_urlsafe(32),
        now + 600,
        REDIRECT_URI,
        ["profile", "email"],
        user_id="alice",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    tokens.save_code(code)
    step("2. issue authorization code", f"{fingerprint(code.code)} for alice, PKCE S256, expires in 600 s")

    redeemed = tokens.consume_code(code.code)
    if redeemed != code or not redeemed.verify_code_verifier(verifier):
        raise DemoFailed("step 3: the consumed code does not match what was issued")
    step("3. consume code", f"{fingerprint(redeemed.code)} redeemed, PKCE verifier accepted")

    token = AccessToken(
        client.identifier,
        "authorization_code",
        secrets.token_urlsafe(32),
        {"issued_by": "demo"},
        now + 3600,
        secrets.token_urlsafe(32),
        redeemed.scopes,
        refresh_expires_at=now + 30 * 86400,
        user_id="alice",
        grant_id=redeemed.grant_id,
    )
    tokens.save_token(token)
    step("4. issue access token", f"{fingerprint(token.token)}, refresh {fingerprint(token.refresh_token or '')}, 3600 s, in the code's grant")

    found = tokens.fetch_by_token(token.token)
    if found != token:
        raise DemoFailed("step 5: the token read back differs from the one saved")
    step("5. look up access token", f"found: user {found.user_id}, scopes {' '.join(found.scopes)}")

    assert token.refresh_token is not None
    previous = tokens.fetch_by_refresh_token(token.refresh_token)
    renewed = attrs.evolve(
        previous, token=secrets.token_urlsafe(32), refresh_token=secrets.token_urlsafe(32), expires_at=int(clock()) + 3600
    )
    tokens.delete_refresh_token(token.refresh_token)
    tokens.save_token(renewed)
    step("6. refresh (rotating)", f"new {fingerprint(renewed.token)} in the same grant, old refresh token retired")

    try:
        tokens.consume_code(code.code)
    except CodeReplayError:
        step("7. replay the code", "refused: CodeReplayError (a code is used once); its grant is revoked")
    except AuthCodeNotFound as error:
        raise DemoFailed(f"step 7: a replayed code was refused as {type(error).__name__}, not as a replay") from None
    else:
        raise DemoFailed("step 7: a consumed code was accepted a second time")

    assert renewed.refresh_token is not None
    for lookup, secret in ((tokens.fetch_by_token, renewed.token), (tokens.fetch_by_refresh_token, renewed.refresh_token)):
        try:
            lookup(secret)
        except AccessTokenNotFound:
            continue
        raise DemoFailed("step 8: a token of the revoked grant was still found")
    try:
        tokens.fetch_by_refresh_token(token.refresh_token)
    except RefreshTokenReuseError:
        pass
    else:
        raise DemoFailed("step 8: the retired refresh token was not refused as reuse")
    step("8. the grant's tokens", "the refreshed token is gone: AccessTokenNotFound; the old refresh token: RefreshTokenReuseError")
    out.write("lifecycle complete\n")
