"""Field encryption at rest (ID numbers): Fernet (AES-128-CBC + HMAC-SHA256) with key rotation.

Configuration
-------------
``FIELD_ENCRYPTION_KEYS``: comma-separated Fernet keys, newest first
(``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``).
The first key encrypts; every key decrypts. Without it (development, tests) a key is
derived from ``SECRET_KEY`` — set it in production, and keep it out of backups of the
database.

``FIELD_INDEX_KEY``: key of the blind index (HMAC-SHA256) used to find or de-duplicate an
encrypted value without decrypting every row (default: derived from ``SECRET_KEY``). It is
not rotated by the procedure below (rotating it means recomputing every index column).

Use in a model::

    from memberplatform.security.crypto import EncryptedString, blind_index

    id_number: so.Mapped[str | None] = so.mapped_column(EncryptedString(length=18))
    id_number_index: so.Mapped[str | None] = so.mapped_column(sa.String(64), index=True)
    ...
    registration.id_number = value            # stored as a Fernet token
    registration.id_number_index = blind_index(value)

Rotation
--------
1. Generate a new key; deploy ``FIELD_ENCRYPTION_KEYS=new,old`` (new first) to every worker.
2. Run ``flask --app memberplatform rotate-field-keys``: every ``EncryptedString`` column of
   every table is re-encrypted with the new key, in batches, each batch one transaction.
3. When it reports 0 rows left on the old key, deploy ``FIELD_ENCRYPTION_KEYS=new``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def _derived(purpose: str) -> bytes:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()


def _keys() -> list[bytes]:
    configured = current_app.config.get("FIELD_ENCRYPTION_KEYS") or ""
    keys = [key.strip().encode() for key in str(configured).split(",") if key.strip()]
    if not keys:
        keys = [base64.urlsafe_b64encode(_derived("field-encryption"))]
    return keys


def fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys()])


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ValueError("an encrypted field cannot be read with the configured keys") from error


def encrypted_with_current_key(token: str) -> bool:
    try:
        Fernet(_keys()[0]).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def blind_index(value: str | None) -> str | None:
    """A keyed hash of the normalised value, for lookups and unique constraints."""
    if value is None:
        return None
    configured = current_app.config.get("FIELD_INDEX_KEY")
    key = str(configured).encode() if configured else _derived("field-index")
    normalised = "".join(value.split()).upper()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


class EncryptedString(sa.types.TypeDecorator[str]):
    """A string stored as a Fernet token (length: of the plaintext, for validation only)."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, length: int | None = None, **kwargs: Any) -> None:
        self.plain_length = length
        super().__init__(**kwargs)

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if self.plain_length is not None and len(value) > self.plain_length:
            raise ValueError("value longer than the column allows")
        return encrypt(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else decrypt(value)


def encrypted_columns() -> list[sa.Column]:
    from memberplatform.db import Base

    return [
        column
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedString)
    ]


def rotate(session, batch: int = 500) -> dict[str, int]:
    """Re-encrypt every encrypted column with the newest key; returns rows rewritten per column.

    Reads the raw tokens (not through the type), so rows already on the newest key are
    skipped; each batch is committed by the caller's loop (see the CLI command).
    """
    rewritten: dict[str, int] = {}
    multi = fernet()
    for column in encrypted_columns():
        table = column.table
        pk = next(iter(table.primary_key.columns))
        raw = sa.cast(column, sa.Text)
        count = 0
        last = None
        while True:
            query = sa.select(pk, sa.type_coerce(raw, sa.Text)).where(column.isnot(None))
            if last is not None:
                query = query.where(pk > last)
            rows = session.execute(query.order_by(pk).limit(batch)).all()
            if not rows:
                break
            for key, token in rows:
                if not encrypted_with_current_key(token):
                    session.execute(
                        sa.update(table)
                        .where(pk == key)
                        .values(
                            {
                                column.name: sa.type_coerce(
                                    multi.rotate(token.encode()).decode(), sa.Text
                                )
                            }
                        )
                    )
                    count += 1
            last = rows[-1][0]
            session.commit()
        rewritten[f"{table.name}.{column.name}"] = count
    return rewritten
