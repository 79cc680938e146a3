"""The SQL of the ``people`` table (mailbox language and time zone), mixed into
:class:`~bot.store.SqlStore`; kept out of ``bot/store/sql.py``, which holds the rest of the store.

The outbox reads the people of a whole wave with one statement (:meth:`PeopleMixin.get_people`),
as it reads their conversation references; writes come from discovery and the reminder pass,
never from a send.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bot.store import schema as t
from bot.store.protocol import PersonRecord

if TYPE_CHECKING:
    from bot.store.rows import Conn

__all__ = ["PeopleMixin"]

_CHUNK = 500  # ids per IN (…)
_INLINE_ROWS = 200  # above this, SQLite work leaves the loop (see bot.store.inline)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PeopleMixin:
    """Store methods for what the directory says about people."""

    if TYPE_CHECKING:  # provided by SqlStore

        async def _upsert(
            self, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]
        ) -> None: ...

        def _write(self, *, inline: bool = True) -> AbstractAsyncContextManager[Conn]: ...

        def _read(self, *, inline: bool = True) -> AbstractAsyncContextManager[Conn]: ...

    async def save_people(self, *, people: Sequence[PersonRecord]) -> None:
        rows: dict[str, dict[str, Any]] = {}
        for person in people:
            if person.checked_at.tzinfo is None:
                raise ValueError("datetimes given to the store must be timezone-aware")
            rows[person.user_oid] = {
                "user_oid": person.user_oid,
                "locale": person.locale[:64],
                "time_zone": person.time_zone[:64],
                "checked_at": person.checked_at,
            }
        if not rows:
            return
        ordered = [rows[oid] for oid in sorted(rows)]  # one lock order for concurrent writers
        await self._upsert(t.people, ordered, ["user_oid"])

    async def get_people(self, *, user_oids: Sequence[str]) -> dict[str, PersonRecord]:
        p = t.people
        wanted = sorted(set(user_oids))
        found: dict[str, PersonRecord] = {}
        if not wanted:
            return found
        async with self._read(inline=len(wanted) <= _INLINE_ROWS) as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    sa.select(p.c.user_oid, p.c.locale, p.c.time_zone, p.c.checked_at).where(
                        p.c.user_oid.in_(wanted[start : start + _CHUNK])
                    )
                )
                for row in rows:
                    found[row.user_oid] = PersonRecord(
                        user_oid=row.user_oid,
                        locale=row.locale,
                        time_zone=row.time_zone,
                        checked_at=_utc(row.checked_at),
                    )
        return found
