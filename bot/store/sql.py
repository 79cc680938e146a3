"""The :class:`~bot.store.protocol.Store` on SQLAlchemy Core: SQLite (aiosqlite) and PostgreSQL (asyncpg).

One class serves both dialects; the few places where they differ (upserts, claiming outbox rows)
branch on ``self._dialect``. SQLite runs in WAL mode and every transaction starts with
``BEGIN IMMEDIATE``, so read-modify-write sequences (claims, leases) are serialised by the database
and a second process on the same file is safe. PostgreSQL claims rows with
``SELECT … FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.clock import Clock, SystemClock
from bot.store import schema as t
from bot.store.inline import InlineConnection, InlineSqlite
from bot.store.protocol import (
    AssignmentChange,
    AuditEvent,
    InstanceRecord,
    ItemRecord,
    Lease,
    OnceWork,
    OutboxCompletion,
    OutboxMessage,
    OutboxStatus,
    SentMessage,
    StoreError,
    WriteClaim,
)
from bot.store.rows import Conn
from bot.store.rows import dumps as _dumps
from bot.store.rows import loads as _loads
from bot.store.rows import outbox_message as _outbox
from bot.store.rows import require_utc as _require_utc
from bot.store.rows import utc as _utc
from bot.store.sql_durable import DurabilityMixin
from bot.store.sql_people import PeopleMixin

__all__ = ["SqlStore", "open_store"]

log = logging.getLogger(__name__)

_CHUNK = 500  # rows per multi-row statement (SQLite allows 32766 bound parameters)
#: Above this many rows, SQLite work leaves the loop for aiosqlite's thread (bot.store.inline).
_INLINE_ROWS = 200


class SqlStore(DurabilityMixin, PeopleMixin):
    """The store on an SQLAlchemy async engine. Create with :func:`open_store`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock,
        reader: AsyncEngine | None = None,
        inline: InlineSqlite | None = None,
    ) -> None:
        self._engine = engine
        # On an SQLite file, small statements run on the loop itself (see bot.store.inline).
        self._inline = inline
        # Reads go through ``reader``: on SQLite a second pool whose transactions start deferred,
        # so readers never queue behind the write lock (WAL lets them read a consistent snapshot).
        self._reader = reader or engine
        self._clock = clock
        # SQLite allows one writer; writers of this process queue here, in asyncio, rather than
        # in SQLite's busy handler, which sleeps in growing steps while it waits for the lock.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._dialect = engine.dialect.name
        self._insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        self._sent_upsert_stmt: Any = None
        # The statements of the click path, built once (see _hot).
        self._hot_stmts: dict[str, Any] = {}
        self.conversation_references_written = 0
        # Bulk upserts by table, built once (see _upsert).
        self._upserts: dict[str, Any] = {}
        # Items as read, by their stored content (see _cached_item).
        self._items_read: dict[tuple[Any, ...], ItemRecord] = {}

    def _hot(self, name: str) -> Any:
        """A statement of the hot path (a click, a card), built once per store.

        Building an SQLAlchemy statement (coercing every clause, then computing its cache key to
        find the compiled form) costs more CPU than SQLite takes to run it; these take their
        values as bound parameters (``expanding`` for lists), so one object serves every call
        and its cache key is computed once.
        """
        stmt = self._hot_stmts.get(name)
        if stmt is None:
            stmt = self._hot_stmts[name] = _HOT_BUILDERS[name](self._insert)
        return stmt

    def _cached_item(self, row: Any) -> ItemRecord:
        """The record of a row of the hot item reads (every column but ``updated_at``), decoded
        once per content: the key is the whole row, so a row whose content changed (in this
        process or any other) is another key, and nothing needs invalidating. Records are
        frozen and their ``data`` is read-only by contract (``Mapping``); callers build new
        records (``dataclasses.replace``) to change one. Bounded: cleared when full."""
        key = tuple(row)
        found = self._items_read.get(key)
        if found is None:
            if len(self._items_read) >= _ITEMS_READ_MAX:
                self._items_read.clear()
            found = self._items_read[key] = _item(row)
        return found

    @contextlib.asynccontextmanager
    async def _write(self, *, inline: bool = True) -> AsyncIterator[Conn]:
        """One write transaction (serialised within the process on SQLite).

        On an SQLite file it runs on the loop unless not ``inline`` (thousands of rows) or
        another process holds the write lock; then through aiosqlite, which waits in its thread.
        """
        if self._write_lock is None:
            async with self._engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            on_loop = None if not inline or self._inline is None else self._inline.try_begin()
            if on_loop is None:
                async with self._engine.begin() as conn:
                    yield conn
                return
            with on_loop:
                try:
                    yield InlineConnection(on_loop)
                except BaseException:
                    on_loop.rollback()
                    raise
                on_loop.commit()
            assert self._inline is not None
            self._inline.committed()

    @contextlib.asynccontextmanager
    async def _read(self, *, inline: bool = True) -> AsyncIterator[Conn]:
        """One read (one snapshot); on an SQLite file on the loop if ``inline``."""
        if self._inline is not None and inline:
            with self._inline.read() as conn:
                yield conn
            return
        async with self._reader.connect() as conn:
            yield conn

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        return self._dialect

    async def migrate(self) -> int:
        """Apply pending migrations; return the schema version. Safe to run from many processes."""
        async with self._write(inline=False) as conn:
            assert isinstance(conn, AsyncConnection)
            if self._dialect == "postgresql":
                # Replicas starting together: one migrates, the others wait for it.
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(4711002)"))
            await conn.run_sync(lambda c: t.metadata.create_all(c, tables=[t.schema_migrations]))
            applied = set((await conn.execute(sa.select(t.schema_migrations.c.version))).scalars())
            if applied and max(applied) > t.LATEST_VERSION:
                raise StoreError(
                    f"the database schema is version {max(applied)}, newer than this program "
                    f"knows ({t.LATEST_VERSION}); upgrade the program"
                )
            for version, name, migration in t.MIGRATIONS:
                if version in applied:
                    continue
                log.info("applying store migration %d: %s", version, name)
                await migration(conn)
                await conn.execute(
                    sa.insert(t.schema_migrations).values(
                        version=version, name=name, applied_at=self._now()
                    )
                )
        return await self.schema_version()

    async def close(self) -> None:
        if self._inline is not None:
            await self._inline.close()
        await self._engine.dispose()
        if self._reader is not self._engine:
            await self._reader.dispose()

    async def ping(self) -> None:
        try:
            async with self._read() as conn:
                await conn.execute(sa.select(1))
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"store unreachable: {type(exc).__name__}") from exc

    async def schema_version(self) -> int:
        try:
            async with self._read() as conn:
                exists = await conn.run_sync(
                    lambda c: sa.inspect(c).has_table(t.schema_migrations.name)
                )
                if not exists:
                    return 0  # reachable, but nothing applied yet
                version = (
                    await conn.execute(sa.select(sa.func.max(t.schema_migrations.c.version)))
                ).scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"store unreachable: {type(exc).__name__}") from exc
        return int(version or 0)

    def _now(self) -> datetime:
        return self._clock.now().astimezone(UTC)

    # -- conversation references ----------------------------------------------------------------
    async def save_conversation_reference(
        self, *, tenant_id: str, user_oid: str, reference: Mapping[str, Any]
    ) -> bool:
        service_url = str(reference.get("serviceUrl") or reference.get("service_url") or "")
        conversation = reference.get("conversation") or {}
        conversation_id = str(conversation.get("id") or "")
        if not service_url or not conversation_id:
            raise ValueError("a conversation reference needs serviceUrl and conversation.id")
        text = _dumps(reference)
        # Most activities bring the reference already stored: check without the write lock (the
        # stored text is what _dumps made of it, so equal references have equal text).
        async with self._read() as conn:
            known = (
                await conn.execute(
                    self._hot("conversation_ref"), {"b_tenant": tenant_id, "b_user": user_oid}
                )
            ).scalar()
        if known == text:
            return False
        async with self._write() as conn:
            current = (
                await conn.execute(
                    sa.select(t.conversation_refs.c.reference).where(
                        t.conversation_refs.c.tenant_id == tenant_id,
                        t.conversation_refs.c.user_oid == user_oid,
                    )
                )
            ).scalar()
            if current == text:
                return False
            values = {
                "service_url": service_url,
                "conversation_id": conversation_id,
                "reference": text,
                "updated_at": self._now(),
            }
            stmt = self._insert(t.conversation_refs).values(
                tenant_id=tenant_id, user_oid=user_oid, **values
            )
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=["tenant_id", "user_oid"], set_=values)
            )
        self.conversation_references_written += 1
        return True

    async def get_conversation_reference(
        self, *, tenant_id: str, user_oid: str
    ) -> dict[str, Any] | None:
        async with self._read() as conn:
            text = (
                await conn.execute(
                    self._hot("conversation_ref"), {"b_tenant": tenant_id, "b_user": user_oid}
                )
            ).scalar()
        return _loads(text) if text else None

    async def get_conversation_references(
        self, *, tenant_id: str, user_oids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        c = t.conversation_refs
        wanted = sorted(set(user_oids))
        found: dict[str, dict[str, Any]] = {}
        async with self._read(inline=len(wanted) <= _INLINE_ROWS) as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    sa.select(c.c.user_oid, c.c.reference).where(
                        c.c.tenant_id == tenant_id, c.c.user_oid.in_(wanted[start : start + _CHUNK])
                    )
                )
                found.update((row.user_oid, _loads(row.reference)) for row in rows)
        return found

    async def get_conversation_reference_times(
        self, *, tenant_id: str, user_oids: Sequence[str]
    ) -> dict[str, datetime]:
        c = t.conversation_refs
        wanted = sorted(set(user_oids))
        found: dict[str, datetime] = {}
        async with self._read(inline=len(wanted) <= _INLINE_ROWS) as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    sa.select(c.c.user_oid, c.c.updated_at).where(
                        c.c.tenant_id == tenant_id, c.c.user_oid.in_(wanted[start : start + _CHUNK])
                    )
                )
                found.update((row.user_oid, cast(datetime, _utc(row.updated_at))) for row in rows)
        return found

    async def delete_conversation_reference(self, *, tenant_id: str, user_oid: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                sa.delete(t.conversation_refs).where(
                    t.conversation_refs.c.tenant_id == tenant_id,
                    t.conversation_refs.c.user_oid == user_oid,
                )
            )
        self.conversation_references_written += 1

    # -- snapshot ---------------------------------------------------------------------------
    async def upsert_instances(self, *, instances: Iterable[InstanceRecord]) -> None:
        now = self._now()
        rows = [
            {
                "instance_id": i.instance_id,
                "definition_id": i.definition_id,
                "stage_id": i.stage_id,
                "display_name": i.display_name,
                "status": i.status,
                "start_at": _require_utc(i.start_at),
                "end_at": _require_utc(i.end_at),
                "data": _dumps(i.data),
                "updated_at": now,
            }
            for i in instances
        ]
        await self._upsert(t.instances, rows, ["instance_id"])

    async def get_instance(self, *, instance_id: str) -> InstanceRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(self._hot("instance"), {"b_instance": instance_id})).first()
        return _instance(row) if row else None

    async def list_instances(self, *, status: str | None = None) -> list[InstanceRecord]:
        query = sa.select(t.instances).order_by(t.instances.c.instance_id)
        if status is not None:
            query = query.where(t.instances.c.status == status)
        async with self._read() as conn:
            return [_instance(row) for row in await conn.execute(query)]

    async def upsert_items(self, *, items: Iterable[ItemRecord]) -> None:
        rows = self._item_rows(items)
        await self._upsert(t.items, rows, ["instance_id", "item_id"])

    async def _upsert_items(self, conn: Conn, items: Iterable[ItemRecord]) -> None:
        rows = self._item_rows(items)
        if rows:
            # The statement built once, run for each row (see _upsert).
            await conn.execute(self._hot("item_upsert"), rows)

    def _item_rows(self, items: Iterable[ItemRecord]) -> list[dict[str, Any]]:
        now = self._now()
        return [
            {
                "instance_id": i.instance_id,
                "item_id": i.item_id,
                "stage_id": i.stage_id,
                "decision": i.decision,
                "recommendation": i.recommendation,
                "reviewed_by": i.reviewed_by,
                "reviewed_at": _require_utc(i.reviewed_at),
                "justification": i.justification,
                "data": _dumps(i.data),
                "updated_at": now,
            }
            for i in items
        ]

    async def get_item(self, *, instance_id: str, item_id: str) -> ItemRecord | None:
        found = await self.list_items(instance_id=instance_id, item_ids=[item_id])
        return found[0] if found else None

    async def list_items(
        self, *, instance_id: str, item_ids: Sequence[str] | None = None
    ) -> list[ItemRecord]:
        query = (
            sa.select(t.items)
            .where(t.items.c.instance_id == instance_id)
            .order_by(t.items.c.item_id)
        )
        result: list[ItemRecord] = []
        async with self._read(
            inline=item_ids is not None and len(item_ids) <= _INLINE_ROWS
        ) as conn:
            if item_ids is None:
                return [_item(row) for row in await conn.execute(query)]
            ids = list(dict.fromkeys(item_ids))
            if len(ids) == 1:
                result.extend(
                    self._cached_item(row)
                    for row in await conn.execute(
                        self._hot("item"), {"b_instance": instance_id, "b_id": ids[0]}
                    )
                )
                ids = []
            elif 0 < len(ids) <= _CHUNK:
                result.extend(
                    self._cached_item(row)
                    for row in await conn.execute(
                        self._hot("items"), {"b_instance": instance_id, "b_ids": ids}
                    )
                )
                ids = []
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                result.extend(
                    _item(row)
                    for row in await conn.execute(query.where(t.items.c.item_id.in_(chunk)))
                )
        return sorted(result, key=lambda item: item.item_id)

    # -- assignments ------------------------------------------------------------------------
    async def replace_assignments(
        self, *, instance_id: str, pairs: Iterable[tuple[str, str]]
    ) -> AssignmentChange:
        wanted = set(pairs)
        now = self._now()
        a = t.assignments
        # The removals can be thousands even when few pairs are wanted: off the loop.
        async with self._write(inline=False) as conn:
            existing = {
                (row.reviewer_oid, row.item_id)
                for row in await conn.execute(
                    sa.select(a.c.reviewer_oid, a.c.item_id).where(a.c.instance_id == instance_id)
                )
            }
            added = wanted - existing
            removed = existing - wanted
            removed_list = sorted(removed)
            for start in range(0, len(removed_list), _CHUNK):
                for reviewer, item in removed_list[start : start + _CHUNK]:
                    await conn.execute(
                        sa.delete(a).where(
                            a.c.instance_id == instance_id,
                            a.c.reviewer_oid == reviewer,
                            a.c.item_id == item,
                        )
                    )
            added_rows = [
                {"instance_id": instance_id, "reviewer_oid": r, "item_id": i, "assigned_at": now}
                for r, i in sorted(added)
            ]
            for start in range(0, len(added_rows), _CHUNK):
                await conn.execute(sa.insert(a), added_rows[start : start + _CHUNK])
        return AssignmentChange(added=frozenset(added), removed=frozenset(removed))

    async def _hot_assignments(
        self, name: str, params: Mapping[str, Any]
    ) -> list[tuple[str, str, str]]:
        """(reviewer, instance, item) rows of the hot assignment read ``name``."""
        async with self._read() as conn:
            return [
                (r.reviewer_oid, r.instance_id, r.item_id)
                for r in await conn.execute(self._hot(name), params)
            ]

    async def list_assignments(
        self,
        *,
        instance_id: str | None = None,
        reviewer_oid: str | None = None,
        item_ids: Sequence[str] | None = None,
        reviewer_oids: Sequence[str] | None = None,
    ) -> list[tuple[str, str, str]]:
        a = t.assignments
        if (
            instance_id is not None
            and reviewer_oid is not None
            and item_ids is None
            and reviewer_oids is None
        ):
            # A reviewer's card: the hot form, built once.
            return await self._hot_assignments(
                "reviewer_assignments", {"b_instance": instance_id, "b_reviewer": reviewer_oid}
            )
        if (
            instance_id is not None
            and reviewer_oid is None
            and item_ids is not None
            and 0 < len(item_ids) <= _INLINE_ROWS
            and reviewer_oids is None
        ):
            # Who reviews the items a click just decided (their cards are edited): built once.
            return await self._hot_assignments(
                "item_assignments", {"b_instance": instance_id, "b_ids": sorted(set(item_ids))}
            )
        query = sa.select(a.c.reviewer_oid, a.c.instance_id, a.c.item_id).order_by(
            a.c.reviewer_oid, a.c.instance_id, a.c.item_id
        )
        if instance_id is not None:
            query = query.where(a.c.instance_id == instance_id)
        if reviewer_oid is not None:
            query = query.where(a.c.reviewer_oid == reviewer_oid)
        wanted = None if item_ids is None else set(item_ids)
        if wanted is not None and len(wanted) <= _CHUNK:
            query = query.where(a.c.item_id.in_(sorted(wanted)))
        reviewers = None if reviewer_oids is None else set(reviewer_oids)
        if reviewers is not None and len(reviewers) <= _CHUNK:
            query = query.where(a.c.reviewer_oid.in_(sorted(reviewers)))
        # One reviewer's rows are few, as are a few items' or a few dozen reviewers'; an
        # instance's or everybody's can be many thousands.
        few = (
            reviewer_oid is not None
            or (wanted is not None and len(wanted) <= _INLINE_ROWS)
            or (reviewers is not None and len(reviewers) <= _INLINE_ROWS // 4)
        )
        async with self._read(inline=few) as conn:
            rows = [(r.reviewer_oid, r.instance_id, r.item_id) for r in await conn.execute(query)]
        # Beyond one statement's worth of parameters, the filters are applied here.
        return [
            row
            for row in rows
            if (wanted is None or row[2] in wanted) and (reviewers is None or row[0] in reviewers)
        ]

    async def list_reviewer_items(
        self, *, instance_id: str, reviewer_oid: str, item_ids: Sequence[str] | None = None
    ) -> list[ItemRecord]:
        wanted = None if item_ids is None else set(item_ids)
        if wanted is not None and not wanted:
            return []
        # One reviewer's items in one review are few; a few named ones fewer.
        params: dict[str, Any] = {"b_instance": instance_id, "b_reviewer": reviewer_oid}
        name = "reviewer_items"
        if wanted is not None and len(wanted) == 1:
            name, params["b_id"] = "reviewer_item", next(iter(wanted))
        elif wanted is not None and len(wanted) <= _CHUNK:
            name, params["b_ids"] = "reviewer_items_named", sorted(wanted)
        async with self._read() as conn:
            rows = await conn.execute(self._hot(name), params)
            return [
                self._cached_item(row) for row in rows if wanted is None or row.item_id in wanted
            ]

    async def is_reviewer(
        self, *, reviewer_oid: str, instance_id: str, item_ids: Sequence[str]
    ) -> bool:
        wanted = set(item_ids)
        if not wanted:
            return False
        found: set[str] = set()
        ids = sorted(wanted)
        async with self._read() as conn:
            for start in range(0, len(ids), _CHUNK):
                found.update(
                    (
                        await conn.execute(
                            self._hot("is_reviewer"),
                            {
                                "b_instance": instance_id,
                                "b_reviewer": reviewer_oid,
                                "b_ids": ids[start : start + _CHUNK],
                            },
                        )
                    ).scalars()
                )
        return found == wanted

    # -- outbox -----------------------------------------------------------------------------
    async def enqueue_outbox(
        self,
        *,
        key: str,
        kind: str,
        payload: Mapping[str, Any],
        not_before: datetime | None = None,
    ) -> bool:
        now = self._now()
        stmt = (
            self._insert(t.outbox)
            .values(
                key=key,
                kind=kind,
                payload=_dumps(payload),
                status="pending",
                attempts=0,
                not_before=_require_utc(not_before) or now,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        async with self._write() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def enqueue_outbox_many(
        self, *, messages: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> int:
        """Add many (key, kind, payload) messages in one transaction; existing keys are left
        alone. Returns how many were added."""
        if not messages:
            return 0
        now = self._now()
        rows = [
            {
                "key": key,
                "kind": kind,
                "payload": _dumps(payload),
                "status": "pending",
                "attempts": 0,
                "not_before": now,
                "created_at": now,
                "updated_at": now,
            }
            for key, kind, payload in messages
        ]
        if len(rows) == 1:
            # A click's card edit: the statement built once, the row as its parameters.
            async with self._write() as conn:
                inserted = await conn.execute(self._hot("outbox_insert"), rows[0])
            return max(int(inserted.rowcount or 0), 0)
        # Many rows: the statement built once, its parameters a list (see _upsert). A driver's
        # row count of an executemany is not dependable (asyncpg gives none), so the keys that
        # went in are returned and counted.
        async with self._write(inline=len(rows) <= _INLINE_ROWS) as conn:
            added = await conn.execute(self._hot("outbox_insert_returning"), rows)
            return len(added.all())

    async def claim_outbox(
        self, *, worker: str, limit: int, lease_s: float, kinds: Sequence[str] | None = None
    ) -> list[OutboxMessage]:
        now = self._now()
        until = now + timedelta(seconds=lease_s)
        o = t.outbox
        due = sa.or_(
            sa.and_(o.c.status == "pending", o.c.not_before <= now),
            sa.and_(o.c.status == "in_flight", o.c.claimed_until < now),
        )
        candidates = sa.select(o.c.id).where(due).order_by(o.c.not_before, o.c.id).limit(limit)
        if kinds is not None:
            candidates = candidates.where(o.c.kind.in_(list(kinds)))
        if self._dialect == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        async with self._write() as conn:
            ids = list((await conn.execute(candidates)).scalars())
            if not ids:
                return []
            # The conditional WHERE repeats `due`, so on SQLite a row claimed in between is skipped.
            await conn.execute(
                sa.update(o)
                .where(o.c.id.in_(ids), due)
                .values(
                    status="in_flight",
                    claimed_by=worker,
                    claimed_until=until,
                    attempts=o.c.attempts + 1,
                    updated_at=now,
                )
            )
            rows = await conn.execute(
                sa.select(o)
                .where(o.c.id.in_(ids), o.c.claimed_by == worker, o.c.claimed_until == until)
                .order_by(o.c.not_before, o.c.id)
            )
            return [_outbox(row) for row in rows]

    async def claim_outbox_key(
        self, *, key: str, worker: str, lease_s: float
    ) -> OutboxMessage | None:
        now = self._now()
        until = now + timedelta(seconds=lease_s)
        o = t.outbox
        due = sa.or_(
            sa.and_(o.c.status == "pending", o.c.not_before <= now),
            sa.and_(o.c.status == "in_flight", o.c.claimed_until < now),
        )
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(o)
                .where(o.c.key == key, due)
                .values(
                    status="in_flight",
                    claimed_by=worker,
                    claimed_until=until,
                    attempts=o.c.attempts + 1,
                    updated_at=now,
                )
            )
            if not result.rowcount:
                return None
            row = (await conn.execute(sa.select(o).where(o.c.key == key))).first()
        return _outbox(row) if row else None

    async def _finish_claim(
        self,
        message_id: int,
        worker: str,
        *,
        claims: WriteClaim | None = None,
        settle: bool = False,
        audit: Sequence[AuditEvent] = (),
        items: Sequence[ItemRecord] = (),
        **values: Any,
    ) -> bool:
        o = t.outbox
        now = self._now()
        audit_rows = [self._audit_row(event) for event in audit]
        async with self._write() as conn:
            if items and claims is not None:
                # Items a later click took over keep what that click wrote (as on completion).
                later = await self._superseded_items(conn, claims)
                items = [i for i in items if i.item_id not in later]
            if claims is not None:
                await self._release_claims(conn, claims, now=now, settle=settle)
            result = await conn.execute(
                sa.update(o)
                .where(o.c.id == message_id, o.c.claimed_by == worker, o.c.status == "in_flight")
                .values(claimed_until=None, updated_at=now, **values)
            )
            finished = bool(result.rowcount)
            # In the same transaction: a crash leaves the outcome with its items and audit lines,
            # or none of them.
            if finished and items:
                await self._upsert_items(conn, items)
            if finished and audit_rows:
                await conn.execute(self._hot("audit_insert"), audit_rows)
        return finished

    async def complete_outbox(
        self,
        *,
        message_id: int,
        worker: str,
        result: Mapping[str, Any] | None = None,
        items: Sequence[ItemRecord] = (),
        audit: Sequence[AuditEvent] = (),
        sent: SentMessage | None = None,
        claims: WriteClaim | None = None,
    ) -> bool:
        completion = OutboxCompletion(
            message_id=message_id, result=result, items=items, audit=audit, sent=sent, claims=claims
        )
        return (await self.complete_outbox_many(worker=worker, completions=[completion]))[0]

    async def complete_outbox_many(
        self, *, worker: str, completions: Sequence[OutboxCompletion]
    ) -> list[bool]:
        if not completions:
            return []
        now = self._now()
        ids = [completion.message_id for completion in completions]
        audit_rows = [self._audit_row(event) for c in completions for event in c.audit]
        sent_rows = [self._sent_row(c.sent) for c in completions if c.sent is not None]
        async with self._write() as conn:
            # The outcomes (items, audit lines, sent messages) are written with the completions,
            # in one transaction: a crash leaves either both or neither.
            for completion in completions:
                items = completion.items
                if items and completion.claims is not None:
                    later = await self._superseded_items(conn, completion.claims)
                    items = [i for i in items if i.item_id not in later]
                if items:
                    await self._upsert_items(conn, items)
            if audit_rows:
                await conn.execute(self._hot("audit_insert"), audit_rows)
            if sent_rows:
                await conn.execute(self._sent_upsert(), sent_rows)
            for completion in completions:
                if completion.claims is not None:
                    await self._release_claims(conn, completion.claims, now=now, settle=True)
            if len(completions) == 1:
                # One completion (a click's write): its result in the same statement.
                only = completions[0]
                finished = {
                    int(row.id)
                    for row in await conn.execute(
                        self._hot("outbox_done_one"),
                        {
                            "b_id": only.message_id,
                            "b_worker": worker,
                            "b_now": now,
                            "b_result": _dumps(only.result),
                        },
                    )
                }
                return [only.message_id in finished]
            finished = {
                int(row.id)
                for row in await conn.execute(
                    self._hot("outbox_done"), {"b_ids": ids, "b_worker": worker, "b_now": now}
                )
            }
            results = [
                {"row_id": c.message_id, "result": _dumps(c.result)}
                for c in completions
                if c.message_id in finished
            ]
            if results:
                await conn.execute(self._hot("outbox_result"), results)
        return [message_id in finished for message_id in ids]

    async def enqueue_and_claim_outbox(
        self,
        *,
        key: str,
        kind: str,
        payload: Mapping[str, Any],
        worker: str,
        lease_s: float,
    ) -> tuple[bool, OutboxMessage | None]:
        """Add a message (unless ``key`` exists) and claim it at once, in one transaction.

        Returns (added, claimed message or None when it is done or claimed by someone else).
        """
        now = self._now()
        o = t.outbox
        async with self._write() as conn:
            added = await conn.execute(
                self._insert(o)
                .values(
                    key=key,
                    kind=kind,
                    payload=_dumps(payload),
                    status="pending",
                    attempts=0,
                    not_before=now,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["key"])
            )
            due = sa.or_(
                sa.and_(o.c.status == "pending", o.c.not_before <= now),
                sa.and_(o.c.status == "in_flight", o.c.claimed_until < now),
            )
            claimed = await conn.execute(
                sa.update(o)
                .where(o.c.key == key, due)
                .values(
                    status="in_flight",
                    claimed_by=worker,
                    claimed_until=now + timedelta(seconds=lease_s),
                    attempts=o.c.attempts + 1,
                    updated_at=now,
                )
            )
            row = None
            if claimed.rowcount:
                row = (await conn.execute(sa.select(o).where(o.c.key == key))).first()
        return bool(added.rowcount), (_outbox(row) if row is not None else None)

    async def retry_outbox(
        self,
        *,
        message_id: int,
        worker: str,
        error: str,
        not_before: datetime,
        claims: WriteClaim | None = None,
    ) -> bool:
        return await self._finish_claim(
            message_id,
            worker,
            claims=claims,
            settle=False,
            status="pending",
            not_before=_require_utc(not_before),
            last_error=error[:2000],
            claimed_by=None,
        )

    async def fail_outbox(
        self,
        *,
        message_id: int,
        worker: str,
        error: str,
        result: Mapping[str, Any] | None = None,
        claims: WriteClaim | None = None,
        audit: Sequence[AuditEvent] = (),
        items: Sequence[ItemRecord] = (),
    ) -> bool:
        values: dict[str, Any] = {"status": "failed", "last_error": error[:2000]}
        if result is not None:
            values["result"] = _dumps(result)
        return await self._finish_claim(
            message_id, worker, claims=claims, settle=True, audit=audit, items=items, **values
        )

    async def get_outbox(self, *, key: str) -> OutboxMessage | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(t.outbox).where(t.outbox.c.key == key))).first()
        return _outbox(row) if row else None

    async def count_outbox(self, *, status: OutboxStatus) -> int:
        # Counts every row in that status (thousands when a fan-out is queued): off the loop.
        async with self._read(inline=False) as conn:
            count = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(t.outbox)
                    .where(t.outbox.c.status == status)
                )
            ).scalar()
        return int(count or 0)

    # -- sent messages ----------------------------------------------------------------------
    async def record_sent_message(self, *, message: SentMessage) -> None:
        async with self._write() as conn:
            await self._record_sent(conn, message)

    async def _record_sent(self, conn: Conn, message: SentMessage) -> None:
        await conn.execute(self._sent_upsert(), [self._sent_row(message)])

    def _sent_upsert(self) -> Any:
        """Insert or replace sent messages (executed with rows of :meth:`_sent_row`); built once,
        as building an upsert's ``excluded`` columns costs more than running it."""
        if self._sent_upsert_stmt is None:
            self._sent_upsert_stmt = self._build_sent_upsert()
        return self._sent_upsert_stmt

    def _build_sent_upsert(self) -> Any:
        stmt = self._insert(t.sent_messages)
        keys = ["reviewer_oid", "instance_id", "kind"]
        return stmt.on_conflict_do_update(
            index_elements=keys,
            set_={
                c.name: stmt.excluded[c.name] for c in t.sent_messages.columns if c.name not in keys
            },
        )

    @staticmethod
    def _sent_row(message: SentMessage) -> dict[str, Any]:
        return {
            "reviewer_oid": message.reviewer_oid,
            "instance_id": message.instance_id,
            "kind": message.kind,
            "conversation_id": message.conversation_id,
            "activity_id": message.activity_id,
            "sent_at": _require_utc(message.sent_at),
            "data": _dumps(message.data),
        }

    async def sent_recipients(self, *, instance_id: str, kind: str) -> set[str]:
        """Everyone who was sent a message of ``kind`` about the instance."""
        m = t.sent_messages
        async with self._read(inline=False) as conn:
            rows = await conn.execute(
                sa.select(m.c.reviewer_oid).where(m.c.instance_id == instance_id, m.c.kind == kind)
            )
            return set(rows.scalars())

    async def sent_recipients_of_items(
        self, *, instance_id: str, item_ids: Sequence[str], kind: str
    ) -> list[str]:
        wanted = sorted(set(item_ids))
        if not wanted:
            return []
        found: set[str] = set()
        async with self._read(inline=len(wanted) <= _INLINE_ROWS) as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    self._hot("item_card_recipients"),
                    {
                        "b_instance": instance_id,
                        "b_ids": wanted[start : start + _CHUNK],
                        "b_kind": kind,
                    },
                )
                found.update(rows.scalars())
        return sorted(found)

    async def get_sent_message(
        self, *, reviewer_oid: str, instance_id: str, kind: str
    ) -> SentMessage | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    self._hot("sent_message"),
                    {"b_reviewer": reviewer_oid, "b_instance": instance_id, "b_kind": kind},
                )
            ).first()
        return _sent(row) if row is not None else None

    async def get_sent_messages(
        self, *, instance_id: str, kind: str, reviewer_oids: Sequence[str]
    ) -> dict[str, SentMessage]:
        s = t.sent_messages
        wanted = sorted(set(reviewer_oids))
        found: dict[str, SentMessage] = {}
        async with self._read(inline=len(wanted) <= _INLINE_ROWS) as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    sa.select(s).where(
                        s.c.instance_id == instance_id,
                        s.c.kind == kind,
                        s.c.reviewer_oid.in_(wanted[start : start + _CHUNK]),
                    )
                )
                found.update((row.reviewer_oid, _sent(row)) for row in rows)
        return found

    # -- reminders and one-time keys --------------------------------------------------------
    async def mark_reminder_sent(
        self, *, reminder_id: str, recipient_oid: str, instance_id: str, kind: str
    ) -> bool:
        stmt = (
            self._insert(t.reminders_sent)
            .values(
                reminder_id=reminder_id,
                recipient_oid=recipient_oid,
                instance_id=instance_id,
                kind=kind,
                sent_at=self._now(),
            )
            .on_conflict_do_nothing(index_elements=["reminder_id"])
        )
        async with self._write() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def remember_once(self, *, key: str, ttl_s: float) -> bool:
        now = self._now()
        k = t.once_keys
        async with self._write() as conn:
            # An expired key may be reused; delete it first so the insert below decides.
            await conn.execute(sa.delete(k).where(k.c.key == key, k.c.expires_at <= now))
            result = await conn.execute(
                self._insert(k)
                .values(key=key, expires_at=now + timedelta(seconds=ttl_s))
                .on_conflict_do_nothing(index_elements=["key"])
            )
        return bool(result.rowcount)

    async def first_assigned_at(self, *, instance_id: str, reviewer_oid: str) -> datetime | None:
        a = t.assignments
        async with self._read() as conn:
            value = (
                await conn.execute(
                    sa.select(sa.func.min(a.c.assigned_at)).where(
                        a.c.instance_id == instance_id, a.c.reviewer_oid == reviewer_oid
                    )
                )
            ).scalar()
        return _utc(value)

    async def set_snooze(self, *, reviewer_oid: str, instance_id: str, until: datetime) -> None:
        values = {"until": _require_utc(until)}
        stmt = self._insert(t.snoozes).values(
            reviewer_oid=reviewer_oid, instance_id=instance_id, **values
        )
        async with self._write() as conn:
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["reviewer_oid", "instance_id"], set_=values
                )
            )

    async def get_snooze(self, *, reviewer_oid: str, instance_id: str) -> datetime | None:
        z = t.snoozes
        async with self._read() as conn:
            value = (
                await conn.execute(
                    sa.select(z.c.until).where(
                        z.c.reviewer_oid == reviewer_oid, z.c.instance_id == instance_id
                    )
                )
            ).scalar()
        return _utc(value)

    async def record_escalation(
        self, *, instance_id: str, reviewer_oid: str, recipient_oid: str
    ) -> bool:
        stmt = (
            self._insert(t.escalations)
            .values(
                instance_id=instance_id,
                reviewer_oid=reviewer_oid,
                recipient_oid=recipient_oid,
                sent_at=self._now(),
            )
            .on_conflict_do_nothing(index_elements=["instance_id", "reviewer_oid", "recipient_oid"])
        )
        async with self._write() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def escalation_recipients(self, *, instance_id: str, reviewer_oid: str) -> list[str]:
        e = t.escalations
        async with self._read() as conn:
            return list(
                (
                    await conn.execute(
                        sa.select(e.c.recipient_oid)
                        .where(e.c.instance_id == instance_id, e.c.reviewer_oid == reviewer_oid)
                        .order_by(e.c.recipient_oid)
                    )
                ).scalars()
            )

    # -- audit ------------------------------------------------------------------------------
    def _audit_insert(self, event: AuditEvent) -> Any:
        return sa.insert(t.audit).values(**self._audit_row(event))

    def _audit_row(self, event: AuditEvent) -> dict[str, Any]:
        return {
            "at": _require_utc(event.at) or self._now(),
            "actor": event.actor,
            "action": event.action,
            "instance_id": event.instance_id,
            "item_id": event.item_id,
            "result": event.result,
            "request_id": event.request_id,
            "detail": _dumps(event.detail),
        }

    async def append_audit(self, *, event: AuditEvent) -> int:
        async with self._write() as conn:
            result = await conn.execute(self._audit_insert(event).returning(t.audit.c.id))
            return int(result.scalar_one())

    async def append_audits(self, *, events: Sequence[AuditEvent]) -> None:
        """Many audit lines in one transaction."""
        if not events:
            return
        async with self._write(inline=len(events) <= _INLINE_ROWS) as conn:
            await conn.execute(self._hot("audit_insert"), [self._audit_row(e) for e in events])

    async def list_audit(
        self,
        *,
        instance_id: str | None = None,
        limit: int = 1000,
        after_id: int = 0,
        actions: Sequence[str] | None = None,
        newest_first: bool = False,
    ) -> list[AuditEvent]:
        a = t.audit
        order = a.c.id.desc() if newest_first else a.c.id
        query = sa.select(a).where(a.c.id > after_id).order_by(order).limit(limit)
        if instance_id is not None:
            query = query.where(a.c.instance_id == instance_id)
        if actions is not None:
            query = query.where(a.c.action.in_(list(actions)))
        async with self._read(inline=limit <= _INLINE_ROWS) as conn:
            return [
                AuditEvent(
                    id=row.id,
                    at=_utc(row.at),
                    actor=row.actor,
                    action=row.action,
                    instance_id=row.instance_id,
                    item_id=row.item_id,
                    result=row.result,
                    request_id=row.request_id,
                    detail=_loads(row.detail),
                )
                for row in await conn.execute(query)
            ]

    # -- leases -----------------------------------------------------------------------------
    async def acquire_lease(self, *, name: str, holder: str, ttl_s: float) -> Lease | None:
        now = self._now()
        expires = now + timedelta(seconds=ttl_s)
        lease_table = t.leases
        async with self._write() as conn:
            query = sa.select(lease_table).where(lease_table.c.name == name)
            if self._dialect == "postgresql":
                query = query.with_for_update()
            row = (await conn.execute(query)).first()
            if row is None:
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            sa.insert(lease_table).values(
                                name=name, holder=holder, expires_at=expires, fence=1
                            )
                        )
                except IntegrityError:
                    return None  # another process created it in between
                return Lease(name=name, holder=holder, expires_at=expires, fence=1)
            current_expiry = cast(datetime, _utc(row.expires_at))
            if row.holder != holder and current_expiry > now:
                return None
            fence = (
                int(row.fence)
                if row.holder == holder and current_expiry > now
                else int(row.fence) + 1
            )
            await conn.execute(
                sa.update(lease_table)
                .where(lease_table.c.name == name, lease_table.c.fence == row.fence)
                .values(holder=holder, expires_at=expires, fence=fence)
            )
        return Lease(name=name, holder=holder, expires_at=expires, fence=fence)

    async def release_lease(self, *, name: str, holder: str) -> None:
        lease_table = t.leases
        async with self._write() as conn:
            # Expire rather than delete, so the fence keeps growing across holders.
            await conn.execute(
                sa.update(lease_table)
                .where(lease_table.c.name == name, lease_table.c.holder == holder)
                .values(expires_at=self._now())
            )

    async def check_lease(self, *, name: str, holder: str, fence: int) -> bool:
        lease_table = t.leases
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(lease_table.c.expires_at).where(
                        lease_table.c.name == name,
                        lease_table.c.holder == holder,
                        lease_table.c.fence == fence,
                    )
                )
            ).first()
        return row is not None and cast(datetime, _utc(row.expires_at)) > self._now()

    async def get_lease(self, *, name: str) -> Lease | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(t.leases).where(t.leases.c.name == name))).first()
        if row is None:
            return None
        return Lease(
            name=row.name,
            holder=row.holder,
            expires_at=cast(datetime, _utc(row.expires_at)),
            fence=int(row.fence),
        )

    # -- token cache ------------------------------------------------------------------------
    async def get_token_cache(self, *, key: str) -> bytes | None:
        async with self._read() as conn:
            blob = (
                await conn.execute(
                    sa.select(t.token_cache.c.blob).where(t.token_cache.c.key == key)
                )
            ).scalar()
        return bytes(blob) if blob is not None else None

    async def put_token_cache(self, *, key: str, blob: bytes) -> None:
        values = {"blob": blob, "updated_at": self._now()}
        stmt = self._insert(t.token_cache).values(key=key, **values)
        async with self._write() as conn:
            await conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=values))

    # -- work queued once, atomically (remind-now, escalations) ----------------------------------
    async def enqueue_once(
        self,
        *,
        work: Sequence[OnceWork],
        ttl_s: float,
        audit: Callable[[Sequence[OnceWork]], Sequence[AuditEvent]] | None = None,
    ) -> list[OnceWork]:
        now = self._now()
        expires_at = now + timedelta(seconds=ttl_s)
        k, o = t.once_keys, t.outbox
        taken: list[OnceWork] = []
        async with self._write() as conn:
            for item in work:
                # As remember_once: an expired key may be taken again, and the insert decides.
                await conn.execute(
                    sa.delete(k).where(k.c.key == item.once_key, k.c.expires_at <= now)
                )
                took = await conn.execute(
                    self._insert(k)
                    .values(key=item.once_key, expires_at=expires_at)
                    .on_conflict_do_nothing(index_elements=["key"])
                )
                if not took.rowcount:
                    continue
                taken.append(item)
                for message in item.messages:
                    await conn.execute(
                        self._insert(o)
                        .values(
                            key=message.key,
                            kind=message.kind,
                            payload=_dumps(message.payload),
                            status="pending",
                            attempts=0,
                            not_before=_require_utc(message.not_before) or now,
                            created_at=now,
                            updated_at=now,
                        )
                        .on_conflict_do_nothing(index_elements=["key"])
                    )
            for event in audit(taken) if audit is not None else ():
                await conn.execute(self._audit_insert(event))
        return taken

    async def reminder_slot_taken(self, *, reminder_id: str) -> bool:
        r = t.reminders_sent
        async with self._read() as conn:
            found = (
                await conn.execute(sa.select(r.c.reminder_id).where(r.c.reminder_id == reminder_id))
            ).first()
        return found is not None

    async def count_outbox_due(self) -> int:
        o = t.outbox
        due = sa.or_(
            o.c.status == "in_flight",
            sa.and_(o.c.status == "pending", o.c.not_before <= self._now()),
        )
        # A count over the whole queue (thousands of rows during a fan-out): off the loop.
        async with self._read(inline=False) as conn:
            count = (
                await conn.execute(sa.select(sa.func.count()).select_from(o).where(due))
            ).scalar()
        return int(count or 0)

    async def claim_outbox_early(
        self, *, key: str, worker: str, lease_s: float
    ) -> OutboxMessage | None:
        now = self._now()
        o = t.outbox
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(o)
                .where(o.c.key == key, o.c.status == "pending")
                .values(
                    status="in_flight",
                    claimed_by=worker,
                    claimed_until=now + timedelta(seconds=lease_s),
                    attempts=o.c.attempts + 1,
                    updated_at=now,
                )
            )
            if not result.rowcount:
                return None
            row = (await conn.execute(sa.select(o).where(o.c.key == key))).first()
        return _outbox(row) if row else None

    # -- helpers ----------------------------------------------------------------------------
    async def _upsert(self, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
        """Insert ``rows``, or update every other column of those whose ``keys`` exist.

        One statement, built once per table, run with the rows as a list of parameter sets (the
        driver's executemany). A multi-row ``VALUES`` statement would be compiled again for
        every call: SQLAlchemy coerces and renders each row's bound parameters in Python, which
        cost discovery about 13 s of CPU for 100,000 items, more than the database's own work.
        """
        if not rows:
            return
        stmt = self._upserts.get(table.name)
        if stmt is None:
            stmt = self._upserts[table.name] = _build_upsert(self._insert, table, keys)
        async with self._write(inline=len(rows) <= _INLINE_ROWS) as conn:
            await conn.execute(stmt, rows)


def _build_upsert(insert: Any, table: sa.Table, keys: Sequence[str]) -> Any:
    """``INSERT … ON CONFLICT (keys) DO UPDATE`` of every column not in ``keys``."""
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
    )


def _build_item_upsert(insert: Any) -> Any:
    return _build_upsert(insert, t.items, ("instance_id", "item_id"))


#: Decoded item records kept by content (a few hundred bytes each).
_ITEMS_READ_MAX = 20_000
#: What the hot item reads select: ``updated_at`` is not part of a record (and parsing it cost
#: as much as the rest of the row).
_ITEM_COLUMNS = [c for c in t.items.columns if c.name != "updated_at"]


def _build_reviewer_items(*, named: str = "") -> Callable[[Any], Any]:
    """A reviewer's items of a review; ``named``: "one" item (``b_id``) or "many" (``b_ids``)."""

    def build(_insert: Any) -> Any:
        i, a = t.items, t.assignments
        where = [
            a.c.instance_id == sa.bindparam("b_instance"),
            a.c.reviewer_oid == sa.bindparam("b_reviewer"),
        ]
        if named == "one":
            where.append(a.c.item_id == sa.bindparam("b_id"))
        elif named:
            where.append(a.c.item_id.in_(sa.bindparam("b_ids", expanding=True)))
        return (
            sa.select(*_ITEM_COLUMNS)
            .select_from(
                a.join(i, sa.and_(i.c.instance_id == a.c.instance_id, i.c.item_id == a.c.item_id))
            )
            .where(*where)
            .order_by(i.c.item_id)
        )

    return build


def _build_outbox_done(_insert: Any) -> Any:
    o = t.outbox
    return (
        sa.update(o)
        .where(
            o.c.id.in_(sa.bindparam("b_ids", expanding=True)),
            o.c.claimed_by == sa.bindparam("b_worker"),
            o.c.status == "in_flight",
        )
        .values(
            claimed_until=None,
            updated_at=sa.bindparam("b_now"),
            status="done",
            last_error=None,
        )
        .returning(o.c.id)
    )


def _build_outbox_done_one(_insert: Any) -> Any:
    o = t.outbox
    return (
        sa.update(o)
        .where(
            o.c.id == sa.bindparam("b_id"),
            o.c.claimed_by == sa.bindparam("b_worker"),
            o.c.status == "in_flight",
        )
        .values(
            claimed_until=None,
            updated_at=sa.bindparam("b_now"),
            status="done",
            last_error=None,
            result=sa.bindparam("b_result"),
        )
        .returning(o.c.id)
    )


_HOT_BUILDERS: dict[str, Callable[[Any], Any]] = {
    "instance": lambda _insert: sa.select(t.instances).where(
        t.instances.c.instance_id == sa.bindparam("b_instance")
    ),
    "item": lambda _insert: sa.select(*_ITEM_COLUMNS).where(
        t.items.c.instance_id == sa.bindparam("b_instance"),
        t.items.c.item_id == sa.bindparam("b_id"),
    ),
    "items": lambda _insert: (
        sa.select(*_ITEM_COLUMNS)
        .where(
            t.items.c.instance_id == sa.bindparam("b_instance"),
            t.items.c.item_id.in_(sa.bindparam("b_ids", expanding=True)),
        )
        .order_by(t.items.c.item_id)
    ),
    "reviewer_assignments": lambda _insert: (
        sa.select(
            t.assignments.c.reviewer_oid, t.assignments.c.instance_id, t.assignments.c.item_id
        )
        .where(
            t.assignments.c.instance_id == sa.bindparam("b_instance"),
            t.assignments.c.reviewer_oid == sa.bindparam("b_reviewer"),
        )
        .order_by(t.assignments.c.item_id)
    ),
    "item_assignments": lambda _insert: (
        sa.select(
            t.assignments.c.reviewer_oid, t.assignments.c.instance_id, t.assignments.c.item_id
        )
        .where(
            t.assignments.c.instance_id == sa.bindparam("b_instance"),
            t.assignments.c.item_id.in_(sa.bindparam("b_ids", expanding=True)),
        )
        .order_by(t.assignments.c.reviewer_oid, t.assignments.c.item_id)
    ),
    "item_card_recipients": lambda _insert: (
        sa.select(t.assignments.c.reviewer_oid)
        .distinct()
        .join(
            t.sent_messages,
            sa.and_(
                t.sent_messages.c.reviewer_oid == t.assignments.c.reviewer_oid,
                t.sent_messages.c.instance_id == t.assignments.c.instance_id,
                t.sent_messages.c.kind == sa.bindparam("b_kind"),
            ),
        )
        .where(
            t.assignments.c.instance_id == sa.bindparam("b_instance"),
            t.assignments.c.item_id.in_(sa.bindparam("b_ids", expanding=True)),
        )
    ),
    "is_reviewer": lambda _insert: sa.select(t.assignments.c.item_id).where(
        t.assignments.c.instance_id == sa.bindparam("b_instance"),
        t.assignments.c.reviewer_oid == sa.bindparam("b_reviewer"),
        t.assignments.c.item_id.in_(sa.bindparam("b_ids", expanding=True)),
    ),
    "conversation_ref": lambda _insert: sa.select(t.conversation_refs.c.reference).where(
        t.conversation_refs.c.tenant_id == sa.bindparam("b_tenant"),
        t.conversation_refs.c.user_oid == sa.bindparam("b_user"),
    ),
    "sent_message": lambda _insert: sa.select(t.sent_messages).where(
        t.sent_messages.c.reviewer_oid == sa.bindparam("b_reviewer"),
        t.sent_messages.c.instance_id == sa.bindparam("b_instance"),
        t.sent_messages.c.kind == sa.bindparam("b_kind"),
    ),
    "reviewer_items": _build_reviewer_items(),
    "reviewer_item": _build_reviewer_items(named="one"),
    "reviewer_items_named": _build_reviewer_items(named="many"),
    "item_upsert": _build_item_upsert,
    "outbox_insert": lambda _insert: _insert(t.outbox).on_conflict_do_nothing(
        index_elements=["key"]
    ),
    "outbox_insert_returning": lambda _insert: (
        _insert(t.outbox).on_conflict_do_nothing(index_elements=["key"]).returning(t.outbox.c.key)
    ),
    "audit_insert": lambda _insert: sa.insert(t.audit),
    "outbox_done": _build_outbox_done,
    "outbox_done_one": _build_outbox_done_one,
    "outbox_result": lambda _insert: (
        sa.update(t.outbox)
        .where(t.outbox.c.id == sa.bindparam("row_id"))
        .values(result=sa.bindparam("result"))
    ),
}


def _instance(row: Any) -> InstanceRecord:
    return InstanceRecord(
        instance_id=row.instance_id,
        definition_id=row.definition_id,
        stage_id=row.stage_id,
        display_name=row.display_name,
        status=row.status,
        start_at=_utc(row.start_at),
        end_at=_utc(row.end_at),
        data=_loads(row.data),
    )


def _item(row: Any) -> ItemRecord:
    return ItemRecord(
        instance_id=row.instance_id,
        item_id=row.item_id,
        stage_id=row.stage_id,
        decision=row.decision,
        recommendation=row.recommendation,
        reviewed_by=row.reviewed_by,
        reviewed_at=_utc(row.reviewed_at),
        justification=row.justification,
        data=_loads(row.data),
    )


def _sent(row: Any) -> SentMessage:
    return SentMessage(
        reviewer_oid=row.reviewer_oid,
        instance_id=row.instance_id,
        kind=row.kind,
        conversation_id=row.conversation_id,
        activity_id=row.activity_id,
        sent_at=cast(datetime, _utc(row.sent_at)),
        data=_loads(row.data),
    )


def _sqlite_engine(url: str, *, immediate: bool = True) -> AsyncEngine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # An in-memory database lives in one connection (SQLAlchemy's StaticPool): no pool sizes.
    pool: dict[str, Any] = (
        {"pool_size": 5, "max_overflow": 0} if path and path != ":memory:" else {}
    )
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 30}, **pool
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE below is what runs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(
    url: str, *, pool_size: int, statement_timeout_ms: int, schema: str | None
) -> AsyncEngine:
    parsed = make_url(url).set(drivername="postgresql+asyncpg")
    server_settings = {"statement_timeout": str(statement_timeout_ms)}
    if schema:
        server_settings["search_path"] = schema
    return create_async_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": server_settings},
    )


async def open_store(
    url: str,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    pool_size: int = 10,
    statement_timeout_ms: int = 15_000,
    schema: str | None = None,
) -> SqlStore:
    """Open the store named by ``url`` (``sqlite:///path`` or ``postgresql://…``), migrated.

    ``schema`` (PostgreSQL only) keeps the tables in their own schema, created if missing — so
    several test runs, or several deployments, can share one database without colliding.
    """
    reader: AsyncEngine | None = None
    inline: InlineSqlite | None = None
    if url.startswith("sqlite:///"):
        engine = _sqlite_engine(url)
        if url.removeprefix("sqlite:///") not in ("", ":memory:"):
            reader = _sqlite_engine(url, immediate=False)
            inline = InlineSqlite(url.removeprefix("sqlite:///"))
    elif url.startswith(("postgresql://", "postgres://")):
        engine = _postgres_engine(
            url.replace("postgres://", "postgresql://", 1),
            pool_size=pool_size,
            statement_timeout_ms=statement_timeout_ms,
            schema=schema,
        )
        if schema:
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
                raise StoreError("a PostgreSQL schema name must be lower-case letters, digits, _")
            async with engine.begin() as conn:
                await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    else:
        raise StoreError("DATABASE_URL must start with sqlite:/// or postgresql://")
    store = SqlStore(engine, clock=clock or SystemClock(), reader=reader, inline=inline)
    if migrate:
        try:
            await store.migrate()
        except (SQLAlchemyError, OSError) as exc:
            await store.close()
            shown = make_url(url.replace("sqlite:///", "sqlite+aiosqlite:///", 1))
            raise StoreError(
                f"cannot open the store at {shown.render_as_string(hide_password=True)}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            ) from exc
        except BaseException:
            await store.close()
            raise
    return store
