"""Row conversions shared by the SQL store's modules: JSON text, UTC datetimes, outbox rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.inline import InlineConnection
from bot.store.protocol import OutboxMessage

__all__ = ["Conn", "dumps", "loads", "outbox_message", "require_utc", "utc"]

#: A connection of the store: aiosqlite/asyncpg through SQLAlchemy, or SQLite on the loop.
Conn = AsyncConnection | InlineConnection


def dumps(value: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(value or {}), separators=(",", ":"), default=str)


def loads(text: str | None) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(text)) if text else {}


def utc(value: datetime | None) -> datetime | None:
    """Datetimes come back naive from SQLite; everything in this store is UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def require_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("datetimes given to the store must be timezone-aware")
    return value


def outbox_message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        id=int(row.id),
        key=row.key,
        kind=row.kind,
        payload=loads(row.payload),
        status=row.status,
        attempts=int(row.attempts),
        not_before=cast(datetime, utc(row.not_before)),
        result=loads(row.result) if row.result else None,
        last_error=row.last_error,
        updated_at=utc(row.updated_at),
    )
