"""The SQL of durable delivery and ordered decision writes, mixed into :class:`~bot.store.SqlStore`.

Two groups of statements, kept out of ``bot/store/sql.py`` (which holds the rest of the store):

- **Per-item decision writes** (table ``item_writes``; see ``bot/store/schema.py``). A click
  becomes the newest click on each of its items in the same transaction that adds its intent
  to the outbox, and takes the write claim of every item no other write holds: one write
  transaction, the one a click already paid for its intent. Each statement covers all items of
  the click at once (a multi-row upsert, an ``UPDATE … RETURNING``), so a bulk click costs the
  same number of round trips as a single one. Rows are touched in item order, so two bulk
  clicks on PostgreSQL lock their common items in the same order and cannot deadlock.
- **Outbox bookkeeping** for cards that failed for good: read them by key or by status, and
  queue a finished row again (discovery does, when the reason for a failure may have gone);
  and for cards that wait out a backoff after transient failures: make them due at once when
  the service they waited for answers again (:meth:`DurabilityMixin.expedite_outbox`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bot.store import schema as t
from bot.store.protocol import (
    DecisionStart,
    ItemClaims,
    OutboxMessage,
    OutboxStatus,
    WriteClaim,
)
from bot.store.rows import Conn, dumps, outbox_message, require_utc

__all__ = ["DurabilityMixin"]

_CHUNK = 500  # rows per multi-row statement (11 parameters a row, far below SQLite's limit)


class DurabilityMixin:
    """Store methods for ordered decision writes and failed-card bookkeeping."""

    if TYPE_CHECKING:  # provided by SqlStore
        _dialect: str
        _insert: Any

        def _now(self) -> datetime: ...

        def _write(self, *, inline: bool = True) -> AbstractAsyncContextManager[Conn]: ...

        def _read(self, *, inline: bool = True) -> AbstractAsyncContextManager[Conn]: ...

    # -- per-item decision writes --------------------------------------------------------------
    def _durable_stmt(self, name: str) -> Any:
        """A statement of this module, built once per store: building these (upserts with
        ``CASE`` and ``excluded``) costs more CPU than running them, and a click runs several."""
        cache: dict[str, Any] = self.__dict__.setdefault("_durable_stmts", {})
        stmt = cache.get(name)
        if stmt is None:
            stmt = cache[name] = _BUILDERS[name](self._insert)
        return stmt

    async def begin_decision(
        self,
        *,
        key: str,
        kind: str,
        payload: Mapping[str, Any],
        instance_id: str,
        actor_oid: str,
        decisions: Mapping[str, str],
        reason_digest: str,
        worker: str,
        lease_s: float,
        repeat_window_s: float,
    ) -> DecisionStart:
        now = self._now()
        until = now + timedelta(seconds=lease_s)
        o = t.outbox
        item_ids = sorted(decisions)
        async with self._write() as conn:
            inserted = (
                await conn.execute(
                    self._durable_stmt("intent"),
                    {
                        "key": key,
                        "kind": kind,
                        "payload": dumps(payload),
                        "status": "in_flight",
                        "attempts": 1,
                        "not_before": now,
                        "claimed_by": worker,
                        "claimed_until": until,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            ).first()
            if inserted is None:
                return DecisionStart(
                    added=False, message=await _claim_due(conn, key, worker, now, until)
                )
            # Items in order: two bulk clicks lock their common rows in the same order.
            rows = [
                {
                    "instance_id": instance_id,
                    "item_id": item_id,
                    "latest_key": key,
                    "latest_actor": actor_oid,
                    "latest_decision": decisions[item_id],
                    "latest_reason": reason_digest,
                    "latest_at": now,
                    "open": True,
                    "holder": key,
                    "held_until": until,
                    "settled_at": None,
                    "repeat_since": now - timedelta(seconds=repeat_window_s),
                }
                for item_id in item_ids
            ]
            found: dict[str, tuple[str, str | None]] = {}
            for start in range(0, len(rows), _CHUNK):
                result = await conn.execute(
                    self._durable_stmt("newest_clicks"), rows[start : start + _CHUNK]
                )
                found.update((row.item_id, (row.latest_key, row.holder)) for row in result)
            repeats = {item: latest for item, (latest, _holder) in found.items() if latest != key}
            held = frozenset(item for item, (_latest, holder) in found.items() if holder == key)
            repeat_status: dict[str, OutboxStatus] = {}
            if repeats:
                repeat_status = {
                    row.key: row.status
                    for row in await conn.execute(
                        sa.select(o.c.key, o.c.status).where(o.c.key.in_(set(repeats.values())))
                    )
                }
                if len(repeats) == len(item_ids):
                    # Nothing new in this click: no intent of its own.
                    await conn.execute(sa.delete(o).where(o.c.id == inserted.id))
                    return DecisionStart(
                        added=False,
                        message=None,
                        claims=ItemClaims(superseded=frozenset(item_ids)),
                        repeats=repeats,
                        repeat_status=repeat_status,
                    )
                # Later executions of the intent must know which items it only repeats.
                payload = {**payload, "repeats": sorted(repeats)}
                await conn.execute(
                    sa.update(o).where(o.c.id == inserted.id).values(payload=dumps(payload))
                )
            message = outbox_message(inserted)
            if repeats:
                message = OutboxMessage(
                    id=message.id,
                    key=message.key,
                    kind=message.kind,
                    payload=payload,
                    status=message.status,
                    attempts=message.attempts,
                    not_before=message.not_before,
                    updated_at=message.updated_at,
                )
        return DecisionStart(
            added=True,
            message=message,
            claims=ItemClaims(
                held=held,
                superseded=frozenset(repeats),
                waiting=frozenset(item_ids) - held - frozenset(repeats),
            ),
            repeats=repeats,
            repeat_status=repeat_status,
        )

    async def claim_item_writes(
        self, *, key: str, instance_id: str, item_ids: Sequence[str], lease_s: float
    ) -> ItemClaims:
        now = self._now()
        ids = sorted(set(item_ids))
        found: dict[str, tuple[str, str | None]] = {}
        async with self._write() as conn:
            for start in range(0, len(ids), _CHUNK):
                rows = await conn.execute(
                    self._durable_stmt("claim"),
                    {
                        "b_key": key,
                        "b_instance_id": instance_id,
                        "b_ids": ids[start : start + _CHUNK],
                        "b_now": now,
                        "b_until": now + timedelta(seconds=lease_s),
                    },
                )
                found.update((row.item_id, (row.latest_key, row.holder)) for row in rows)
        # An item without a row was queued before the table existed: nothing orders it.
        held = {i for i in ids if i not in found or found[i][1] == key}
        superseded = {i for i, (latest, _holder) in found.items() if latest != key}
        return ItemClaims(
            held=frozenset(held),
            superseded=frozenset(superseded),
            waiting=frozenset(ids) - held - superseded,
        )

    async def _superseded_items(self, conn: Conn, claims: WriteClaim) -> set[str]:
        """Of ``claims``' items, those a later click has become the newest click of (its outcome
        must not overwrite theirs: a write whose claim lapsed may come back after a later one
        was written and recorded). Locks those rows on PostgreSQL until the transaction ends."""
        ids = sorted(set(claims.item_ids))
        name = "superseded_locked" if self._dialect == "postgresql" else "superseded"
        found: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            rows = await conn.execute(
                self._durable_stmt(name),
                {
                    "b_key": claims.key,
                    "b_instance_id": claims.instance_id,
                    "b_ids": ids[start : start + _CHUNK],
                },
            )
            found.update(rows.scalars())
        return found

    async def _release_claims(
        self, conn: Conn, claims: WriteClaim, *, now: datetime, settle: bool
    ) -> None:
        """Let go of ``claims`` (a write attempt ended); with ``settle``, the intent is finished:
        the items whose newest click it is are no longer open."""
        ids = sorted(set(claims.item_ids))
        for start in range(0, len(ids), _CHUNK):
            await conn.execute(
                self._durable_stmt("settle" if settle else "release"),
                {
                    "b_key": claims.key,
                    "b_instance_id": claims.instance_id,
                    "b_ids": ids[start : start + _CHUNK],
                    "b_now": now,
                },
            )

    async def busy_items(
        self, *, instance_id: str, item_ids: Sequence[str], since: datetime
    ) -> set[str]:
        now = self._now()
        w = t.item_writes
        ids = sorted(set(item_ids))
        found: set[str] = set()
        async with self._read(inline=len(ids) <= 200) as conn:
            for start in range(0, len(ids), _CHUNK):
                found.update(
                    (
                        await conn.execute(
                            sa.select(w.c.item_id).where(
                                w.c.instance_id == instance_id,
                                w.c.item_id.in_(ids[start : start + _CHUNK]),
                                sa.or_(
                                    w.c.open.is_(True),
                                    sa.and_(w.c.holder.is_not(None), w.c.held_until >= now),
                                    w.c.settled_at >= require_utc(since),
                                ),
                            )
                        )
                    ).scalars()
                )
        return found

    # -- outbox bookkeeping --------------------------------------------------------------------
    async def get_outbox_many(self, *, keys: Sequence[str]) -> dict[str, OutboxMessage]:
        o = t.outbox
        wanted = sorted(set(keys))
        found: dict[str, OutboxMessage] = {}
        async with self._read(inline=len(wanted) <= 200) as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    sa.select(o).where(o.c.key.in_(wanted[start : start + _CHUNK]))
                )
                found.update((row.key, outbox_message(row)) for row in rows)
        return found

    async def requeue_outbox(self, *, keys: Sequence[str], failed_for_s: float = 0.0) -> list[str]:
        o = t.outbox
        now = self._now()
        wanted = sorted(set(keys))
        finished = sa.or_(
            o.c.status == "done",
            sa.and_(
                o.c.status == "failed", o.c.updated_at <= now - timedelta(seconds=failed_for_s)
            ),
        )
        requeued: list[str] = []
        async with self._write() as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = await conn.execute(
                    sa.update(o)
                    .where(o.c.key.in_(wanted[start : start + _CHUNK]), finished)
                    .values(
                        status="pending",
                        attempts=0,
                        not_before=now,
                        claimed_by=None,
                        claimed_until=None,
                        result=None,
                        updated_at=now,
                    )
                    .returning(o.c.key)
                )
                requeued.extend(rows.scalars())
        return sorted(requeued)

    async def expedite_outbox(
        self, *, kinds: Sequence[str], error_prefix: str, marked_before: datetime | None = None
    ) -> int:
        if not error_prefix:
            # An empty marker would match every message that ever failed, deferrals included.
            raise ValueError("expedite_outbox needs the error prefix that marks its messages")
        o = t.outbox
        now = self._now()
        waiting = sa.and_(
            o.c.status == "pending",
            o.c.not_before > now,
            o.c.kind.in_(list(kinds)),
            # autoescape: the marker is matched as written, "%" and "_" included.
            o.c.last_error.startswith(error_prefix, autoescape=True),
        )
        if marked_before is not None:
            waiting = sa.and_(waiting, o.c.updated_at < require_utc(marked_before))
        # Once per recovery, and possibly thousands of rows: off the loop on SQLite.
        async with self._write(inline=False) as conn:
            result = await conn.execute(
                sa.update(o).where(waiting).values(not_before=now, updated_at=now)
            )
        return max(int(result.rowcount or 0), 0)

    async def list_outbox(
        self,
        *,
        status: OutboxStatus,
        kinds: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[OutboxMessage]:
        o = t.outbox
        query = (
            sa.select(o)
            .where(o.c.status == status)
            .order_by(o.c.updated_at.desc(), o.c.id.desc())
            .limit(limit)
        )
        if kinds is not None:
            query = query.where(o.c.kind.in_(list(kinds)))
        async with self._read(inline=limit <= 200) as conn:
            return [outbox_message(row) for row in await conn.execute(query)]


# -- statements built once (see DurabilityMixin._durable_stmt) ---------------------------------
_TS = t.item_writes.c.latest_at.type


def _build_intent(insert: Any) -> Any:
    """Add a decision intent, claimed, unless its key exists; the row back if added."""
    o = t.outbox
    return insert(o).on_conflict_do_nothing(index_elements=["key"]).returning(o)


def _build_newest_clicks(insert: Any) -> Any:
    """Per item (executed with one parameter row each): make the click the item's newest unless
    it repeats the newest one, and take the write claim if no other write holds it; returns
    (item, newest click, holder)."""
    w = t.item_writes
    stmt = insert(w)
    new = stmt.excluded
    repeat = sa.and_(
        w.c.latest_actor == new.latest_actor,
        w.c.latest_decision == new.latest_decision,
        w.c.latest_reason == new.latest_reason,
        w.c.latest_at >= sa.bindparam("repeat_since", type_=_TS),
    )
    # (new.latest_at is the click's time: a claim held until before it has expired.)
    take = sa.and_(sa.not_(repeat), sa.or_(w.c.holder.is_(None), w.c.held_until < new.latest_at))
    return stmt.on_conflict_do_update(
        index_elements=["instance_id", "item_id"],
        set_={
            "latest_key": sa.case((repeat, w.c.latest_key), else_=new.latest_key),
            "latest_actor": new.latest_actor,
            "latest_decision": new.latest_decision,
            "latest_reason": new.latest_reason,
            # A repeat is measured from the click it repeats, not from the last repeat.
            "latest_at": sa.case((repeat, w.c.latest_at), else_=new.latest_at),
            "open": sa.case((repeat, w.c.open), else_=sa.true()),
            "holder": sa.case((take, new.holder), else_=w.c.holder),
            "held_until": sa.case((take, new.held_until), else_=w.c.held_until),
        },
    ).returning(w.c.item_id, w.c.latest_key, w.c.holder)


def _build_claim(_insert: Any) -> Any:
    """Take (or renew) an intent's write claims where it is the newest click and nobody else
    writes; let go where a later click took over. Returns (item, newest click, holder)."""
    w = t.item_writes
    key = sa.bindparam("b_key", type_=w.c.holder.type)
    take = sa.and_(
        w.c.latest_key == key,
        sa.or_(
            w.c.holder.is_(None),
            w.c.held_until < sa.bindparam("b_now", type_=_TS),
            w.c.holder == key,
        ),
    )
    return (
        sa.update(w)
        .where(
            w.c.instance_id == sa.bindparam("b_instance_id"),
            w.c.item_id.in_(sa.bindparam("b_ids", expanding=True)),
        )
        .values(
            holder=sa.case((take, key), (w.c.holder == key, sa.null()), else_=w.c.holder),
            held_until=sa.case(
                (take, sa.bindparam("b_until", type_=_TS)),
                (w.c.holder == key, sa.null()),
                else_=w.c.held_until,
            ),
        )
        .returning(w.c.item_id, w.c.latest_key, w.c.holder)
    )


def _build_release(settle: bool) -> Any:
    def build(_insert: Any) -> Any:
        w = t.item_writes
        key = sa.bindparam("b_key", type_=w.c.holder.type)
        now = sa.bindparam("b_now", type_=_TS)
        held = w.c.holder == key
        newest = w.c.latest_key == key
        values: dict[str, Any] = {
            "holder": sa.case((held, sa.null()), else_=w.c.holder),
            "held_until": sa.case((held, sa.null()), else_=w.c.held_until),
        }
        if settle:
            values["open"] = sa.case((newest, sa.false()), else_=w.c.open)
            values["settled_at"] = sa.case((sa.or_(held, newest), now), else_=w.c.settled_at)
        else:
            values["settled_at"] = sa.case((held, now), else_=w.c.settled_at)
        return (
            sa.update(w)
            .where(
                w.c.instance_id == sa.bindparam("b_instance_id"),
                w.c.item_id.in_(sa.bindparam("b_ids", expanding=True)),
                sa.or_(held, newest),
            )
            .values(**values)
        )

    return build


def _build_superseded(lock: bool) -> Callable[[Any], Any]:
    def build(_insert: Any) -> Any:
        w = t.item_writes
        query = sa.select(w.c.item_id).where(
            w.c.instance_id == sa.bindparam("b_instance_id"),
            w.c.item_id.in_(sa.bindparam("b_ids", expanding=True)),
            w.c.latest_key != sa.bindparam("b_key", type_=w.c.latest_key.type),
        )
        return query.with_for_update() if lock else query

    return build


_BUILDERS: dict[str, Callable[[Any], Any]] = {
    "intent": _build_intent,
    "newest_clicks": _build_newest_clicks,
    "claim": _build_claim,
    "release": _build_release(False),
    "settle": _build_release(True),
    "superseded": _build_superseded(False),
    "superseded_locked": _build_superseded(True),
}


async def _claim_due(
    conn: Conn, key: str, worker: str, now: datetime, until: datetime
) -> OutboxMessage | None:
    """Claim the existing message ``key`` if it is due (or its claim expired)."""
    o = t.outbox
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
            claimed_until=until,
            attempts=o.c.attempts + 1,
            updated_at=now,
        )
    )
    if not claimed.rowcount:
        return None
    row = (await conn.execute(sa.select(o).where(o.c.key == key))).first()
    return outbox_message(row) if row is not None else None
