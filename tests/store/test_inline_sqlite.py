"""The SQLite store's statements on the loop (bot.store.inline): the loop never waits for SQLite.

On an SQLite file the store runs small statements synchronously on the event loop's thread.
These tests hold SQLite's write lock from another connection in a thread — as ``app.py remind``
or a second replica on the same file would — and check that the loop keeps running while a
write waits (off the loop), that the write lands once the lock is free, that reads see the
committed state without waiting, that bulk work stays off the loop, that checkpoints keep the WAL
bounded, and that closing the store leaves a complete database file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

import pytest

from bot.clock import ManualClock
from bot.store import ItemRecord, SqlStore, open_store
from bot.store import inline as inline_module

T = TypeVar("T")

#: How long the lock holder keeps the lock when the test never lets it go. A loop stuck waiting
#: for the lock gets it back after this long, so such a test fails instead of hanging.
MAX_HOLD_S = 3.0
#: The longest the loop may be busy in one go while the lock is held. Normal is a millisecond or
#: two; an inline writer with a busy timeout would spend up to that timeout here.
MAX_STALL_S = 0.25
#: A payload of about 8 KB: with its overflow and index pages, some 25 KB of WAL per commit.
LARGE_PAYLOAD = {"blob": "x" * 8000}
#: A raw timestamp in the format SQLAlchemy stores on SQLite.
RAW_TS = "2026-12-01 09:00:00.000000"
REVIEWED_AT = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


# -- helpers --------------------------------------------------------------------------------------
class WriteLockHolder:
    """Another connection that holds SQLite's write lock, in a thread, until told to let go.

    ``statements`` run inside its ``BEGIN IMMEDIATE`` transaction and are rolled back at the end:
    nobody may ever see them.
    """

    def __init__(self, path: Path, statements: Sequence[str] = ()) -> None:
        self._path = path
        self._statements = statements
        self.held = threading.Event()
        self.release = threading.Event()
        #: Set, before the lock is released, if the test never let go within MAX_HOLD_S.
        self.gave_up = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sqlite-write-lock", daemon=True)

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None, timeout=5.0)
            try:
                db.execute("BEGIN IMMEDIATE")
                for statement in self._statements:
                    db.execute(statement)
                self.held.set()
                if not self.release.wait(MAX_HOLD_S):
                    self.gave_up.set()
                db.execute("ROLLBACK")
            finally:
                db.close()
        except BaseException as exc:
            self.error = exc
        finally:
            self.held.set()  # never leave the test waiting for a lock that was not taken

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self.release.set()
        self._thread.join(timeout=10)


@contextlib.asynccontextmanager
async def write_lock_held(
    path: Path, statements: Sequence[str] = ()
) -> AsyncIterator[WriteLockHolder]:
    """Hold the write lock on ``path`` from another thread for the block (or until released)."""
    holder = WriteLockHolder(path, statements)
    holder.start()
    try:
        assert await asyncio.to_thread(holder.held.wait, 10), "the lock holder never started"
        if holder.error is not None:
            raise holder.error
        yield holder
    finally:
        holder.join()
    if holder.error is not None:
        raise holder.error


async def heartbeat() -> None:
    """Return once the loop has run other work: sleep(0) round trips and another task's Event."""
    for _ in range(5):
        await asyncio.sleep(0)
    beat = asyncio.Event()

    async def set_beat() -> None:
        beat.set()

    setter = asyncio.create_task(set_beat())
    await beat.wait()
    await setter


async def start_while_locked(holder: WriteLockHolder, work: Awaitable[T]) -> asyncio.Task[T]:
    """Start ``work`` while ``holder`` holds the lock; show the loop keeps running while it waits.

    Returns the still-pending task: it must wait for the lock (in aiosqlite's thread), and the loop
    must run the heartbeat meanwhile, without stalling.
    """
    started = time.perf_counter()
    task = asyncio.ensure_future(work)
    await heartbeat()
    stalled = time.perf_counter() - started
    assert not holder.gave_up.is_set(), (
        f"the loop was blocked for {stalled:.1f} s, until the other connection gave up the lock"
    )
    if task.done():
        task.result()  # its error, if it failed
        pytest.fail("the write finished while another connection held the write lock")
    assert stalled < MAX_STALL_S, f"the loop stalled for {stalled:.3f} s waiting for the lock"
    return task


async def ran_on_loop(work: Awaitable[T]) -> tuple[T, bool]:
    """Run ``work``; also say whether it finished in its first step, i.e. without ever yielding.

    Statements on the loop never yield (that is the point of them); through aiosqlite every
    statement is a round trip to its thread, so the task cannot be done after one loop turn.
    """
    task = asyncio.ensure_future(work)
    await asyncio.sleep(0)  # the task's first step runs before this returns
    finished_at_once = task.done()
    return await asyncio.wait_for(task, 10), finished_at_once


async def settle_checkpoint(store: SqlStore) -> None:
    """Wait for the checkpoint the store started in a thread, if any."""
    inline = store._inline
    assert inline is not None
    checkpoint = inline._checkpoint
    if checkpoint is not None:
        await asyncio.wait_for(checkpoint, 10)


def raw_count(path: Path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def raw_journal_mode(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        db.close()


def items(instance_id: str, count: int, prefix: str = "item") -> list[ItemRecord]:
    return [
        ItemRecord(
            instance_id=instance_id,
            item_id=f"{prefix}{n:05d}",
            decision="Approve",
            recommendation="Approve",
            reviewed_by="aaaaaaaa-0000-0000-0000-000000000001",
            reviewed_at=REVIEWED_AT,
            data={"n": n},
        )
        for n in range(count)
    ]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def store(db_path: Path, clock: ManualClock) -> AsyncIterator[SqlStore]:
    opened = await open_store(f"sqlite:///{db_path}", clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


# -- 1. a write while another connection holds the lock ------------------------------------------
@pytest.mark.parametrize("warm", [False, True], ids=["new-writer-connection", "pooled-writer"])
async def test_write_waits_off_the_loop_while_another_connection_holds_the_lock(
    store: SqlStore, db_path: Path, warm: bool
) -> None:
    if warm:  # the inline writer already has a pooled connection
        assert await store.enqueue_outbox(key="before", kind="card", payload={})
    async with write_lock_held(db_path) as holder:
        first = await start_while_locked(
            holder, store.enqueue_outbox(key="k1", kind="card", payload={"n": 1})
        )
        # A second writer queues behind the first, also without blocking the loop.
        second = await start_while_locked(
            holder, store.enqueue_outbox(key="k2", kind="card", payload={"n": 2})
        )
        assert await store.get_outbox(key="k1") is None  # reads go on meanwhile
        holder.release.set()
        assert await asyncio.wait_for(first, 10)
        assert await asyncio.wait_for(second, 10)
    assert not holder.gave_up.is_set()

    landed = await store.get_outbox(key="k1")
    assert landed is not None and landed.payload == {"n": 1} and landed.status == "pending"
    landed = await store.get_outbox(key="k2")
    assert landed is not None and landed.payload == {"n": 2}
    assert raw_count(db_path, "outbox") == (3 if warm else 2)

    # With the lock free again, writes run on the loop again.
    added, on_loop = await ran_on_loop(store.enqueue_outbox(key="after", kind="card", payload={}))
    assert added and on_loop


# -- 2. reads while another connection holds the lock --------------------------------------------
async def test_reads_see_the_committed_state_at_once_while_a_writer_holds_the_lock(
    store: SqlStore, db_path: Path
) -> None:
    assert await store.enqueue_outbox(key="committed", kind="card", payload={"v": 1})
    await store.upsert_items(items=items("i1", 3))
    await store.replace_assignments(
        instance_id="i1", pairs=[("alex", "item00000"), ("megan", "item00001")]
    )
    assert raw_journal_mode(db_path) == "wal"

    uncommitted = [
        "INSERT INTO outbox (key, kind, payload, status, attempts, not_before, created_at,"
        f" updated_at) VALUES ('uncommitted', 'card', '{{}}', 'pending', 0, '{RAW_TS}',"
        f" '{RAW_TS}', '{RAW_TS}')",
        "UPDATE outbox SET status = 'sent', payload = '{\"v\":2}' WHERE key = 'committed'",
        "INSERT INTO items (instance_id, item_id, decision, recommendation, data, updated_at)"
        f" VALUES ('i1', 'uncommitted', 'Deny', 'Deny', '{{}}', '{RAW_TS}')",
        "DELETE FROM assignments WHERE instance_id = 'i1'",
    ]
    async with write_lock_held(db_path, uncommitted) as holder:
        started = time.perf_counter()
        assert await store.get_outbox(key="uncommitted") is None
        committed = await store.get_outbox(key="committed")
        assert committed is not None
        assert committed.status == "pending" and committed.payload == {"v": 1}
        assert await store.count_outbox(status="pending") == 1
        assert await store.count_outbox(status="sent") == 0
        elapsed = time.perf_counter() - started
        assert elapsed < MAX_STALL_S, f"reads on the loop waited {elapsed:.3f} s for the writer"

        # Reads of whole instances go through aiosqlite's reader; they do not wait either.
        listed = await asyncio.wait_for(store.list_items(instance_id="i1"), 10)
        assert [i.item_id for i in listed] == ["item00000", "item00001", "item00002"]
        assignments = await asyncio.wait_for(store.list_assignments(instance_id="i1"), 10)
        assert assignments == [("alex", "i1", "item00000"), ("megan", "i1", "item00001")]
        assert not holder.gave_up.is_set(), "a read waited until the writer gave up its lock"
    # The other connection rolled back: still only the committed state.
    assert await store.count_outbox(status="pending") == 1
    assert raw_count(db_path, "outbox") == 1


# -- 3. checkpoints ------------------------------------------------------------------------------
async def fill_wal(
    store: SqlStore, db_path: Path, *, every: int, intervals: int, pace: Literal["settle", "yield"]
) -> tuple[int, int]:
    """Enqueue ``intervals`` × ``every`` large messages, one inline write transaction each.

    ``pace``: "settle" waits for each checkpoint the store starts before writing on (a quiet
    moment after every checkpoint); "yield" only lets the loop turn between writes, as a busy bot's
    loop does, while a checkpoint runs in its thread.

    Returns the WAL's size after the first ``every`` writes (one interval's worth of WAL, before
    any checkpoint ran) and its size at the end, once the last checkpoint finished.
    """
    wal = Path(f"{db_path}-wal")
    one_interval = 0
    for n in range(every * intervals):
        assert await store.enqueue_outbox(key=f"m{n:05d}", kind="card", payload=LARGE_PAYLOAD)
        if n + 1 == every:
            one_interval = wal.stat().st_size
        if pace == "settle":
            await settle_checkpoint(store)
        else:
            await asyncio.sleep(0)
    await settle_checkpoint(store)
    assert await store.count_outbox(status="pending") == every * intervals
    return one_interval, wal.stat().st_size


async def test_checkpoints_keep_the_wal_bounded(store: SqlStore, db_path: Path) -> None:
    every = inline_module.CHECKPOINT_EVERY
    one_interval, final = await fill_wal(store, db_path, every=every, intervals=3, pace="settle")
    written = 3 * one_interval  # the WAL bytes all the writes took
    assert one_interval > every * 8000  # the measure is sound: each commit wrote its payload
    assert final < 0.5 * written, (
        f"WAL is {final} bytes after {written} bytes of WAL writes: checkpoints did not keep "
        "it bounded"
    )
    # The checkpoints moved the rows into the database file.
    assert db_path.stat().st_size > 2 * every * 8000


async def test_without_checkpoints_the_wal_grows(
    store: SqlStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: its measure fails when the store never checkpoints."""
    every = inline_module.CHECKPOINT_EVERY
    monkeypatch.setattr(inline_module, "CHECKPOINT_EVERY", 10**9)
    one_interval, final = await fill_wal(store, db_path, every=every, intervals=3, pace="settle")
    written = 3 * one_interval
    assert store._inline is not None and store._inline._checkpoint is None
    assert final >= 0.5 * written  # what test_checkpoints_keep_the_wal_bounded must not see
    assert final > 2.5 * one_interval


async def test_checkpoints_keep_the_wal_bounded_under_steady_writes(
    store: SqlStore, db_path: Path
) -> None:
    """Writes that keep coming while a checkpoint runs in its thread (a busy bot) — the WAL must
    still not grow with the number of writes.

    A PASSIVE checkpoint copies only the frames that existed when it started; SQLite restarts the
    WAL from its beginning only when a write transaction starts with every frame copied. If a
    commit lands during every checkpoint (here, ~10 ms each), the WAL is never restarted.
    """
    every = inline_module.CHECKPOINT_EVERY
    one_interval, final = await fill_wal(store, db_path, every=every, intervals=3, pace="yield")
    written = 3 * one_interval
    assert final < 0.5 * written, (
        f"WAL is {final} bytes after {written} bytes of WAL writes ({every * 3} commits at a "
        f"steady pace): every checkpoint overlapped a commit, so the WAL never restarted"
    )


# -- 4. bulk work stays off the loop -------------------------------------------------------------
async def test_bulk_upsert_waits_off_the_loop_and_completes_after_release(
    store: SqlStore, db_path: Path
) -> None:
    async with write_lock_held(db_path) as holder:
        task = await start_while_locked(holder, store.upsert_items(items=items("i1", 1000)))
        holder.release.set()
        await asyncio.wait_for(task, 10)
    assert not holder.gave_up.is_set()
    listed = await store.list_items(instance_id="i1")
    assert len(listed) == 1000
    assert listed[999].item_id == "item00999" and listed[999].reviewed_at == REVIEWED_AT
    assert raw_count(db_path, "items") == 1000


async def test_bulk_statements_run_off_the_loop_even_when_the_lock_is_free(
    store: SqlStore,
) -> None:
    # The control: a small upsert runs on the loop, in one step.
    _, on_loop = await ran_on_loop(store.upsert_items(items=items("i1", 1, prefix="one")))
    assert on_loop

    _, on_loop = await ran_on_loop(store.upsert_items(items=items("i1", 1000)))
    assert not on_loop, "upserting 1,000 items ran on the loop"

    pairs = [(f"reviewer{n % 50:02d}", f"item{n:05d}") for n in range(1000)]
    _, on_loop = await ran_on_loop(store.replace_assignments(instance_id="i1", pairs=pairs))
    assert not on_loop, "replacing 1,000 assignments ran on the loop"

    everything, on_loop = await ran_on_loop(store.list_assignments(instance_id="i1"))
    assert len(everything) == 1000
    assert not on_loop, "listing a whole instance's assignments ran on the loop"

    listed, on_loop = await ran_on_loop(store.list_items(instance_id="i1"))
    assert len(listed) == 1001
    assert not on_loop, "listing a whole instance's items ran on the loop"


# -- 5. an in-memory store -----------------------------------------------------------------------
async def test_in_memory_store_writes_and_reads(clock: ManualClock) -> None:
    store = await open_store("sqlite:///:memory:", clock=clock)
    try:
        assert store._inline is None  # no second engine could see an in-memory database
        assert await store.enqueue_outbox(key="k1", kind="card", payload={"n": 1})
        message = await store.get_outbox(key="k1")
        assert message is not None and message.payload == {"n": 1}
        assert await store.count_outbox(status="pending") == 1
        await store.upsert_items(items=items("i1", 300))
        assert len(await store.list_items(instance_id="i1")) == 300
    finally:
        await store.close()


# -- 6. closing ----------------------------------------------------------------------------------
async def test_close_disposes_the_inline_engines_and_keeps_every_commit(
    db_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_module, "CHECKPOINT_EVERY", 10)
    store = await open_store(f"sqlite:///{db_path}", clock=clock)
    try:
        await store.upsert_items(items=items("i1", 1000))  # through aiosqlite
        # Inline commits, which never yield: the checkpoint started after the tenth has not
        # begun to run when the store is closed.
        for n in range(15):
            assert await store.enqueue_outbox(key=f"k{n:02d}", kind="card", payload={"n": n})
        assert await store.enqueue_outbox(key="last", kind="card", payload={})
        inline = store._inline
        assert inline is not None
        checkpoint = inline._checkpoint
        assert checkpoint is not None
    finally:
        await store.close()
    assert checkpoint.done() and checkpoint.exception() is None  # close waited for it
    # Every connection is closed: the last one to close checkpointed the WAL into the
    # database file and removed it.
    assert not Path(f"{db_path}-wal").exists()
    assert raw_count(db_path, "outbox") == 16
    assert raw_count(db_path, "items") == 1000

    reopened = await open_store(f"sqlite:///{db_path}", clock=clock)
    try:
        assert await reopened.count_outbox(status="pending") == 16
        for key in [f"k{n:02d}" for n in range(15)] + ["last"]:
            assert await reopened.get_outbox(key=key) is not None, key
        assert len(await reopened.list_items(instance_id="i1")) == 1000
    finally:
        await reopened.close()
