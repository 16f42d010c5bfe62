"""Column types and defaults that behave the same on SQLite and PostgreSQL.

SQLite has no time zones and returns naive datetimes; every timestamp in orgmem is UTC, so
``UTCDateTime`` stores UTC and always hands back an aware datetime. Comparing aware and naive
values raises in Python, which is why one type is used for every timestamp column.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str, nbytes: int = 6) -> str:
    """Readable random ids such as ``ck_3f9a0c12be45`` (12 hex for 6 bytes)."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"


#: The largest integer primary key either backend stores (a signed 64-bit integer).
MAX_ROW_ID = 2**63 - 1


def row_id(text: str) -> int | None:
    """``text`` as an integer row id, or None when it is not one any table can hold: other digits
    than 0-9 ('²'), or more than 64 bits (SQLite raises OverflowError, PostgreSQL a DataError)."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: orgmem stores UTC-aware timestamps only")
        value = value.astimezone(UTC)
        # SQLite stores the text form; dropping tzinfo keeps ordering lexicographic and uniform.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON documents (configs, cursors, metrics). Plain ``JSON`` maps to JSON on PostgreSQL and TEXT
#: on SQLite, so the same migration creates both without dialect variants.
JSONType = JSON
