"""Fixtures shared by the whole suite: stores on both backends, a manual clock."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.store import SqlStore, open_store

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# CI sets REQUIRE_POSTGRES=1 so that a missing server fails the run instead of skipping.
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


async def _postgres_reachable() -> str | None:
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(TEST_DATABASE_URL), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at {TEST_DATABASE_URL} unreachable: {type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def make_postgres_store(clock: ManualClock | None = None) -> tuple[SqlStore, str]:
    """A store in a fresh schema of its own, so test runs cannot collide."""
    problem = await _postgres_reachable()
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    store = await open_store(TEST_DATABASE_URL, clock=clock, schema=schema, pool_size=4)
    return store, schema


async def drop_postgres_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(TEST_DATABASE_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def any_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[SqlStore]:
    """The store contract runs against every backend."""
    if request.param == "sqlite":
        store = await open_store(f"sqlite:///{tmp_path / 'bot.db'}", clock=clock)
        try:
            yield store
        finally:
            await store.close()
    else:
        store, schema = await make_postgres_store(clock)
        try:
            yield store
        finally:
            await store.close()
            await drop_postgres_schema(schema)
