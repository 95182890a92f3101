"""Versioned byte formats for records: what a store writes to a shared cache, and reads back.

Every payload starts with a header naming its record kind and format version, then a compact JSON
array of the fields in a fixed order::

    token:2:["client-id","authorization_code","<token>",1700000000,"<refresh>",null,"user-1",["read"],{},1699996400,"Bearer"]

Decoding dispatches on the header. A codec keeps the decoders of every format it ever wrote, so
records written by an older release stay readable after the format moves on; version 0 is the JSON
object python-oauth2's redis store wrote (``json.dumps(record.__dict__)``), which has no header.

Payloads come from a cache others can write to, so decoding trusts nothing: it never unpickles or
evaluates, it checks every field, and any defect raises :class:`~oauth2_store.error.CodecError`
saying what was wrong (never what the payload held). No other exception escapes ``decode``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Generic, NoReturn, TypeVar

from oauth2_store._fields import GRANT_ID, SCOPE_TOKEN, TIMESTAMP_BOUND
from oauth2_store.error import CodecError, RecordError
from oauth2_store.json_data import FrozenJSON, freeze_parsed
from oauth2_store.models import AccessToken, AuthorizationCode, Client, CodeChallengeMethod, TokenEndpointAuthMethod

__all__ = ["ACCESS_TOKEN_CODEC", "AUTH_CODE_CODEC", "CLIENT_CODEC", "RecordCodec"]

R = TypeVar("R")

Loader = Callable[[object], R]
"""Turns the parsed JSON of one format version into a record; raises CodecError or RecordError."""

_HEADER = re.compile(rb"([a-z]{1,16}):(0|[1-9][0-9]{0,8}):")
_CACHED_PAYLOAD_SIZE = 2048
_LEGACY_VERSION = 0


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed in a record")


def _frozen_json_object(value: object) -> Mapping[str, object]:
    if isinstance(value, FrozenJSON):
        return value.json_object()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_encoder() -> Callable[[object], str]:
    """Compact UTF-8 JSON, with json's C encoder made once: ``JSONEncoder.encode`` makes a new one
    on every call, which costs more than encoding a record."""
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # a Python without json's C accelerator
        return json.JSONEncoder(
            ensure_ascii=False, allow_nan=False, check_circular=False, separators=(",", ":"), default=_frozen_json_object
        ).encode
    # markers, default, encoder, indent, key separator, item separator, sort_keys, skipkeys, allow_nan
    iterencode = make_encoder(None, _frozen_json_object, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def encode(value: object) -> str:
        return "".join(iterencode(value, 0))

    return encode


_ENCODE_JSON = _json_encoder()
# The decoder's parser, which JSONDecoder.decode wraps; typeshed does not declare the attribute.
_SCAN_JSON: Callable[[str, int], tuple[object, int]] = getattr(json.JSONDecoder(parse_constant=_refuse_constant), "scan_once")


class RecordCodec(Generic[R]):
    """Encodes one record kind to bytes and decodes it back, across format versions.

    Args:
        kind: The record kind written in every header (``"token"``, ``"code"``, ``"client"``).
        record_type: The record class, for messages.
        version: The format version :meth:`encode` writes.
        dump: Turns a record into the JSON array of format ``version``.
        loaders: The decoder of every readable format version, ``version`` included. Version 0
            means a header-less JSON object (python-oauth2's format).
    """

    def __init__(
        self,
        kind: str,
        record_type: type[R],
        version: int,
        dump: Callable[[R], list[object]],
        loaders: Mapping[int, Loader[R]],
        cache_size: int = 1024,
    ) -> None:
        if version not in loaders:
            raise ValueError(f"no loader for the version {version} that {kind} records are written in")
        self.kind = kind
        self.record_type = record_type
        self.version = version
        self._dump = dump
        self._loaders = dict(loaders)
        self._header = f"{kind}:{version}:".encode("ascii")
        # Records are immutable and a payload fully determines its record, so the records of
        # recently decoded payloads are kept: a resource server reads the same token on every
        # request. Only small payloads, so the cache stays within a few MB.
        self._decode_recent = functools.lru_cache(maxsize=cache_size)(self._decode)

    def encode(self, record: R) -> bytes:
        """Return the payload of ``record`` in the current format version."""
        return self._header + _ENCODE_JSON(self._dump(record)).encode("utf-8")

    def decode(self, payload: bytes) -> R:
        """Return the record ``payload`` holds, whatever readable format version wrote it.

        Raises:
            CodecError: the payload is corrupt or truncated, holds another record kind or an
                unknown version, is not valid JSON, or has a missing or invalid field.
        """
        if type(payload) is bytes and len(payload) <= _CACHED_PAYLOAD_SIZE:
            return self._decode_recent(payload)
        return self._decode(payload)

    def _decode(self, payload: bytes) -> R:
        if payload.startswith(self._header):  # the version this codec writes: checked first
            version, body = self.version, payload[len(self._header) :]
        elif payload[:1] == b"{":
            version, body = _LEGACY_VERSION, payload
        else:
            header = _HEADER.match(payload)
            if header is None:
                raise CodecError(f"not a {self.kind} record: the payload has no valid header")
            if header[1].decode("ascii") != self.kind:
                raise CodecError(f"not a {self.kind} record: the payload holds a {header[1].decode('ascii')!r} record")
            version, body = int(header[2]), payload[header.end() :]
        loader = self._loaders.get(version)
        if loader is None:
            raise CodecError(f"cannot read {self.kind} record: unknown format version {version}")
        try:
            parsed = _parse_json(body.decode("utf-8"))
        except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise CodecError(f"cannot read {self.kind} record (version {version}): invalid JSON ({type(error).__name__})") from None
        try:
            return loader(parsed)
        except (RecordError, CodecError) as error:
            raise CodecError(f"invalid {self.kind} record (version {version}): {error}") from None


def _parse_json(text: str) -> object:
    """``json.loads`` without its Python wrapper, which costs as much as the C parser: ``text``
    must be exactly one JSON value, without surrounding whitespace (the codec writes none).

    Raises:
        ValueError: ``text`` is not one JSON value, or holds a ``NaN`` or ``Infinity`` literal
            (a number too large for a float, such as ``1e999``, parses to infinity: the records
            refuse it).
    """
    try:
        value, end = _SCAN_JSON(text, 0)
    except StopIteration:
        raise ValueError("no JSON value at the start") from None
    if end != len(text):
        raise ValueError("extra data after the JSON value")
    parsed: object = value
    return parsed


# Type narrowing for parsed JSON. The records validate values; these only check JSON types, so
# that a record is never built from a value of the wrong type.


def _fields(parsed: object, count: int) -> list[object]:
    if not isinstance(parsed, list):
        raise CodecError(f"expected a JSON array, got {_json_type(parsed)}")
    if len(parsed) != count:
        raise CodecError(f"expected {count} fields, got {len(parsed)}")
    return parsed


def _object(parsed: object) -> dict[str, object]:
    if not isinstance(parsed, dict):
        raise CodecError(f"expected a JSON object, got {_json_type(parsed)}")
    return parsed


def _str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise CodecError(f"{field} must be a string, got {_json_type(value)}")
    return value


def _opt_str(value: object, field: str) -> str | None:
    return None if value is None else _str(value, field)


def _int(value: object, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise CodecError(f"{field} must be an integer, got {_json_type(value)}")
    return value


def _opt_int(value: object, field: str) -> int | None:
    return None if value is None else _int(value, field)


def _str_list(value: object, field: str) -> list[str]:
    if not isinstance(value, list):
        raise CodecError(f"{field} must be an array, got {_json_type(value)}")
    for item in value:
        _str(item, f"an item of {field}")
    return value


def _opt_str_list(value: object, field: str) -> list[str] | None:
    return None if value is None else _str_list(value, field)


def _data(value: object, field: str = "data") -> dict[str, object] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CodecError(f"{field} must be an object, got {_json_type(value)}")
    return value


def _challenge_method(value: object) -> CodeChallengeMethod | None:
    if value is None or value == "plain" or value == "S256":
        return value
    raise CodecError('code_challenge_method must be "plain", "S256" or null')


def _auth_method(value: object) -> TokenEndpointAuthMethod:
    if value == "client_secret_basic" or value == "client_secret_post" or value == "none":
        return value
    raise CodecError('token_endpoint_auth_method must be "client_secret_basic", "client_secret_post" or "none"')


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _legacy_user_id(value: object) -> str | None:
    """python-oauth2 let user ids be anything; integers (database ids) are read as their decimal str."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _opt_str(value, "user_id")


def _require(obj: dict[str, object], *names: str) -> None:
    missing = [name for name in names if name not in obj]
    if missing:
        raise CodecError(f"missing field {missing[0]!r}")


# Access tokens. Version 2 appends issued_at and token_type to version 1's fields, version 3 the
# grant_id.


def _dump_token_v3(token: AccessToken) -> list[object]:
    return [
        token.client_id,
        token.grant_type,
        token.token,
        token.expires_at,
        token.refresh_token,
        token.refresh_expires_at,
        token.user_id,
        token.scopes,
        token.data,
        token.issued_at,
        token.token_type,
        token.grant_id,
    ]


def _load_token_v3(parsed: object) -> AccessToken:
    record = _plain_token_v3(parsed)
    return _checked_token_v3(parsed) if record is None else record


def _checked_token_v3(parsed: object) -> AccessToken:
    """Version 3, every field checked by the codec and then by the token's constructor."""
    fields = _fields(parsed, 12)
    return _load_token_v2(fields[:11], _str(fields[11], "grant_id"))


def _plain_token_v3(parsed: object) -> AccessToken | None:
    """The token of a version 3 array whose every field has the form the token's constructor
    would keep as it is (non-empty ASCII strings, timestamps in range, valid scopes and grant id,
    data an object), built without running that constructor; None for anything else, which
    :func:`_checked_token_v3` then reads or refuses. Nearly every token read is one of these:
    one pass of checks in one function, instead of the codec's and then the constructor's (on a
    cold read, right after the round trip, the cost is mostly code not in the CPU's caches)."""
    if type(parsed) is not list or len(parsed) != 12:
        return None
    client_id, grant_type, token, expires_at, refresh, refresh_expires_at, user_id, scopes, data, issued_at, token_type, grant_id = parsed
    if not (
        type(client_id) is str
        and client_id
        and client_id.isascii()
        and type(grant_type) is str
        and grant_type
        and grant_type.isascii()
        and type(token) is str
        and token
        and token.isascii()
        and (refresh is None or (type(refresh) is str and refresh and refresh.isascii()))
        and (user_id is None or (type(user_id) is str and user_id and user_id.isascii()))
        and type(token_type) is str
        and token_type
        and token_type.isascii()
        and type(grant_id) is str
        and GRANT_ID.fullmatch(grant_id) is not None
        and (expires_at is None or (type(expires_at) is int and 0 <= expires_at < TIMESTAMP_BOUND))
        and (refresh_expires_at is None or (refresh is not None and type(refresh_expires_at) is int and 0 <= refresh_expires_at < TIMESTAMP_BOUND))
        and (issued_at is None or (type(issued_at) is int and 0 <= issued_at < TIMESTAMP_BOUND))
        and type(scopes) is list
        and type(data) is dict
    ):
        return None
    for scope in scopes:
        if type(scope) is not str or SCOPE_TOKEN.fullmatch(scope) is None:
            return None
    record = object.__new__(AccessToken)
    # The order of AccessToken's attributes; freeze_parsed checks data as the constructor does.
    record.__attrs_init__(
        client_id, grant_type, token, freeze_parsed(data), expires_at, refresh, tuple(scopes), refresh_expires_at, user_id, issued_at, token_type, grant_id
    )
    return record


def _load_token_v2(parsed: object, grant_id: str | None = None) -> AccessToken:
    """Version 2: version 3's fields without the grant id (derived from the refresh token or token)."""
    client_id, grant_type, token, expires_at, refresh, refresh_expires_at, user_id, scopes, data, issued_at, token_type = _fields(parsed, 11)
    return AccessToken(
        _str(client_id, "client_id"),
        _str(grant_type, "grant_type"),
        _str(token, "token"),
        _data(data),
        _opt_int(expires_at, "expires_at"),
        _opt_str(refresh, "refresh_token"),
        _str_list(scopes, "scopes"),
        refresh_expires_at=_opt_int(refresh_expires_at, "refresh_expires_at"),
        user_id=_opt_str(user_id, "user_id"),
        issued_at=_opt_int(issued_at, "issued_at"),
        token_type=_str(token_type, "token_type"),
        grant_id=grant_id,
    )


def _load_token_v1(parsed: object) -> AccessToken:
    """Version 1: version 2's fields without the issue time (unknown) and token type (Bearer)."""
    return _load_token_v2([*_fields(parsed, 9), None, "Bearer"])


def _load_token_legacy(parsed: object) -> AccessToken:
    obj = _object(parsed)
    _require(obj, "client_id", "grant_type", "token")
    return AccessToken(
        _str(obj["client_id"], "client_id"),
        _str(obj["grant_type"], "grant_type"),
        _str(obj["token"], "token"),
        _data(obj.get("data")),
        _opt_int(obj.get("expires_at"), "expires_at"),
        _opt_str(obj.get("refresh_token"), "refresh_token"),
        _str_list(obj.get("scopes", []), "scopes"),
        refresh_expires_at=_opt_int(obj.get("refresh_expires_at"), "refresh_expires_at"),
        user_id=_legacy_user_id(obj.get("user_id")),
    )


# Authorization codes. Version 2 appends the grant_id to version 1's fields.


def _dump_code_v2(code: AuthorizationCode) -> list[object]:
    return [
        code.client_id,
        code.code,
        code.expires_at,
        code.redirect_uri,
        code.scopes,
        code.data,
        code.user_id,
        code.code_challenge,
        code.code_challenge_method,
        code.grant_id,
    ]


def _load_code_v2(parsed: object) -> AuthorizationCode:
    fields = _fields(parsed, 10)
    return _load_code_v1(fields[:9], _str(fields[9], "grant_id"))


def _load_code_v1(parsed: object, grant_id: str | None = None) -> AuthorizationCode:
    """Version 1: version 2's fields without the grant id (derived from the code)."""
    client_id, code, expires_at, redirect_uri, scopes, data, user_id, challenge, method = _fields(parsed, 9)
    return AuthorizationCode(
        _str(client_id, "client_id"),
        _str(code, "code"),
        _int(expires_at, "expires_at"),
        _opt_str(redirect_uri, "redirect_uri"),
        _str_list(scopes, "scopes"),
        _data(data),
        user_id=_opt_str(user_id, "user_id"),
        code_challenge=_opt_str(challenge, "code_challenge"),
        code_challenge_method=_challenge_method(method),
        grant_id=grant_id,
    )


def _load_code_legacy(parsed: object) -> AuthorizationCode:
    obj = _object(parsed)
    _require(obj, "client_id", "code", "expires_at")
    return AuthorizationCode(
        _str(obj["client_id"], "client_id"),
        _str(obj["code"], "code"),
        _int(obj["expires_at"], "expires_at"),
        _opt_str(obj.get("redirect_uri"), "redirect_uri"),
        _str_list(obj.get("scopes", []), "scopes"),
        _data(obj.get("data")),
        user_id=_legacy_user_id(obj.get("user_id")),
    )


# Clients. Version 2 appends the allowed scopes and the token endpoint's authentication method,
# version 3 the secret hash (then the secret is "").


def _dump_client_v3(client: Client) -> list[object]:
    return [
        client.identifier,
        client.secret,
        client.redirect_uris,
        client.authorized_grants,
        client.authorized_response_types,
        client.scopes,
        client.token_endpoint_auth_method,
        client.secret_hash,
    ]


def _load_client_v3(parsed: object) -> Client:
    fields = _fields(parsed, 8)
    return _load_client_v2(fields[:7], _opt_str(fields[7], "secret_hash"))


def _load_client_v2(parsed: object, secret_hash: str | None = None) -> Client:
    """Version 2: version 3's fields without the secret hash (the secret is plaintext, or "")."""
    identifier, secret, redirect_uris, grants, response_types, scopes, auth_method = _fields(parsed, 7)
    return Client(
        _str(identifier, "identifier"),
        _str(secret, "secret"),
        _str_list(redirect_uris, "redirect_uris"),
        authorized_grants=_opt_str_list(grants, "authorized_grants"),
        authorized_response_types=_opt_str_list(response_types, "authorized_response_types"),
        scopes=_opt_str_list(scopes, "scopes"),
        token_endpoint_auth_method=_auth_method(auth_method),
        secret_hash=secret_hash,
    )


def _load_client_v1(parsed: object) -> Client:
    """Version 1: version 2's fields without the scopes (any) and authentication method (the default)."""
    fields = _fields(parsed, 5)
    return _load_client_v2([*fields, None, "none" if fields[1] == "" else "client_secret_basic"])


def _load_client_legacy(parsed: object) -> Client:
    obj = _object(parsed)
    _require(obj, "identifier", "secret")
    return Client(
        _str(obj["identifier"], "identifier"),
        _str(obj["secret"], "secret"),
        _str_list([] if obj.get("redirect_uris") is None else obj["redirect_uris"], "redirect_uris"),
        authorized_grants=_opt_str_list(obj.get("authorized_grants"), "authorized_grants"),
        authorized_response_types=_opt_str_list(obj.get("authorized_response_types"), "authorized_response_types"),
    )


ACCESS_TOKEN_CODEC: RecordCodec[AccessToken] = RecordCodec(
    "token",
    AccessToken,
    3,
    _dump_token_v3,
    {_LEGACY_VERSION: _load_token_legacy, 1: _load_token_v1, 2: _load_token_v2, 3: _load_token_v3},
)
"""Codec for :class:`~oauth2_store.AccessToken` (kind ``token``; writes version 3, reads 0 to 3).
Tokens read from versions 0 and 1 have no ``issued_at`` (None) and the ``Bearer`` token type;
from versions 0 to 2, the grant id derived from the refresh token (or token)."""

AUTH_CODE_CODEC: RecordCodec[AuthorizationCode] = RecordCodec(
    "code", AuthorizationCode, 2, _dump_code_v2, {_LEGACY_VERSION: _load_code_legacy, 1: _load_code_v1, 2: _load_code_v2}
)
"""Codec for :class:`~oauth2_store.AuthorizationCode` (kind ``code``; writes version 2, reads 0 to 2;
codes read from versions 0 and 1 get the grant id derived from the code)."""

CLIENT_CODEC: RecordCodec[Client] = RecordCodec(
    "client",
    Client,
    3,
    _dump_client_v3,
    {_LEGACY_VERSION: _load_client_legacy, 1: _load_client_v1, 2: _load_client_v2, 3: _load_client_v3},
)
"""Codec for :class:`~oauth2_store.Client` (kind ``client``; writes version 3, reads 0 to 3).
Version 3 carries the ``secret_hash`` of a client whose secret is hashed; clients read from
versions 0 to 2 have their secret as it was stored (plaintext, or ``""`` for a public client).
Clients read from versions 0 and 1 may be granted any scope and use the default authentication
method (``none`` for a public client, ``client_secret_basic`` otherwise)."""
