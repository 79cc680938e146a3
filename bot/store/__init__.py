"""Persistence: the :class:`Store` protocol and its SQL implementation (SQLite or PostgreSQL)."""

from bot.store.protocol import (
    AssignmentChange,
    AuditEvent,
    DecisionStart,
    InstanceRecord,
    ItemClaims,
    ItemRecord,
    Lease,
    OnceWork,
    OutboxCompletion,
    OutboxMessage,
    PersonRecord,
    QueuedMessage,
    SentMessage,
    Store,
    StoreError,
    WriteClaim,
)
from bot.store.rows import is_unavailable
from bot.store.sql import SqlStore, open_store

__all__ = [
    "AssignmentChange",
    "AuditEvent",
    "DecisionStart",
    "InstanceRecord",
    "ItemClaims",
    "ItemRecord",
    "Lease",
    "OnceWork",
    "OutboxCompletion",
    "OutboxMessage",
    "PersonRecord",
    "QueuedMessage",
    "SentMessage",
    "SqlStore",
    "Store",
    "StoreError",
    "WriteClaim",
    "is_unavailable",
    "open_store",
]
