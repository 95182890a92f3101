"""Hypothesis strategies for valid records."""

from __future__ import annotations

from hypothesis import strategies as st

from oauth2_store import AccessToken, AuthorizationCode, Client
from oauth2_store.json_data import JSONValue

# Any Unicode but lone surrogates (which cannot be encoded), including spaces, control characters
# and NUL: tokens and ids are opaque strings.
texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)
optional_texts = st.none() | texts
timestamps = st.integers(min_value=0, max_value=2**63 - 1)
optional_timestamps = st.none() | timestamps
scope_lists = st.lists(st.from_regex(r"[\x21\x23-\x5b\x5d-\x7e]+", fullmatch=True), max_size=4)
pkce_values = st.from_regex(r"[A-Za-z0-9\-._~]{43,128}", fullmatch=True)
uris = st.from_regex(r"[a-z][a-z0-9+.\-]{0,8}:[/a-zA-Z0-9._~%!$&'()*+,;=:@\-]{0,30}", fullmatch=True)

json_scalars: st.SearchStrategy[object] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=10)
)
json_values: st.SearchStrategy[object] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5).filter(str.isprintable), children, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=8).filter(str.isprintable), json_values, max_size=4)


@st.composite
def access_tokens(draw: st.DrawFn) -> AccessToken:
    refresh_token = draw(optional_texts)
    return AccessToken(
        draw(texts),
        draw(texts),
        draw(texts),
        draw(json_objects),
        draw(optional_timestamps),
        refresh_token,
        draw(scope_lists),
        refresh_expires_at=None if refresh_token is None else draw(optional_timestamps),
        user_id=draw(optional_texts),
        issued_at=draw(optional_timestamps),
        token_type=draw(st.just("Bearer") | texts),
    )


@st.composite
def authorization_codes(draw: st.DrawFn) -> AuthorizationCode:
    challenge = draw(st.none() | pkce_values)
    return AuthorizationCode(
        draw(texts),
        draw(texts),
        draw(timestamps),
        draw(st.none() | uris),
        draw(scope_lists),
        draw(st.none() | json_objects),
        user_id=draw(optional_texts),
        code_challenge=challenge,
        code_challenge_method=None if challenge is None else draw(st.sampled_from([None, "plain", "S256"])),
    )


@st.composite
def clients(draw: st.DrawFn) -> Client:
    secret = draw(st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
    return Client(
        draw(texts),
        secret,
        draw(st.lists(uris, max_size=3)),
        authorized_grants=draw(st.none() | st.lists(texts, max_size=3)),
        authorized_response_types=draw(st.none() | st.lists(texts, max_size=3)),
        scopes=draw(st.none() | scope_lists),
        token_endpoint_auth_method=draw(st.just(None) | st.sampled_from(["client_secret_basic", "client_secret_post"] if secret else ["none"])),
    )


def frozen_equivalent(value: object) -> JSONValue:
    """What freezing turns ``value`` into, written independently of the package: lists to tuples."""
    if isinstance(value, dict):
        return {key: frozen_equivalent(item) for key, item in value.items()}  # type: ignore[return-value]  # compared with ==, a dict equals a FrozenJSON
    if isinstance(value, list):
        return tuple(frozen_equivalent(item) for item in value)
    assert value is None or isinstance(value, (bool, int, float, str))
    return value
