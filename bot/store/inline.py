"""SQLite statements run on the event loop's own thread, for the store's small hot operations.

Through aiosqlite every statement is a round trip to a worker thread: a queue put, a wake-up of
the loop through its self-pipe, and SQLAlchemy's greenlet bridge — about 1.5 ms per short read
on our machines, while SQLite itself answers a keyed read from a WAL database in tens of
microseconds. A click or a card send makes ten such calls, so the round trips, not SQLite, set
the bot's ceiling (see docs/decisions.md, "SQLite on the loop").

:class:`InlineSqlite` keeps a second, synchronous SQLAlchemy engine on the same file and hands
out connections that look like :class:`~sqlalchemy.ext.asyncio.AsyncConnection` to the store's
code (``await conn.execute(...)``) but run at once. That is only safe when a statement cannot
wait, so:

- **Writes never wait for a lock on the loop.** The inline writer's ``busy_timeout`` is 0: its
  ``BEGIN IMMEDIATE`` either gets the write lock at once or fails with "database is locked"
  before anything is done, and then the store runs that transaction through aiosqlite instead,
  which waits in its thread (another process — ``app.py remind``, a second replica on the same
  file — holds the lock). Within the process the store's asyncio lock already serialises
  writers. Once ``BEGIN IMMEDIATE`` holds the lock, WAL mode has nothing left to wait for.
- **Reads hardly ever wait.** In WAL mode readers do not block on writers; a short busy timeout
  covers the rare moments SQLite still asks them to (recovery, a closing connection deleting
  the WAL).
- **No fsync on the loop.** ``synchronous=NORMAL`` in WAL mode syncs only at checkpoints, and
  the inline connections never checkpoint (``wal_autocheckpoint=0``): after every
  :data:`CHECKPOINT_EVERY` inline commits the store checkpoints in a thread. That checkpoint is
  ``TRUNCATE``: a passive one copies only what the WAL held when it began, and under steady
  writes a commit always lands meanwhile, so the WAL would never be reused and grow without
  bound. While it runs, writers find the lock taken and go through aiosqlite (above). The WAL
  header's fsync, due at the first commit into the emptied WAL, is paid there too.
- **Bulk work stays off the loop.** Statements that touch thousands of rows (a discovery cycle's
  upserts, an audit export) still go through aiosqlite, so they never stall invokes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

__all__ = ["CHECKPOINT_EVERY", "InlineConnection", "InlineSqlite", "is_locked"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Inline write transactions between two checkpoints (run in a thread).
CHECKPOINT_EVERY = 200
#: How long an inline read may wait for SQLite's rare reader locks.
READ_BUSY_TIMEOUT_MS = 200


def is_locked(exc: BaseException) -> bool:
    """True for SQLite's "database is locked" / "busy": someone else holds the lock."""
    original = getattr(exc, "orig", exc)
    return isinstance(original, sqlite3.OperationalError) and (
        "locked" in str(original) or "busy" in str(original)
    )


class InlineConnection:
    """A synchronous connection with the awaitable surface the store uses."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self._conn.exec_driver_sql(statement, parameters)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self._conn, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        with self._conn.begin_nested():
            yield


class InlineSqlite:
    """The synchronous engines on one SQLite file: a writer and readers, used on the loop."""

    def __init__(self, path: str) -> None:
        self._path = os.path.expanduser(path)
        self._writer = self._engine(immediate=True, busy_timeout_ms=0)
        self._reader = self._engine(immediate=False, busy_timeout_ms=READ_BUSY_TIMEOUT_MS)
        self._commits = 0
        self._checkpoint: asyncio.Task[None] | None = None

    def _engine(self, *, immediate: bool, busy_timeout_ms: int) -> Engine:
        engine = sa.create_engine(
            f"sqlite:///{self._path}",
            pool_size=4,
            max_overflow=8,
            # Used by whichever thread runs the loop, one statement at a time.
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Straight to the driver: through SQLAlchemy's execution machinery (events, an
            # execution context, a result) this BEGIN cost as much CPU as the statement after it,
            # and every inline read and write starts with one.
            try:
                conn.connection.dbapi_connection.execute(begin)
            except sqlite3.Error as exc:
                # Raised as SQLAlchemy would have (callers tell "database is locked" by it).
                raise DBAPIError.instance(begin, None, exc, sqlite3.Error) from exc

        return engine

    @contextlib.contextmanager
    def read(self) -> Iterator[InlineConnection]:
        """A read on the loop (a deferred transaction: one snapshot for the block)."""
        with self._reader.connect() as conn:
            yield InlineConnection(conn)

    def try_begin(self) -> Connection | None:
        """A write transaction holding SQLite's lock, or None if another process holds it."""
        conn = self._writer.connect()
        try:
            conn.begin()
        except OperationalError as exc:
            conn.close()
            if is_locked(exc):
                return None
            raise
        except BaseException:
            conn.close()
            raise
        return conn

    def committed(self) -> None:
        """Count an inline commit; every :data:`CHECKPOINT_EVERY`, checkpoint in a thread."""
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self._checkpoint = asyncio.get_running_loop().create_task(
                asyncio.to_thread(self._run_checkpoint)
            )

    def _run_checkpoint(self) -> None:
        try:
            # A short wait: while a TRUNCATE checkpoint waits for readers it holds the write
            # lock, and writers go the slow way meanwhile. Busy now means: next time.
            db = sqlite3.connect(self._path, timeout=0.5, isolation_level=None)
            try:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                # The first commit into an emptied WAL writes the WAL header and syncs it. Make
                # that commit here, in the thread, with a write that changes nothing, rather
                # than let the next store write pay the fsync on the loop.
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                db.execute("BEGIN IMMEDIATE")
                db.execute(f"PRAGMA user_version = {version}")
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error as exc:
            if is_locked(exc):
                # Writers kept the lock the whole time: the next checkpoint tries again.
                log.debug("SQLite checkpoint skipped: %s", exc)
            else:
                log.warning("SQLite checkpoint failed: %s", exc)

    async def close(self) -> None:
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        self._writer.dispose()
        self._reader.dispose()
