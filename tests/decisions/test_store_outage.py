"""A database outage during a click is a "busy, try again" answer, never a 5xx or a stack trace.

The bot runs on a real PostgreSQL database; the outage is real too: the database stops accepting
connections (``ALLOW_CONNECTIONS false``) and its sessions are ended, as when a server restarts or
fails over. While it lasts, a click is answered with HTTP 200 and an Adaptive Card error saying the
click was not confirmed (status 503), a chat message gets the usual apology, and the log has one
WARNING line each, no ERROR. Once the database is back, the same click is recorded in Graph and the
store, once.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import types
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store import is_unavailable
from bot.web.keys import DISCOVERY, OUTBOX, STORE
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.decisions.test_decide_e2e import graph_decision
from tests.replicas.cluster import fresh_database, with_database

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[BotOnEmulator, str]]:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(fresh_database())
        harness = await stack.enter_async_context(bot_on_emulator(tmp_path, database_url=url))
        await harness.app[DISCOVERY].run_once()
        await harness.app[OUTBOX].run_once()
        yield harness, url


@contextlib.asynccontextmanager
async def database_down(url: str) -> AsyncIterator[None]:
    name = make_url(url).database
    admin = await asyncpg.connect(with_database(url, "postgres"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        try:
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def test_a_click_during_a_database_outage_is_answered_busy_and_recorded_once_back(
    running: tuple[BotOnEmulator, str], caplog: pytest.LogCaptureFixture
) -> None:
    harness, url = running
    data = {"instanceId": ROLE_REVIEW, "itemId": MEGAN_ITEM, "decision": "Deny", "page": 0}
    with caplog.at_level(logging.WARNING):
        async with database_down(url):
            answer = await harness.teams.card_action(JOHANNA, "decide", data, sso=True)
            reply = await harness.teams.message(JOHANNA, "pending")
    assert answer.status == 200, (answer.status, answer.body)
    assert answer.body["statusCode"] == 503, answer.body
    assert answer.body["value"]["code"] == "ServiceUnavailable", answer.body
    assert reply.status < 500, reply.status
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
    assert any("store unavailable" in r.getMessage() for r in caplog.records)
    # Nothing half-done: Graph was not written while the store could not record the intent.
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "NotReviewed"

    again = await harness.teams.card_action(JOHANNA, "decide", data, sso=True)
    assert again.status == 200 and again.body["statusCode"] == 200, again.body
    assert (await graph_decision(harness, ROLE_REVIEW, MEGAN_ITEM))["decision"] == "Deny"
    item = await harness.app[STORE].get_item(instance_id=ROLE_REVIEW, item_id=MEGAN_ITEM)
    assert item is not None and item.decision == "Deny"


async def test_unavailable_errors_are_told_apart_from_mistakes(
    running: tuple[BotOnEmulator, str],
) -> None:
    harness, url = running
    store = harness.app[STORE]
    async with database_down(url):
        with pytest.raises(Exception) as outage:
            await store.get_item(instance_id=ROLE_REVIEW, item_id=MEGAN_ITEM)
    assert is_unavailable(outage.value), repr(outage.value)
    # A statement the server refuses for what it says (not for the moment) is not "busy".
    engine = create_async_engine(make_url(url).set(drivername="postgresql+asyncpg"))
    try:
        with pytest.raises(Exception) as mistake:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT * FROM no_such_table"))
    finally:
        await engine.dispose()
    assert not is_unavailable(mistake.value), repr(mistake.value)


def test_a_network_error_is_the_stores_only_when_it_comes_from_the_store() -> None:
    """asyncpg lets a refused connection's OSError through unwrapped: unavailable. The same
    error from somewhere else (a Graph or connector call) is not the store's."""

    def refused() -> None:
        raise ConnectionRefusedError(111, "refused")

    def raise_from(module: str) -> BaseException:
        # The same code, its frame in ``module`` (what the check reads).
        connect = types.FunctionType(refused.__code__, {**vars(builtins), "__name__": module})
        try:
            connect()
        except OSError as exc:
            return exc
        raise AssertionError("not raised")

    assert is_unavailable(raise_from("asyncpg.connect_utils"))
    assert is_unavailable(raise_from("bot.store.sql"))
    assert not is_unavailable(raise_from("httpx._transports.default"))
    assert not is_unavailable(raise_from("bot.graph.client"))
