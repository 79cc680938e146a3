"""Tables and versioned migrations, defined once for both SQLite and PostgreSQL.

Tables are SQLAlchemy Core objects, so one definition yields each dialect's DDL. A migration is a
numbered function run inside one transaction; ``schema_migrations`` records what has been applied,
and a process refuses to start on a database newer than it knows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = sa.MetaData()

# Timestamps are stored as timezone-aware UTC; JSON as text (portable, and the store owns encoding).
_TS = sa.DateTime(timezone=True)

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", _TS, nullable=False),
)

conversation_refs = sa.Table(
    "conversation_refs",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("user_oid", sa.String(64), primary_key=True),
    sa.Column("service_url", sa.Text, nullable=False),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("definition_id", sa.String(64), nullable=False, index=True),
    sa.Column("stage_id", sa.String(64)),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("status", sa.String(40), nullable=False, index=True),
    sa.Column("start_at", _TS),
    sa.Column("end_at", _TS),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("stage_id", sa.String(64)),
    sa.Column("decision", sa.String(40), nullable=False),
    sa.Column("recommendation", sa.String(40), nullable=False),
    sa.Column("reviewed_by", sa.String(64)),
    sa.Column("reviewed_at", _TS),
    sa.Column("justification", sa.Text),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("reviewer_oid", sa.String(64), primary_key=True),
    sa.Column("assigned_at", _TS, nullable=False),
    sa.Index("ix_assignments_reviewer", "reviewer_oid", "instance_id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("key", sa.String(400), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("not_before", _TS, nullable=False),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claimed_until", _TS),
    sa.Column("result", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Index("ix_outbox_due", "status", "not_before"),
)

sent_messages = sa.Table(
    "sent_messages",
    metadata,
    sa.Column("reviewer_oid", sa.String(64), primary_key=True),
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("conversation_id", sa.Text, nullable=False),
    sa.Column("activity_id", sa.Text, nullable=False),
    sa.Column("sent_at", _TS, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

reminders_sent = sa.Table(
    "reminders_sent",
    metadata,
    sa.Column("reminder_id", sa.String(400), primary_key=True),
    sa.Column("recipient_oid", sa.String(64), nullable=False),
    sa.Column("instance_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("sent_at", _TS, nullable=False),
)

once_keys = sa.Table(
    "once_keys",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("expires_at", _TS, nullable=False, index=True),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", _TS, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(80), nullable=False),
    sa.Column("instance_id", sa.String(64), index=True),
    sa.Column("item_id", sa.String(64)),
    sa.Column("result", sa.String(80), nullable=False),
    sa.Column("request_id", sa.String(100)),
    sa.Column("detail", sa.Text, nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", _TS, nullable=False),
    sa.Column("fence", sa.BigInteger, nullable=False),
)

token_cache = sa.Table(
    "token_cache",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("blob", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
)

snoozes = sa.Table(
    "snoozes",
    metadata,
    sa.Column("reviewer_oid", sa.String(64), primary_key=True),
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("until", _TS, nullable=False),
)

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("reviewer_oid", sa.String(64), primary_key=True),
    sa.Column("recipient_oid", sa.String(64), primary_key=True),
    sa.Column("sent_at", _TS, nullable=False),
)

# One row per decision item the bot has written (or been asked to write) to Graph: the order of
# the writes. ``latest_*`` describe the newest click on the item (its intent's outbox key, who,
# what, a digest of the reason, when); only that intent may write the item, so a later click
# supersedes an earlier one that has not started. ``holder`` is the intent whose write is in
# flight, until ``held_until`` (a claim like an outbox claim: a dead writer's expires). ``open``
# is true until the newest click's write settled (written, failed for good); ``settled_at`` is
# when the last write attempt on the item ended. Discovery trusts Graph over the store only
# for items that are not open, not held, and settled before it began reading.
item_writes = sa.Table(
    "item_writes",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("latest_key", sa.String(400), nullable=False),
    sa.Column("latest_actor", sa.String(64), nullable=False),
    sa.Column("latest_decision", sa.String(40), nullable=False),
    sa.Column("latest_reason", sa.String(64), nullable=False),
    sa.Column("latest_at", _TS, nullable=False),
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Column("holder", sa.String(400)),
    sa.Column("held_until", _TS),
    sa.Column("settled_at", _TS),
)

# Per person (Entra object id): the language and time zone of their mailbox, read from Graph off
# the send path so that rendering a card never waits for the directory. "" = none known.
people = sa.Table(
    "people",
    metadata,
    sa.Column("user_oid", sa.String(64), primary_key=True),
    sa.Column("locale", sa.String(64), nullable=False),
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("checked_at", _TS, nullable=False),
)

# The tables created by migration 1 (all of the above except the bookkeeping table).
_V1_TABLES = [
    conversation_refs,
    instances,
    items,
    assignments,
    outbox,
    sent_messages,
    reminders_sent,
    once_keys,
    audit,
    leases,
    token_cache,
]


async def _migration_1_initial(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda sync_conn: metadata.create_all(sync_conn, tables=_V1_TABLES))


async def _migration_2_reminders(conn: AsyncConnection) -> None:
    await conn.run_sync(
        lambda sync_conn: metadata.create_all(sync_conn, tables=[snoozes, escalations])
    )


async def _migration_3_item_writes(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda sync_conn: metadata.create_all(sync_conn, tables=[item_writes]))


async def _migration_4_people(conn: AsyncConnection) -> None:
    await conn.run_sync(lambda sync_conn: metadata.create_all(sync_conn, tables=[people]))


Migration = tuple[int, str, Callable[[AsyncConnection], Awaitable[None]]]

# Append new migrations here; never edit one that has shipped.
MIGRATIONS: list[Migration] = [
    (1, "initial schema", _migration_1_initial),
    (2, "snoozes and escalations", _migration_2_reminders),
    (3, "per-item decision write order", _migration_3_item_writes),
    (4, "people: mailbox language and time zone", _migration_4_people),
]

LATEST_VERSION = MIGRATIONS[-1][0]
