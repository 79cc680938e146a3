"""Bot Connector 429s without ``Retry-After`` (issue 19): full-jitter backoff per conversation and
per tenant, ``Retry-After`` honoured when given; the connector client's status mapping.

In-process: the rate limiter runs on a fake monotonic clock whose ``sleep`` moves it, and the
connector client on an ``httpx.MockTransport``-like fetcher; then over loopback on the emulator
with a fault rule that answers 429 without the header.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from bot.clock import ManualClock
from bot.notify.delivery import RETRY_CAP_S, DeliveryMetrics, OutboxWorker
from bot.notify.ratelimit import BackoffPolicy, RateLimiter, TeamsRateLimits
from bot.teams.connector import (
    ConnectorClient,
    ConnectorError,
    ConnectorForbidden,
    ConnectorNotFound,
    ConnectorRetryable,
    ConnectorThrottled,
)
from bot.web.keys import CLOCK, CONNECTOR, DISCOVERY, MICROSOFT, STORE
from emulator.faults import FaultRule
from emulator.seeds import DEMO_EXPECTED_ASSIGNMENTS
from tests.bot_harness import BotOnEmulator, bot_on_emulator


class FakeTime:
    """A monotonic clock that only ``sleep`` moves, and the sleeps asked for."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Highest(random.Random):
    """Draws the top of every range: the backoff's ceiling, to check how it grows."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _limiter(time: FakeTime, rng: random.Random | None = None) -> RateLimiter:
    return RateLimiter(
        TeamsRateLimits(),
        monotonic=time.monotonic,
        sleep=time.sleep,
        backoff=BackoffPolicy(),
        rng=rng or Highest(),
    )


async def test_a_lone_429_without_retry_after_pauses_only_its_conversation() -> None:
    time = FakeTime()
    limiter = _limiter(time, random.Random(7))
    delay = limiter.throttled("a:one", None)
    assert 0 <= delay <= BackoffPolicy().conversation_base_s
    # Another conversation goes at once; the throttled one waits out its pause.
    await limiter.acquire("a:two")
    assert time.slept == []
    await limiter.acquire("a:one")
    assert time.slept == [pytest.approx(delay)] or delay == 0
    assert limiter.tenant_backoffs == 0 and limiter.throttled_without_retry_after == 1


async def test_429s_in_a_row_double_the_ceiling_up_to_the_cap_and_a_success_resets() -> None:
    time = FakeTime()
    limiter = _limiter(time)
    policy = BackoffPolicy()
    ceilings = []
    for _ in range(9):
        ceilings.append(limiter.throttled("a:one", None))
        time.now += ceilings[-1] + 0.001  # the next 429 comes after the pause ended
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert max(ceilings) == policy.conversation_cap_s
    # A 429 to a call sent before the pause began shares that pause instead of doubling it.
    first = limiter.throttled("a:two", None)
    assert limiter.throttled("a:two", None) == pytest.approx(first)
    limiter.succeeded("a:one")
    assert limiter.throttled("a:one", None) == 1.0


async def test_429s_on_several_conversations_at_once_slow_the_whole_tenant() -> None:
    time = FakeTime()
    limiter = _limiter(time)
    policy = BackoffPolicy()
    for n in range(policy.tenant_quorum - 1):
        limiter.throttled(f"a:{n}", None)
    assert limiter.tenant_backoffs == 0
    await limiter.acquire("a:elsewhere")
    assert time.slept == []
    # One more conversation within the window: tenant-wide, every conversation waits.
    delay = limiter.throttled("a:last", None)
    assert limiter.tenant_backoffs == 1 and delay >= policy.tenant_base_s
    await limiter.acquire("a:quiet")
    assert time.slept and time.slept[0] == pytest.approx(policy.tenant_base_s)
    # The next tenant-wide burst after the pause doubles the tenant's pause.
    time.now += 5
    for n in range(policy.tenant_quorum):
        limiter.throttled(f"b:{n}", None)
    assert limiter.tenant_backoffs == 2
    start = time.now
    await limiter.acquire("a:quiet2")
    assert time.now - start == pytest.approx(2 * policy.tenant_base_s)


async def test_a_429_when_creating_a_chat_slows_the_tenant() -> None:
    time = FakeTime()
    limiter = _limiter(time)
    limiter.throttled(None, None)
    assert limiter.tenant_backoffs == 1
    await limiter.acquire("a:any")
    assert time.slept == [pytest.approx(BackoffPolicy().tenant_base_s)]


async def test_retry_after_is_honoured_when_the_answer_has_one() -> None:
    time = FakeTime()
    limiter = _limiter(time)
    assert limiter.throttled("a:one", 7.5) == 7.5
    assert limiter.throttled_without_retry_after == 0
    await limiter.acquire("a:one")
    assert time.slept == [pytest.approx(7.5)]
    # Honoured, not counted as a failure in a row: no exponential growth from it.
    time.now += 1
    assert limiter.throttled("a:one", None) == 1.0


class Answers:
    """A fetcher (the connector client's transport) answering from a list."""

    def __init__(self, *responses: httpx.Response) -> None:
        self._responses = list(responses)
        self.calls = 0

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout_s: float,
    ) -> httpx.Response:
        self.calls += 1
        return self._responses.pop(0)


def _error(status: int, code: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": "m"}}, headers=dict(headers or {})
    )


async def _send(response: httpx.Response) -> ConnectorError:
    client = ConnectorClient(Answers(response), bot_app_id="app", tokens=None)
    with pytest.raises(ConnectorError) as caught:
        await client.send(
            service_url="https://smba.example/", conversation_id="a:1", activity={"type": "message"}
        )
    assert caught.value.conversation_id == "a:1"
    return caught.value


async def test_the_connector_client_reads_retry_after_only_when_it_is_there() -> None:
    plain = await _send(_error(429, "Throttled"))
    assert isinstance(plain, ConnectorThrottled) and plain.retry_after_s is None
    seconds = await _send(_error(429, "Throttled", {"Retry-After": "2.5"}))
    assert isinstance(seconds, ConnectorThrottled) and seconds.retry_after_s == 2.5
    later = datetime.now(UTC).replace(microsecond=0)
    dated = await _send(
        _error(429, "Throttled", {"Retry-After": format_datetime(later, usegmt=True)})
    )
    assert isinstance(dated, ConnectorThrottled) and dated.retry_after_s is not None
    assert 0 <= dated.retry_after_s <= 1
    junk = await _send(_error(429, "Throttled", {"Retry-After": "soon"}))
    assert isinstance(junk, ConnectorThrottled) and junk.retry_after_s is None


@pytest.mark.parametrize("status", [408, 412, 502, 503, 504])
async def test_statuses_teams_says_to_retry_are_retryable(status: int) -> None:
    assert isinstance(await _send(_error(status, "Busy")), ConnectorRetryable)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ConnectorError),
        (403, ConnectorForbidden),
        (404, ConnectorNotFound),
        (413, ConnectorError),
        (500, ConnectorError),
    ],
)
async def test_statuses_teams_says_not_to_retry_are_not(
    status: int, kind: type[ConnectorError]
) -> None:
    error = await _send(_error(status, "No"))
    assert type(error) is kind and not isinstance(error, ConnectorRetryable)


# -- over loopback --------------------------------------------------------------------------------


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path, clock=ManualClock(datetime.now(UTC))) as running:
        yield running


async def _worker_with_chats(
    harness: BotOnEmulator, time: FakeTime
) -> tuple[OutboxWorker, RateLimiter]:
    """An outbox worker on a fake monotonic clock, after discovery, every reviewer with a chat."""
    app = harness.app
    limiter = RateLimiter(monotonic=time.monotonic, sleep=time.sleep, rng=random.Random(3))
    side = app[MICROSOFT]
    worker = OutboxWorker(
        store=app[STORE],
        connector=app[CONNECTOR],
        limiter=limiter,
        clock=app[CLOCK],
        tenant_id=side.tenant_id,
        service_url=side.service_url,
        metrics=DeliveryMetrics(None),
    )
    await app[DISCOVERY].run_once()
    connector = harness.cloud.connector
    for reviewer in DEMO_EXPECTED_ASSIGNMENTS:
        connector.note_app_installed(user_oid=reviewer, user_name="R", installation_id=reviewer)
    await connector.drain_deliveries()
    return worker, limiter


async def test_429s_without_retry_after_are_backed_off_and_every_card_arrives_once(
    harness: BotOnEmulator,
) -> None:
    app = harness.app
    time = FakeTime()
    worker, limiter = await _worker_with_chats(harness, time)
    connector = harness.cloud.connector
    # Every reviewer has a chat; then sends are refused now and then with a bare 429.
    rule = harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=r"/activities$",
            status=429,
            omit_retry_after=True,
            probability=0.5,
            seed=11,
            remaining=8,
        )
    )
    store = app[STORE]
    for _ in range(40):
        await worker.run_once()
        if await store.count_outbox(status="pending") == 0:
            break
        # Rows throttled wait for their backoff in the store: move the store's time past it.
        app[CLOCK].advance(timedelta(seconds=BackoffPolicy().conversation_cap_s))
    assert harness.cloud.faults.fired(rule) == 8
    assert limiter.throttled_without_retry_after == 8
    assert await store.count_outbox(status="pending") == 0
    assert await store.count_outbox(status="failed") == 0
    for reviewer, reviews in DEMO_EXPECTED_ASSIGNMENTS.items():
        cards = [m for m in connector.messages_to(reviewer) if m.activity.get("attachments")]
        assert len(cards) == len(reviews), reviewer


@pytest.mark.parametrize("retry_after", ["1000000000000", "2592000"], ids=["huge", "30-days"])
async def test_a_429s_retry_after_is_capped_like_every_other_backoff(
    harness: BotOnEmulator, retry_after: str
) -> None:
    """A huge ``Retry-After`` would overflow a date (the worker pass failing every lease), a
    merely large one (weeks) park a first card past its review: either waits at most
    ``RETRY_CAP_S`` (15 minutes)."""
    app = harness.app
    worker, _ = await _worker_with_chats(harness, FakeTime())
    harness.cloud.faults.add(
        FaultRule(
            kind="status",
            service="connector",
            method="POST",
            path_regex=r"/activities$",
            status=429,
            retry_after_header=retry_after,
            remaining=1,
        )
    )
    now = app[CLOCK].now()
    await worker.run_once()
    pending = await app[STORE].list_outbox(status="pending")
    assert pending, "the throttled card should be queued again"
    latest = max(m.not_before for m in pending)
    assert latest <= now + timedelta(seconds=RETRY_CAP_S + 1)
