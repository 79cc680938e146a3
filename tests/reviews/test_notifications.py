"""POST /api/notifications: authenticated, validated, coalesced, run by the lease holder."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.web.keys import DISCOVERY, POLLER, STORE
from bot.web.notifications import signed_headers
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator

SECRET = "notify-secret"
ROLE = demo_id("review", "user_admin_role")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path, notifications_secret=SECRET) as running:
        await running.app[DISCOVERY].run_once()
        yield running


async def _post(harness: BotOnEmulator, body: object, *, signed: bool = True) -> tuple[int, dict]:
    raw = json.dumps(body).encode()
    headers = signed_headers(SECRET, raw) if signed else {"Content-Type": "application/json"}
    response = await harness.client.post("/api/notifications", data=raw, headers=headers)
    return response.status, await response.json()


async def test_unauthenticated_or_malformed_requests_are_refused(harness: BotOnEmulator) -> None:
    assert (await _post(harness, {"definitionId": ROLE}, signed=False))[0] == 401
    status, body = await _post(
        harness, {"definitionId": ROLE, "clientState": "wrong"}, signed=False
    )
    assert status == 401 and "X-Signature" in body["error"]
    raw = json.dumps({"definitionId": ROLE}).encode()
    tampered = await harness.client.post(
        "/api/notifications", data=raw + b" ", headers=signed_headers(SECRET, raw)
    )
    assert tampered.status == 401
    assert (await _post(harness, {}))[0] == 400
    assert (await _post(harness, {"definitionId": "../etc/passwd"}))[0] == 400
    assert (await _post(harness, {"instanceId": "unknown-instance"}))[0] == 404
    assert (
        await harness.app[STORE].claim_outbox(worker="t", limit=10, lease_s=1, kinds=["poll"]) == []
    )


async def test_a_burst_queues_one_poll_that_the_lease_holder_runs(harness: BotOnEmulator) -> None:
    # Distinct requests (a signature is accepted once: the same body in the same second is not).
    results = [
        await _post(harness, {"definitionId": ROLE, "instanceId": ROLE, "requestId": n})
        for n in range(5)
    ]
    assert all(status == 202 for status, _ in results)
    assert [body["queued"] for _, body in results].count(True) == 1
    # A request naming the instance alone joins the same poll.
    status, body = await _post(harness, {"instanceId": ROLE})
    assert status == 202 and body["queued"] is False

    # Decide in "My Access"; the targeted poll run by the lease holder sees it.
    item = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
    harness.cloud.tenant.record_decision(ROLE, item, "Deny", demo_id("user", "johanna"), "gone")
    poller = harness.app[POLLER]
    assert await poller.tick()
    stored = await harness.app[STORE].get_item(instance_id=ROLE, item_id=item)
    assert stored is not None and stored.decision == "Deny"
    done = [e for e in await harness.app[STORE].list_audit(actions=["item_decided_elsewhere"])]
    assert len(done) == 1


async def test_another_replica_does_not_poll_while_the_lease_is_held(
    harness: BotOnEmulator,
) -> None:
    from bot.reviews import Poller

    holder = harness.app[POLLER]
    assert await holder.tick()
    other = Poller(
        discovery=harness.app[DISCOVERY], store=harness.app[STORE], clock=harness.app[POLLER]._clock
    )
    assert not await other.tick()
    await harness.app[STORE].release_lease(name="discovery-poll", holder=holder.holder)
    assert await other.tick()


async def test_a_replica_that_lost_the_lease_writes_nothing_more(harness: BotOnEmulator) -> None:
    from bot.reviews import Poller
    from bot.reviews.discovery import LeaseLost

    first = harness.app[POLLER]
    assert await first.tick()
    lease = first.lease
    assert lease is not None
    # The lease moves (first's lease expired while it was stalled, say).
    await harness.app[STORE].release_lease(name="discovery-poll", holder=first.holder)
    second = Poller(discovery=harness.app[DISCOVERY], store=harness.app[STORE], clock=first._clock)
    assert await second.tick()
    with pytest.raises(LeaseLost):
        await first._guard()
    # A cycle run under the stale lease stops before its first write.
    item = demo_id("decision", f"user_admin_role:{demo_id('user', 'diego')}")
    harness.cloud.tenant.record_decision(ROLE, item, "Approve", demo_id("user", "johanna"), "ok")
    with pytest.raises(LeaseLost):
        await harness.app[DISCOVERY].run_once(guard=first._guard)
    stored = await harness.app[STORE].get_item(instance_id=ROLE, item_id=item)
    assert stored is not None and stored.decision == "NotReviewed"


async def test_readyz_and_metrics_show_the_lease_and_the_outbox(harness: BotOnEmulator) -> None:
    assert await harness.app[POLLER].tick()
    ready = await (await harness.client.get("/readyz")).json()
    poll = ready["checks"]["leases"]["discovery-poll"]
    assert poll["holder"] == harness.app[POLLER].holder and poll["mine"] is True
    assert ready["checks"]["leases"]["delivery"] == {"holder": None}
    text = await (await harness.client.get("/metrics")).text()
    assert 'bot_lease_held{lease="discovery-poll"} 1.0' in text
    pending = await harness.app[STORE].count_outbox(status="pending")
    assert f'bot_outbox_messages{{status="pending"}} {float(pending)}' in text and pending > 0
