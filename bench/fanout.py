"""``python -m bench fanout``: first notifications to 2,000 reviewers under the Teams limits.

Two runs, each with the emulated cloud in a child process (``bench._cloud``) and the real app
(``create_app(settings, workers=False)``) in this one:

1. **Limited.** The emulated Bot Connector enforces the Teams limits (50 requests/s per app per
   tenant; 7/1 s, 8/2 s, 60/30 s, 1800/h per conversation) with 429 + ``Retry-After``.
   ``app[OUTBOX]`` (the app's own worker and rate limiter) delivers one review card to each
   reviewer. Reported: the rate of sends the connector *accepted*, over the run, as a fraction
   of 50/s; the 429s it answered; and how many of them went unhandled (a message that ended
   ``failed`` in the outbox, or a reviewer who did not get exactly one card).
2. **Lifted.** The connector has no limits (``TeamsLimits.unlimited()``) and an
   :class:`~bot.notify.OutboxWorker` built like the app's, with ``RateLimiter(
   TeamsRateLimits.scaled(1000))``: the bot's own ceiling, as a ratio to 50/s.

Set-up, not measured: every reviewer already has the app installed and a stored conversation
reference (as the ``installationUpdate`` handler stores it), so **conversation creation and the
Graph install path are excluded**: every connector call measured is a send. The store holds one
running review in which each reviewer has ``--items`` pending items, and one "new card" outbox
row per reviewer (what discovery's ``Assigned`` event queues).

**429s without ``Retry-After``** (issue 19): Teams documents no ``Retry-After`` on its 429s, so
the limited run also meets some: an emulator fault rule refuses a few sends (each with
probability :data:`BARE_429_PROBABILITY`, :data:`BARE_429_COUNT` in all, early in the run)
with a bare 429, which the bot must back off from on its own (full jitter, per conversation and
per tenant) and still deliver every card exactly once. ``backoff_without_retry_after`` is
measured, not assumed: true only when the bot's own counter saw such 429s and the run then
lost, failed and duplicated nothing.

Last line: ``{"rate_fraction", "unhandled_429", "max_rate_ratio",
"backoff_without_retry_after"}``. Targets (DESIGN §7): rate_fraction ≥ 0.9 with 0 unhandled
429s; max_rate_ratio ≥ 10; backoff_without_retry_after true. ``--quick``: 150 reviewers.
``--replicas N --database postgresql://…`` runs N app replicas on a fresh PostgreSQL database
(created on that server, dropped afterwards): they share the Teams tenant limit through the
``delivery`` lease, so the rate fraction must hold as for one process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.engine import make_url

from app import create_app
from bench._common import (
    CloudProcess,
    bot_settings,
    fresh_postgres_database,
    print_figures,
    started_app,
)
from bot.notify.delivery import DeliveryMetrics, OutboxWorker, enqueue_review_card
from bot.notify.ratelimit import RateLimiter, TeamsRateLimits
from bot.store import InstanceRecord, ItemRecord, Store
from bot.web.keys import CLOCK, CONNECTOR, LIMITER, MICROSOFT, OUTBOX, REGISTRY, STORE

TEAMS_TENANT_LIMIT_PER_S = 50.0
RATE_FRACTION_TARGET = 0.9
MAX_RATE_RATIO_TARGET = 10.0
#: The bare 429s (no Retry-After) the limited run meets, on top of any the limits cause.
BARE_429_PROBABILITY = 0.03
BARE_429_COUNT = 6
INSTANCE_ID = "f0000000-0000-4000-8000-00000000fa01"
# Time allowed for the outbox to drain, per message, beyond the ideal rate (429 retries).
_DRAIN_SLACK_S = 60.0

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    reviewers: int
    sends_accepted: int
    connector_rate_per_s: float
    wall_s: float
    throttled: int
    throttled_first_2s: int
    failed: int
    lost: int
    duplicated: int
    bare_429s_met: int = 0
    tenant_backoffs: int = 0

    @property
    def unhandled(self) -> int:
        return self.failed + self.lost


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench fanout", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="150 reviewers")
    parser.add_argument("--reviewers", type=int, default=2_000)
    parser.add_argument("--items", type=int, default=3, help="pending items per reviewer")
    parser.add_argument(
        "--replicas",
        type=int,
        default=None,
        help="app replicas sharing the store (needs --database)",
    )
    parser.add_argument(
        "--database",
        default=None,
        help="PostgreSQL URL; each run uses a fresh database on that server",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.reviewers = 150
    return args


def _reviewer_ids(count: int) -> list[str]:
    # The generated seed's user ids: reviewers are users 0..count-1 (emulator.seeds._cid).
    return [f"{0xA001:08x}-0000-4000-8000-{n:012x}" for n in range(count)]


async def _seed_store(
    store: Store,
    *,
    tenant_id: str,
    reviewers: Sequence[str],
    items_per_reviewer: int,
    install: dict[str, Any],
    service_url: str,
    bot_id: str,
    now: datetime,
) -> None:
    """What install + discovery leave in the store: references, one review, items, assignments."""
    for oid in reviewers:
        await store.save_conversation_reference(
            tenant_id=tenant_id,
            user_oid=oid,
            reference={
                "serviceUrl": service_url,
                "channelId": "msteams",
                "conversation": {
                    "id": install["conversations"][oid],
                    "conversationType": "personal",
                    "tenantId": tenant_id,
                },
                "user": {"id": install["user_ids"][oid], "aadObjectId": oid},
                "bot": {"id": bot_id},
            },
        )
    await store.upsert_instances(
        instances=[
            InstanceRecord(
                instance_id=INSTANCE_ID,
                definition_id=INSTANCE_ID,
                display_name="Quarterly access review: Finance apps",
                status="InProgress",
                start_at=now - timedelta(days=2),
                end_at=now + timedelta(days=12),
                data={
                    "definitionName": "Quarterly access review: Finance apps",
                    "descriptionForReviewers": "Keep access only for people who still need it.",
                    "settings": {"recommendationsEnabled": True},
                    "multiStage": False,
                    "stageCount": 0,
                },
            )
        ]
    )
    items: list[ItemRecord] = []
    pairs: list[tuple[str, str]] = []
    for r, oid in enumerate(reviewers):
        for k in range(items_per_reviewer):
            n = r * items_per_reviewer + k
            item_id = f"f0000000-0000-4000-8001-{n:012x}"
            items.append(
                ItemRecord(
                    instance_id=INSTANCE_ID,
                    item_id=item_id,
                    recommendation=("Approve", "Deny", "NotAvailable")[n % 3],
                    data={
                        "principal": {
                            "id": f"f0000000-0000-4000-8002-{n:012x}",
                            "displayName": f"Member {n}",
                            "userPrincipalName": f"member.{n}@fabrikam.onmicrosoft.com",
                            "type": "user",
                            "isGuest": n % 7 == 0,
                            "appId": "",
                        },
                        "resource": {
                            "id": "f0000000-0000-4000-8003-000000000001",
                            "displayName": "Finance apps",
                            "type": "group",
                        },
                        "lastSignIn": (now - timedelta(days=n % 60)).isoformat(),
                        "reviewerSource": "primary",
                    },
                )
            )
            pairs.append((oid, item_id))
    await store.upsert_items(items=items)
    await store.replace_assignments(instance_id=INSTANCE_ID, pairs=pairs)
    for oid in reviewers:
        await enqueue_review_card(
            store, tenant_id=tenant_id, reviewer_oid=oid, instance_id=INSTANCE_ID, edit=False
        )


async def _one_run(
    *,
    reviewers: int,
    items: int,
    limits: str,
    own_worker: bool,
    replicas: int = 1,
    database: str | None = None,
    bare_429s: bool = False,
) -> RunResult:
    config = {
        "seed": "generated",
        # One tiny review in the emulator's tenant: what matters is its reviewer users.
        "seed_params": {"reviewers": reviewers, "decisions": 1, "instances": 1},
        "teams_limits": limits,
    }
    oids = _reviewer_ids(reviewers)
    async with CloudProcess(config) as cloud, contextlib.AsyncExitStack() as stack:
        install = await cloud.call("install", users=oids)
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fanout-"))
        # Replicas of one deployment share the token-cache key (any may act on another's cache).
        overrides: dict[str, Any] = {
            "token_cache_key": base64.urlsafe_b64encode(os.urandom(32)).decode()
        }
        if database is not None:
            overrides["database_url"] = await stack.enter_async_context(
                fresh_postgres_database(database)
            )
        apps = []
        for _ in range(replicas):
            # Replicas: app instances sharing one store; each has its own pool, worker id and
            # rate limiter, as separate processes would. How they share the Teams limit (the
            # delivery lease) is what is measured.
            app = create_app(bot_settings(cloud.info, Path(tmp), **overrides), workers=False)
            await stack.enter_async_context(started_app(app, serve=False))
            apps.append(app)
        app = apps[0]
        side = app[MICROSOFT]
        store = app[STORE]
        await _seed_store(
            store,
            tenant_id=side.tenant_id,
            reviewers=oids,
            items_per_reviewer=items,
            install=install,
            service_url=cloud.info["connector_url"],
            bot_id=side.bot_app_id,
            now=app[CLOCK].now(),
        )
        workers = [_lifted_worker(a) if own_worker else a[OUTBOX] for a in apps]
        await cloud.call("reset")
        if bare_429s and BARE_429_COUNT:
            await _add_bare_429s(cloud.info["connector_url"])
        started = time.perf_counter()
        await _drain(workers, store, expected=reviewers)
        wall_s = time.perf_counter() - started
        failed = await store.count_outbox(status="failed")
        stats = await cloud.call("connector_stats")
        bare_429s_met = sum(_counter(a, "delivery_throttled_without_retry_after") for a in apps)
        tenant_backoffs = sum(a[LIMITER].tenant_backoffs for a in apps)
    times = sorted(stats["sends_accepted_at"])
    span_s = times[-1] - times[0] if len(times) > 1 else 0.0
    per_user: dict[str, int] = stats["sends_per_user"]
    first = min([*times, *stats["throttled_at"]], default=0.0)
    early_429 = sum(1 for at in stats["throttled_at"] if at - first < 2.0)
    return RunResult(
        reviewers=reviewers,
        sends_accepted=len(times),
        connector_rate_per_s=(len(times) - 1) / span_s if span_s > 0 else float("nan"),
        wall_s=wall_s,
        throttled=int(stats["throttled"]),
        throttled_first_2s=early_429,
        failed=failed,
        lost=sum(1 for oid in oids if per_user.get(oid, 0) == 0),
        duplicated=sum(1 for oid in oids if per_user.get(oid, 0) > 1),
        bare_429s_met=bare_429s_met,
        tenant_backoffs=tenant_backoffs,
    )


async def _add_bare_429s(connector_url: str) -> None:
    """An emulator fault rule: now and then a send is refused with a 429 without Retry-After."""
    rule = {
        "kind": "status",
        "service": "connector",
        "method": "POST",
        "path_regex": r"^/v3/conversations/[^/]+/activities$",
        "status": 429,
        "omit_retry_after": True,
        "probability": BARE_429_PROBABILITY,
        "remaining": BARE_429_COUNT,
        "seed": 19,
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(connector_url.rstrip("/") + "/_emulator/faults", json=rule) as r:
            if r.status != 201:
                raise RuntimeError(f"the emulator refused the fault rule: {r.status}")


def _counter(app: web.Application, name: str) -> int:
    """The value of one of the app's Prometheus counters (0 if it has none)."""
    return int(
        sum(
            sample.value
            for metric in app[REGISTRY].collect()
            if metric.name == name
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
    )


def _lifted_worker(app: web.Application) -> OutboxWorker:
    """An outbox worker like the app's, whose limiter allows 1000× the Teams limits."""
    side = app[MICROSOFT]
    return OutboxWorker(
        store=app[STORE],
        connector=app[CONNECTOR],
        limiter=RateLimiter(TeamsRateLimits.scaled(1000)),
        clock=app[CLOCK],
        tenant_id=side.tenant_id,
        service_url=side.service_url,
        metrics=DeliveryMetrics(None),
    )


async def _drain(workers: list[OutboxWorker], store: Store, *, expected: int) -> None:
    """Run the workers (one per replica) until no message is pending or in flight."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + expected / TEAMS_TENANT_LIMIT_PER_S * 2 + _DRAIN_SLACK_S
    while True:
        handled = sum(await asyncio.gather(*(worker.run_once() for worker in workers)))
        waiting = await store.count_outbox(status="pending") + await store.count_outbox(
            status="in_flight"
        )
        if waiting == 0:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"{waiting} messages still undelivered at the deadline")
        if handled == 0:
            # Only retries scheduled for later remain (a 429's Retry-After): look again soon.
            await asyncio.sleep(0.05)


async def _run(args: argparse.Namespace) -> int:
    replicas = args.replicas or 1
    if replicas > 1 and args.database is None:
        print("bench fanout: --replicas needs --database postgresql://… (replicas share a store)")
        return 2
    limited = await _one_run(
        reviewers=args.reviewers,
        items=args.items,
        limits="default",
        own_worker=False,
        replicas=replicas,
        database=args.database,
        bare_429s=True,
    )
    lifted = await _one_run(
        reviewers=args.reviewers,
        items=args.items,
        limits="unlimited",
        own_worker=True,
        replicas=replicas,
        database=args.database,
    )
    rate_fraction = limited.connector_rate_per_s / TEAMS_TENANT_LIMIT_PER_S
    max_rate_ratio = lifted.connector_rate_per_s / TEAMS_TENANT_LIMIT_PER_S
    # Measured: the bot met 429s that carried no Retry-After, and still delivered every card
    # exactly once.
    backoff_without_retry_after = (
        limited.bare_429s_met > 0 and limited.unhandled == 0 and limited.duplicated == 0
    )
    print(
        f"fanout: first review card to {args.reviewers} reviewers ({args.items} items each); "
        "emulator in a child process; conversations existed (creation and install excluded)"
        + (
            f"; {replicas} replicas (app instances in this process) on {make_url(args.database).render_as_string(hide_password=True)}"
            if args.database
            else ""
        )
    )
    print(
        f"  with Teams limits: {limited.sends_accepted} sends accepted at "
        f"{limited.connector_rate_per_s:.1f}/s at the connector = {rate_fraction:.1%} of "
        f"{TEAMS_TENANT_LIMIT_PER_S:g}/s (target >= {RATE_FRACTION_TARGET:.0%}); "
        f"wall {limited.wall_s:.1f} s"
    )
    print(
        f"    429s received: {limited.throttled} ({limited.throttled_first_2s} in the first 2 s); "
        f"unhandled: {limited.unhandled} "
        f"(failed {limited.failed}, lost {limited.lost}); reviewers with >1 card: "
        f"{limited.duplicated}"
    )
    print(
        f"    429s without Retry-After met by the bot: {limited.bare_429s_met} (a fault rule "
        f"refuses up to {BARE_429_COUNT} sends, each with probability {BARE_429_PROBABILITY:g}); "
        f"tenant-wide pauses: {limited.tenant_backoffs}; recovered: "
        f"{'yes' if backoff_without_retry_after else 'no'}"
    )
    print(
        f"  limits lifted (connector unlimited, RateLimiter scaled x1000): "
        f"{lifted.sends_accepted} sends at {lifted.connector_rate_per_s:.0f}/s = "
        f"{max_rate_ratio:.1f}x the tenant limit (target >= {MAX_RATE_RATIO_TARGET:g}x); "
        f"wall {lifted.wall_s:.1f} s; failed {lifted.failed}, lost {lifted.lost}"
    )
    print_figures(
        {
            "rate_fraction": round(rate_fraction, 3),
            "unhandled_429": limited.unhandled,
            "max_rate_ratio": round(max_rate_ratio, 2),
            "backoff_without_retry_after": backoff_without_retry_after,
        }
    )
    problems = [
        f"{run}: {r.unhandled} undelivered, {r.duplicated} duplicated"
        for run, r in (("limited", limited), ("lifted", lifted))
        if r.unhandled or r.duplicated
    ]
    if problems:
        print("ERROR: " + "; ".join(problems))
        return 1
    return 0


def main(argv: list[str]) -> int:
    """Run the benchmark; exit 1 if a card was lost, failed or sent twice; 2 for bad options."""
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(_run(_parse(argv)))
