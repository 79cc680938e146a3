"""Conflicting and repeated clicks (issue 14, defects 2 and 5), over HTTP, on SQLite and PostgreSQL.

Two replicas of the app share one store (a SQLite file, or a PostgreSQL database of their own)
and one emulated cloud. Graph's decision writes get random latency before they are applied and
random latency after (the write applied, its answer late), so two writes sent at once are
applied in one order and answered in either. Each trial sends Approve to one replica and Deny to
the other at the same moment, for the same item, from the same reviewer with different activity
ids; afterwards Graph and the store must hold the same decision, in every trial.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.reviews.decisions import DECISION_KIND
from bot.web.keys import DECISION_WORKER, DISCOVERY, OUTBOX, REVIEWS_API, STORE
from emulator.faults import FaultRule
from emulator.seeds import demo_id
from emulator.teams_client import TeamsClient
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.cardtools import card_text
from tests.replicas.cluster import fresh_database

JOHANNA = demo_id("user", "johanna")
ROLE_REVIEW = demo_id("review", "user_admin_role")
MEGAN_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
DIEGO_ITEM = demo_id("decision", f"user_admin_role:{demo_id('user', 'diego')}")
TRIALS = 16


@dataclass
class Replicas:
    harness: BotOnEmulator
    second: TestClient
    second_teams: TeamsClient

    @property
    def apps(self) -> list[Any]:
        return [self.harness.app, self.second.app]


@pytest.fixture(params=["sqlite", "postgres"])
async def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Replicas]:
    async with contextlib.AsyncExitStack() as stack:
        overrides: dict[str, Any] = {}
        if request.param == "postgres":
            overrides["database_url"] = await stack.enter_async_context(fresh_database())
        harness = await stack.enter_async_context(bot_on_emulator(tmp_path, **overrides))
        second = TestClient(
            TestServer(create_app(harness.settings, workers=False), host="127.0.0.1", port=0)
        )
        await stack.enter_async_context(second)
        await harness.app[DISCOVERY].run_once()
        await harness.app[OUTBOX].run_once()
        yield Replicas(harness, second, harness.teams_for(str(second.make_url("/api/messages"))))


def _jitter_graph_writes(harness: BotOnEmulator) -> None:
    faults = harness.cloud.faults
    # Each rule fires for half of the writes: 0–0.35 s before a write is applied, 0–0.6 s
    # between applying it and answering.
    for seed, latency_s, phase in (
        (1, 0.05, "request"),
        (2, 0.1, "request"),
        (3, 0.2, "request"),
        (4, 0.1, "response"),
        (5, 0.2, "response"),
        (6, 0.3, "response"),
    ):
        faults.add(
            FaultRule(
                kind="latency",
                service="graph",
                method="PATCH",
                latency_s=latency_s,
                probability=0.5,
                seed=seed,
                phase=phase,  # type: ignore[arg-type]
            )
        )


async def _graph_decision(replicas: Replicas, item_id: str) -> dict[str, Any]:
    decision = await replicas.harness.app[REVIEWS_API].get_decision(
        ROLE_REVIEW, ROLE_REVIEW, item_id
    )
    return dict(decision.raw)


async def _settled(replicas: Replicas, *, timeout_s: float = 30.0) -> None:
    """Wait (with a deadline) until no decision write is queued or running in either replica."""
    store = replicas.harness.app[STORE]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        busy = [
            m
            for status in ("pending", "in_flight")
            for m in await store.list_outbox(status=status, kinds=[DECISION_KIND])  # type: ignore[arg-type]
        ]
        if not busy:
            return
        assert loop.time() < deadline, f"decision writes still busy: {busy}"
        for app in replicas.apps:
            await app[DECISION_WORKER].run_once()
        await asyncio.sleep(0.05)  # the gap between two looks at the store


def _decide(teams: TeamsClient, item: str, decision: str, reason: str, *, sso: bool = False) -> Any:
    data = {
        "instanceId": ROLE_REVIEW,
        "itemId": item,
        "decision": decision,
        "justification": reason,
        "page": 0,
    }
    return teams.card_action(JOHANNA, "decide", data, sso=sso)


async def test_conflicting_clicks_leave_graph_and_the_store_equal(replicas: Replicas) -> None:
    harness = replicas.harness
    # Signed in once (the token cache is shared through the store).
    first = await _decide(harness.teams, DIEGO_ITEM, "Approve", "sign in", sso=True)
    assert first.status == 200 and first.body["statusCode"] == 200
    _jitter_graph_writes(harness)
    store = harness.app[STORE]
    mismatches = []
    for trial in range(TRIALS):
        approve, deny = await asyncio.gather(
            _decide(harness.teams, MEGAN_ITEM, "Approve", f"trial {trial}: keep"),
            _decide(replicas.second_teams, MEGAN_ITEM, "Deny", f"trial {trial}: remove"),
        )
        assert approve.status == deny.status == 200
        assert approve.body["statusCode"] == deny.body["statusCode"] == 200
        await _settled(replicas)
        in_graph = await _graph_decision(replicas, MEGAN_ITEM)
        item = await store.get_item(instance_id=ROLE_REVIEW, item_id=MEGAN_ITEM)
        assert item is not None
        if (in_graph["decision"], in_graph["justification"]) != (
            item.decision,
            item.justification,
        ):
            mismatches.append((trial, in_graph["decision"], item.decision))
    assert mismatches == []
    # Every click is accounted for in the audit trail: written, or taken over by the later one.
    lines = [
        e
        for e in await store.list_audit(instance_id=ROLE_REVIEW, actions=["decision"])
        if e.item_id == MEGAN_ITEM
    ]
    assert len(lines) == 2 * TRIALS
    assert {e.result for e in lines} <= {"recorded", "superseded"}


async def test_the_same_decision_clicked_twice_is_one_write_and_one_audit_line(
    replicas: Replicas,
) -> None:
    harness = replicas.harness
    await _decide(harness.teams, DIEGO_ITEM, "Approve", "sign in", sso=True)
    patches_before = _patches(harness, MEGAN_ITEM)
    first = await _decide(harness.teams, MEGAN_ITEM, "Deny", "left the company")
    second = await _decide(replicas.second_teams, MEGAN_ITEM, "Deny", "left the company")
    assert first.status == second.status == 200
    # The second click gets the same answer card.
    assert card_text(first.body["value"]) == card_text(second.body["value"])
    await _settled(replicas)
    assert _patches(harness, MEGAN_ITEM) == patches_before + 1
    store = harness.app[STORE]
    lines = [
        e
        for e in await store.list_audit(instance_id=ROLE_REVIEW, actions=["decision"])
        if e.item_id == MEGAN_ITEM
    ]
    assert [(e.result, e.detail["decision"]) for e in lines] == [("recorded", "Deny")]
    # Another reason is a new decision, written again.
    await _decide(harness.teams, MEGAN_ITEM, "Deny", "left the company in May")
    await _settled(replicas)
    assert _patches(harness, MEGAN_ITEM) == patches_before + 2


async def test_clicks_sent_at_once_twice_over_write_once(replicas: Replicas) -> None:
    """A double click: the same decision from two devices at the same moment."""
    harness = replicas.harness
    await _decide(harness.teams, DIEGO_ITEM, "Approve", "sign in", sso=True)
    _jitter_graph_writes(harness)
    before = _patches(harness, MEGAN_ITEM)
    answers = await asyncio.gather(
        _decide(harness.teams, MEGAN_ITEM, "Approve", "still needs it"),
        _decide(replicas.second_teams, MEGAN_ITEM, "Approve", "still needs it"),
    )
    assert all(a.status == 200 and a.body["statusCode"] == 200 for a in answers)
    await _settled(replicas)
    assert _patches(harness, MEGAN_ITEM) == before + 1
    assert (await _graph_decision(replicas, MEGAN_ITEM))["decision"] == "Approve"


def _patches(harness: BotOnEmulator, item_id: str) -> int:
    return sum(
        1
        for method, _version, path, status in harness.cloud.graph.request_log
        if method == "PATCH" and path.endswith(item_id) and status < 300
    )
