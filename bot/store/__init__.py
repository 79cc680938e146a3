"""Persistence: the :class:`Store` protocol and its SQL implementation (SQLite or PostgreSQL)."""

from bot.store.protocol import (
    AssignmentChange,
    AuditEvent,
    InstanceRecord,
    ItemRecord,
    Lease,
    OutboxCompletion,
    OutboxMessage,
    PersonRecord,
    SentMessage,
    Store,
    StoreError,
)
from bot.store.sql import SqlStore, open_store

__all__ = [
    "AssignmentChange",
    "AuditEvent",
    "InstanceRecord",
    "ItemRecord",
    "Lease",
    "OutboxCompletion",
    "OutboxMessage",
    "PersonRecord",
    "SentMessage",
    "SqlStore",
    "Store",
    "StoreError",
    "open_store",
]
