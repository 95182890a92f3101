"""The tables of the SQL stores, and the version recorded with them.

One table per kind of thing stored, each named ``<prefix>_<kind>``:

- ``grants``: one row per grant (``grant_id``), its client and user, whether it is revoked, and
  until when it must be kept (the latest expiry of anything issued in it; NULL: never). Indexed
  by client, user and expiry, so revoking a user's or a client's grants and purging are index
  scans.
- ``tokens``, ``refresh_tokens``, ``codes``: one row per secret, keyed by its SHA-256 digest
  (never the secret), with the grant it belongs to (indexed: revoking a grant is one statement
  per table) and its expiry (indexed, for purging). ``record`` is the record's codec payload
  sealed under the secret (:mod:`oauth2_store.sealing`): a dump of the database holds digests,
  identifiers and ciphertext, no token, refresh token or code that works. A consumed code or a
  retired refresh token keeps its row, flagged, until it would have expired: the replay marker.
- ``latest``: the latest token saved for a (client, grant type, user), keyed by a digest of the
  three, its record sealed under the servers' reissue key (only a store given one writes here).
- ``clients``: one row per client, its record with the secret hashed (scrypt).
- ``schema``: the schema version, one row.

Times are unix seconds (BIGINT). A store compares them with the current second: a record is
live while ``expires_at`` is NULL or greater than it.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

__all__ = ["SCHEMA_VERSION", "SqlSchema", "checked_table_prefix"]

SCHEMA_VERSION = 1
"""The version of the tables this release writes and reads."""

DIGEST_SIZE = 32

_TABLE_PREFIX = re.compile(r"[a-z][a-z0-9_]{0,39}")


def checked_table_prefix(prefix: object) -> str:
    """Check a table-name prefix: 1 to 40 characters of ``a-z 0-9 _``, starting with a letter.

    Raises:
        TypeError: ``prefix`` is not a str.
        ValueError: ``prefix`` has other characters, or is empty or too long.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"a table prefix must be a str, not {type(prefix).__name__}")
    if _TABLE_PREFIX.fullmatch(prefix) is None:
        raise ValueError("a table prefix is 1 to 40 characters of a-z 0-9 _, starting with a letter")
    return prefix


class SqlSchema:
    """The tables of one store's prefix, as SQLAlchemy Core tables.

    Raises:
        TypeError, ValueError: as :func:`checked_table_prefix`.
    """

    def __init__(self, prefix: str = "oauth2") -> None:
        self.prefix = checked_table_prefix(prefix)
        self.metadata = sa.MetaData()
        name = f"{self.prefix}_"
        self.version = sa.Table(f"{name}schema", self.metadata, sa.Column("version", sa.Integer, nullable=False))
        self.grants = sa.Table(
            f"{name}grants",
            self.metadata,
            sa.Column("grant_id", sa.String(255), primary_key=True),
            sa.Column("client_id", sa.LargeBinary, nullable=False),  # ids as UTF-8 bytes: any id a record allows
            sa.Column("user_id", sa.LargeBinary, nullable=True),
            sa.Column("revoked", sa.Boolean, nullable=False),
            sa.Column("expires_at", sa.BigInteger, nullable=True),
            sa.Index(f"{name}grants_client", "client_id"),
            sa.Index(f"{name}grants_user", "user_id"),
            sa.Index(f"{name}grants_expiry", "expires_at"),
        )
        self.tokens = self._secrets(f"{name}tokens", sa.Column("token_digest", sa.LargeBinary(DIGEST_SIZE), nullable=True))  # its refresh token's

        self.refresh_tokens = self._secrets(
            f"{name}refresh_tokens",
            sa.Column("token_digest", sa.LargeBinary(DIGEST_SIZE), nullable=False),  # the access token issued with it
            sa.Column("retired", sa.Boolean, nullable=False),
        )
        self.codes = self._secrets(f"{name}codes", sa.Column("consumed", sa.Boolean, nullable=False))
        self.latest = self._secrets(f"{name}latest", sa.Column("token_digest", sa.LargeBinary(DIGEST_SIZE), nullable=False))
        sa.Index(f"{name}latest_token", self.latest.c.token_digest)  # rotation and revocation delete by it
        self.clients = sa.Table(
            f"{name}clients",
            self.metadata,
            sa.Column("client_id", sa.LargeBinary, primary_key=True),
            sa.Column("record", sa.LargeBinary, nullable=False),
        )

    def _secrets(self, table_name: str, *extra: sa.Column[object]) -> sa.Table:
        """A table of records found by a secret's digest, with their grant and expiry."""
        return sa.Table(
            table_name,
            self.metadata,
            sa.Column("digest", sa.LargeBinary(DIGEST_SIZE), primary_key=True),
            sa.Column("grant_id", sa.String(255), nullable=False),
            sa.Column("expires_at", sa.BigInteger, nullable=True),
            *extra,
            sa.Column("record", sa.LargeBinary, nullable=False),
            sa.Index(f"{table_name}_grant", "grant_id"),
            sa.Index(f"{table_name}_expiry", "expires_at"),
        )
