"""Row conversions shared by the SQL store's modules: JSON text, UTC datetimes, outbox rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.store.inline import InlineConnection
from bot.store.protocol import OutboxMessage

__all__ = ["Conn", "dumps", "is_unavailable", "loads", "outbox_message", "require_utc", "utc"]

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


#: PostgreSQL SQLSTATE classes of a server that cannot serve now: connection exception (08),
#: insufficient resources (53: too many connections, out of memory or disk), operator
#: intervention (57: shutting down, a statement or lock timeout cancelled).
_UNAVAILABLE_CLASSES = frozenset({"08", "53", "57"})
#: And single states: a database not accepting connections (55000, as while it is being
#: dropped or with ALLOW_CONNECTIONS false), a lock not available (55P03).
_UNAVAILABLE_STATES = frozenset({"55000", "55P03"})
#: SQLite's primary result codes of the same kind: BUSY, LOCKED, IOERR, FULL, CANTOPEN.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 10, 13, 14})


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be used right now (not that a statement was
    wrong): no connection free in the pool within its timeout, the server unreachable or refusing
    connections, a connection lost, a lock or statement timeout, a locked or full SQLite file.
    Such an error is the moment's, not the request's: a caller answers "busy, try again" and
    logs one line, no stack trace."""
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection in time
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated or isinstance(error, sa_exc.InterfaceError):
            return True
        sqlite_code = getattr(error.orig, "sqlite_errorcode", None)
        if isinstance(sqlite_code, int):
            return sqlite_code & 0xFF in _SQLITE_UNAVAILABLE
        sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
        return sqlstate[:2] in _UNAVAILABLE_CLASSES or sqlstate in _UNAVAILABLE_STATES
    # Raised while connecting, before SQLAlchemy wraps anything (refused, reset, DNS, timeout):
    # asyncpg lets the socket's own error through. Only one raised on the store's way counts; a
    # network error from anywhere else (Graph, the connector) is not the database's.
    return isinstance(error, OSError) and _raised_by_the_store(error)


#: Modules whose frames make an OSError the store's (see is_unavailable).
_STORE_MODULES = ("bot.store", "sqlalchemy", "asyncpg", "aiosqlite", "sqlite3")


def _raised_by_the_store(error: BaseException) -> bool:
    """Whether the store's code, or its database drivers', is on ``error``'s traceback."""
    frame = error.__traceback__
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(_STORE_MODULES):
            return True
        frame = frame.tb_next
    return False
