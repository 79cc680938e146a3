"""Issue 10: three replicas on one PostgreSQL database and one emulated cloud; one SIGKILLed mid-run.

Done when every assigned reviewer is notified exactly once per review, every clicked decision
reaches Graph exactly once (as the clicker), polling resumes on another replica within two lease
periods, and no replica acts under an expired lease.

The scenario (each step waits for a condition with a deadline, never for a fixed time):

1. A database of its own (``t_<random>``) and the emulator on a thread of the test with a generated
   tenant (see ``SEED_PARAMS``). Three ``app.py`` replicas start together on the empty database.
2. ``/readyz`` of all three names one holder of ``discovery-poll``: the victim. (Whether it also
   holds ``delivery`` is up to the race at start; the summary says which case ran. When it does,
   it dies with card rows claimed — the hardest case.)
3. While the cards go out, six reviewers click Approve/Deny/Don't know on the three replicas
   (first click with the Teams SSO token).
4. With the fan-out still running, the poll holder is SIGKILLed. The survivors' ``/readyz`` shows
   who takes ``discovery-poll``, and when. Meanwhile six more clicks go to the survivors, half by
   reviewers whose sign-in another replica (the dead one too) cached, half with a new SSO token.
5. An item is decided "in My Access" (in the emulator's tenant); the new poll holder must see it.
6. Every first card gets out — rows the victim had claimed once their claim lease runs out.

Then every check runs and all failures are listed together: one review card per (reviewer,
review) in the connector (duplicates allowed only from the kill itself, see ``KILL_WINDOW_S``);
one PATCH per clicked decision in Graph's log and ``reviewedBy`` = the clicker in the tenant; no
write nobody clicked; fences in the sampled lease rows only grow; every discovery cycle a replica
logged fell inside a ``discovery-poll`` lease it held; every card reached the connector while its
sender held ``delivery``; the survivors never logged a lost poll lease.

What "no replica acts under an expired lease" is checked against, honestly: the lease rows are
sampled every 20 ms (a renewal is seen unless two fall between samples, and a renewal only
extends), discovery cycles are read back from each replica's own log (start = end - duration), and
sends from the connector's record joined to the outbox row that recorded them. Discovery writes
inside a cycle and sends that no row recorded are checked at that grain, not one by one.

Why a generated tenant of 90 reviewers and 200 (reviewer, review) pairs: the fan-out then takes
several seconds at the Teams tenant rate (a new chat and a Graph app install per reviewer), long
enough to click during it and kill in the middle of it, and the run still ends within a minute.
The demo seed (a dozen people) is sent in a blink.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.store import open_store
from emulator.server import EmulatorCloud, EmulatorConfig
from emulator.teams_client import TeamsClient
from emulator.threaded import EmulatorThread
from tests.replicas.cluster import (
    CLAIM_CAP_VARIABLE,
    CardSend,
    GraphLog,
    LeaseRecorder,
    Pair,
    Replica,
    accepted_review_cards,
    discovery_cycles,
    eventually,
    fence_problems,
    free_port,
    fresh_database,
    held_intervals,
    lease_lost_lines,
    log_entries,
    outside_intervals,
    replica_environment,
    review_card_sends,
    sends_outside_lease,
    visible_review_cards,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SEED_PARAMS: dict[str, Any] = {"decisions": 300, "reviewers": 100, "instances": 80}
POLL_INTERVAL_S = 2.0
LEASE_TTL_S = 6.0
# The delivery lease lives half as long as the poll lease (app.py); reminders 180 s (app.py).
DELIVERY_TTL_S = LEASE_TTL_S / 2
# Card rows the killed replica had claimed are taken again after this (CLAIM_LEASE_S).
CLAIM_CAP_S = 20.0
# Duplicates a kill may cause: a card the connector accepted in the instant before the killed
# replica recorded it is sent again by a survivor (the Bot Connector has no idempotency key). Seen
# 0-10 times per kill of the delivery holder, every first copy from 0.75 s before to just after
# the kill (a request in flight lands after it), so: any number of duplicates whose first copy reached
# the connector within KILL_WINDOW_S of the kill, and none other. (The brief asked for at most one;
# the report says why that cannot hold.)
KILL_WINDOW_S = 2.0
INVOKE_TIMEOUT_S = 15.0
CLICKS_BEFORE_KILL = 6
CLICKS_AFTER_KILL = 6
DECISIONS = ("Approve", "Deny", "DontKnow")
# How long after its lease ended a card the replica began to send may reach the connector.
SEND_SLACK_S = 1.0
# Time stamps in the logs are in milliseconds; a cycle's duration is rounded to them.
LOG_SLACK_S = 0.01


def expected_pairs(cloud: EmulatorCloud) -> set[Pair]:
    """Who is owed a review card, by the emulator's own resolution of the review scopes (running
    instances only: recurring reviews also list their earlier, ended recurrences)."""
    tenant = cloud.tenant
    return {
        (reviewer.lower(), instance.id)
        for instance in tenant.instances.values()
        if tenant.instance_status(instance) == "InProgress"
        for reviewer in tenant.assignments(instance)
    }


def choose_items(
    cloud: EmulatorCloud,
    delivered: set[Pair],
    *,
    count: int,
    taken: set[str],
    reviewers: list[str] | None = None,
    at_least: int | None = None,
) -> list[tuple[str, str, str]]:
    """``count`` (reviewer, instance, item) to decide: items nobody decided yet, each reviewed only
    by people whose card for that review is already in their chat (so a decision never takes away
    the work of someone still waiting for a first card). Distinct reviewers, from ``reviewers``
    when given. Fewer than ``count``, but no fewer than ``at_least``, when given: which of a few
    reviewers still have an item whose every reviewer has their card depends on the fan-out's
    timing. Runs on the emulator's thread.
    """
    tenant = cloud.tenant
    # Reviewers with the most items first: they have work left for a second click later.
    load: Counter[str] = Counter()
    for instance in tenant.instances.values():
        for reviewer, item_ids in tenant.assignments(instance).items():
            load[reviewer] += len(item_ids)
    candidates: list[tuple[int, str, str, str]] = []
    for instance in tenant.instances.values():
        for item in instance.decisions.values():
            if item.id in taken or item.decision != "NotReviewed":
                continue
            item_reviewers = tenant.reviewers_of(instance, item)
            if not item_reviewers or any(
                (r.lower(), instance.id) not in delivered for r in item_reviewers
            ):
                continue
            candidates.extend(
                (-load[r], r, instance.id, item.id)
                for r in item_reviewers
                if reviewers is None or r in reviewers
            )
    chosen: list[tuple[str, str, str]] = []
    used_reviewers: set[str] = set()
    for _load, reviewer, instance_id, item_id in sorted(candidates):
        if reviewer in used_reviewers or item_id in taken:
            continue
        chosen.append((reviewer, instance_id, item_id))
        used_reviewers.add(reviewer)
        taken.add(item_id)
        if len(chosen) == count:
            return chosen
    if at_least is not None and len(chosen) >= at_least:
        return chosen
    raise AssertionError(f"found only {len(chosen)} of {count} items to decide")


async def test_three_replicas_share_the_work_and_survive_a_kill(tmp_path: Path) -> None:
    async with fresh_database() as database_url:
        emulator = EmulatorThread(EmulatorConfig(seed="generated", seed_params=SEED_PARAMS))
        # Teams gives up on an invoke after 10-15 s; so does this client.
        async with emulator as cloud, httpx.AsyncClient(timeout=INVOKE_TIMEOUT_S) as http:
            await _scenario(tmp_path, database_url, emulator, cloud, http)


async def _scenario(
    tmp_path: Path,
    database_url: str,
    emulator: EmulatorThread,
    cloud: EmulatorCloud,
    http: httpx.AsyncClient,
) -> None:
    connector = cloud.connector
    expected = await emulator.arun(expected_pairs, cloud)
    reviewers = {reviewer for reviewer, _ in expected}
    assert 150 <= len(expected) <= 250, len(expected)
    token_cache_key = base64.urlsafe_b64encode(os.urandom(32)).decode()

    def make_replica(name: str) -> Replica:
        port = free_port()
        env = replica_environment(
            cloud,
            database_url=database_url,
            token_cache_key=token_cache_key,
            port=port,
            extra={
                "POLL_INTERVAL_S": str(POLL_INTERVAL_S),
                "LEASE_TTL_S": str(LEASE_TTL_S),
                CLAIM_CAP_VARIABLE: str(CLAIM_CAP_S),
            },
        )
        return Replica(name, env, port=port, workdir=tmp_path / name)

    replicas = {name: make_replica(name) for name in ("a", "b", "c")}
    a = replicas["a"]
    teams = {
        name: TeamsClient(
            cloud.identity,
            cloud.connector_url,
            replica.endpoint,
            cloud.bot_app_id,
            cloud.tenant_id,
            http,
            conversation_id_for=connector.conversation_id_for,
        )
        for name, replica in replicas.items()
    }
    recorder = LeaseRecorder(database_url)
    graph_log = GraphLog(emulator)
    # replica name -> every holder id /readyz called "mine" (poller and outbox worker ids).
    holder_ids: dict[str, set[str]] = {name: set() for name in replicas}
    watch_stop = asyncio.Event()

    async def watch_readyz() -> None:
        """Learn which holder ids belong to which replica while they run."""
        while not watch_stop.is_set():
            for name, replica in replicas.items():
                if not replica.alive():
                    continue
                try:
                    leases = await replica.leases(http)
                except (httpx.TransportError, AssertionError):
                    continue
                holder_ids[name].update(
                    str(info["holder"]) for info in leases.values() if info.get("mine")
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch_stop.wait(), timeout=0.5)

    async def accepted() -> Counter[Pair]:
        counts: Counter[Pair] = await emulator.arun(accepted_review_cards, connector)
        return counts

    store = None
    watcher: asyncio.Task[None] | None = None
    not_all_sent = ""
    try:
        await recorder.start()
        await graph_log.start()

        # 1. Three replicas start together on the empty database (one migrates, two wait).
        connector.bot_endpoint = a.endpoint  # installs made through Graph are announced here
        for replica in replicas.values():
            replica.start()
        await asyncio.gather(*(replica.wait_healthy(http) for replica in replicas.values()))
        watcher = asyncio.create_task(watch_readyz(), name="readyz-watcher")
        store = await open_store(database_url, migrate=False, pool_size=2)

        # 2. Who polls? Exactly one replica says "mine"; the others name the same holder.
        found: dict[str, Any] = {}

        async def one_polls() -> bool:
            views = {name: await r.leases(http) for name, r in replicas.items()}
            mine = [name for name, leases in views.items() if leases["discovery-poll"].get("mine")]
            holders = {str(leases["discovery-poll"].get("holder")) for leases in views.values()}
            if len(mine) == 1 and len(holders) == 1:
                found.update(name=mine[0], lease=views[mine[0]]["discovery-poll"])
                return True
            assert len(mine) <= 1, f"two replicas poll: {views}"
            return False

        await eventually(one_polls, timeout_s=20, what="one replica holding discovery-poll")
        victim = replicas[str(found["name"])]
        victim_fence = int(found["lease"]["fence"])
        survivors = [r for r in replicas.values() if r is not victim]

        # 3. Clicks on all three replicas while the cards go out.
        async def some_sent() -> bool:
            return len(await accepted()) >= 0.1 * len(expected)

        await eventually(some_sent, timeout_s=30, what="10 % of the cards sent", interval_s=0.02)
        taken: set[str] = set()
        delivered = set(await accepted())
        before = await emulator.arun(
            lambda: choose_items(cloud, delivered, count=CLICKS_BEFORE_KILL, taken=taken)
        )
        order = itertools.cycle(replicas)
        # (reviewer, instance, item, decision, replica name)
        clicks: list[tuple[str, str, str, str, str]] = [
            (reviewer, instance, item, DECISIONS[n % 3], next(order))
            for n, (reviewer, instance, item) in enumerate(before)
        ]
        answers = await asyncio.gather(
            *(
                _decide(teams[where], reviewer, instance, item, decision, sso=True)
                for reviewer, instance, item, decision, where in clicks
            )
        )

        # 4. Kill the poll holder in the middle of the fan-out.
        connector.bot_endpoint = survivors[0].endpoint
        at_kill = await accepted()
        assert len(at_kill) < 0.9 * len(expected), (
            f"the fan-out was nearly over before the kill ({len(at_kill)}/{len(expected)})"
        )
        victim.kill()
        killed_at = time.monotonic()
        assert victim.killed_at is not None

        async def takeover() -> tuple[str, float, dict[str, Any]]:
            found: dict[str, Any] = {}

            async def someone_polls() -> bool:
                for survivor in survivors:
                    leases = await survivor.leases(http)
                    if leases["discovery-poll"].get("mine"):
                        found.update(name=survivor.name, lease=leases["discovery-poll"])
                        return True
                return False

            await eventually(
                someone_polls,
                timeout_s=2 * LEASE_TTL_S + 5,
                what="a survivor holding discovery-poll",
                interval_s=0.02,
            )
            return str(found["name"]), time.monotonic() - killed_at, dict(found["lease"])

        takeover_task = asyncio.create_task(takeover())
        # Up to half by reviewers who signed in before (on A, B or C: their cached sign-in serves;
        # at least one), the rest by new ones with the SSO token; each to the survivor they did not
        # use before.
        earlier = [click[0] for click in clicks]
        delivered = set(await accepted())
        again = await emulator.arun(
            lambda: choose_items(
                cloud,
                delivered,
                count=CLICKS_AFTER_KILL // 2,
                taken=taken,
                reviewers=earlier,
                at_least=1,
            )
        )
        newcomers = await emulator.arun(
            lambda: choose_items(
                cloud,
                delivered,
                count=CLICKS_AFTER_KILL - len(again),
                taken=taken,
                reviewers=[
                    r for r in sorted({p[0] for p in delivered}) if r not in {x[0] for x in clicks}
                ],
            )
        )
        turns = itertools.cycle([survivor.name for survivor in survivors])
        after: list[tuple[str, str, str, str, str, bool]] = []
        for n, (reviewer, instance, item) in enumerate(again + newcomers):
            first_replica = next((cl[4] for cl in clicks if cl[0] == reviewer), None)
            where = next(turns)
            if where == first_replica:
                where = next(turns)
            after.append((reviewer, instance, item, DECISIONS[(n + 1) % 3], where, n >= len(again)))
        answers += await asyncio.gather(
            *(
                _decide(teams[where], reviewer, instance, item, decision, sso=sso)
                for reviewer, instance, item, decision, where, sso in after
            )
        )
        clicks += [(r, i, item, d, w) for r, i, item, d, w, _sso in after]
        new_holder, takeover_s, new_lease = await takeover_task
        assert takeover_s <= 2 * LEASE_TTL_S, f"takeover took {takeover_s:.1f}s"
        assert int(new_lease["fence"]) > victim_fence

        # 5. Polling resumed: a decision made in My Access after the kill reaches the store.
        delivered = set(await accepted())
        [(elsewhere_by, elsewhere_instance, elsewhere_item)] = await emulator.arun(
            lambda: choose_items(cloud, delivered, count=1, taken=taken)
        )
        await emulator.arun(
            cloud.tenant.record_decision,
            elsewhere_instance,
            elsewhere_item,
            "Deny",
            elsewhere_by,
            "decided in My Access",
        )

        async def seen_by_poller() -> bool:
            item = await store.get_item(instance_id=elsewhere_instance, item_id=elsewhere_item)
            return item is not None and item.decision == "Deny" and item.reviewed_by == elsewhere_by

        resumed_s = await eventually(
            seen_by_poller, timeout_s=3 * POLL_INTERVAL_S + 10, what="the My Access decision"
        )

        # 6. Every first card out, the killed replica's claims included.
        async def all_sent() -> bool:
            for survivor in survivors:
                if not survivor.alive():
                    raise AssertionError(f"{survivor.name} exited:\n{survivor.log_tail()}")
            if set(await accepted()) < expected:
                return False
            for reviewer, instance in expected:
                row = await store.get_outbox(key=f"{reviewer}|{instance}|review|0")
                if row is None or row.status != "done":
                    return False
            return True

        async def progress() -> str:
            missing = sorted(expected - set(await accepted()))
            rows = []
            for reviewer, instance in missing[:5]:
                row = await store.get_outbox(key=f"{reviewer}|{instance}|review|0")
                rows.append(
                    "no row"
                    if row is None
                    else f"{row.status} attempts={row.attempts} result={row.result} "
                    f"error={row.last_error}"
                )
            return f"{len(missing)} cards missing: {list(zip(missing, rows, strict=False))}"

        try:
            await eventually(
                all_sent,
                timeout_s=CLAIM_CAP_S + 30,
                what="every first card sent",
                interval_s=0.1,
                describe=progress,
            )
        except AssertionError as exc:
            # Listed with whatever else went wrong (below), rather than hiding it.
            not_all_sent = str(exc)
        final = await accepted()
        sends = await emulator.arun(review_card_sends, connector)
        visible = await emulator.arun(visible_review_cards, connector, reviewers)
        senders = await _senders(database_url)
        watch_stop.set()
        await watcher
        watcher = None
        await recorder.stop()
        await graph_log.stop()
        decided = await emulator.arun(
            lambda: {
                item: (
                    cloud.tenant.instances[instance].decisions[item].decision,
                    (cloud.tenant.instances[instance].decisions[item].reviewed_by or ("",))[0],
                )
                for _r, instance, item, _d, _w in clicks
            }
        )
    finally:
        watch_stop.set()
        if watcher is not None:
            await watcher
        for replica in replicas.values():
            replica.stop()
        await recorder.stop()
        recorder.write(tmp_path / "leases.txt")
        await graph_log.stop()
        if store is not None:
            await store.close()

    patches = [r for r in graph_log.requests if r[0] == "PATCH"]
    # The delivery holder at the kill was the victim if that holder never renewed afterwards.
    delivery_before_kill = [
        s for s in recorder.of("delivery") if victim.killed_at and s.seen_at <= victim.killed_at
    ]
    victim_sent = bool(delivery_before_kill) and all(
        s.expires_at - timedelta(seconds=DELIVERY_TTL_S) <= victim.killed_at
        for s in recorder.of("delivery")
        if s.holder == delivery_before_kill[-1].holder and victim.killed_at
    )
    summary = (
        f"killed {victim.name} (poll holder; delivery holder too: "
        f"{victim_sent}) at "
        f"{len(at_kill)}/{len(expected)} cards; discovery-poll taken by {new_holder} after "
        f"{takeover_s:.2f}s (bound {2 * LEASE_TTL_S:.0f}s); My Access decision seen "
        f"{resumed_s:.2f}s after it was made; {len(clicks)} clicks, {len(patches)} PATCHes; "
        f"card duplicates {sum(n - 1 for n in final.values())}"
        + "".join(
            f"; {pair} first accepted {(victim.killed_at - first).total_seconds():.3f}s "
            "before the kill"
            for pair, first in _first_copies(sends, final)
            if victim.killed_at is not None
        )
    )
    (tmp_path / "summary.txt").write_text(summary + "\n")

    # Every check runs and every failure is listed: one broken guarantee often explains another.
    problems: list[str] = [not_all_sent] if not_all_sent else []

    # -- notifications: exactly one review card per (reviewer, review) ---------------------------
    if set(final) != expected:
        problems.append(
            f"cards missing: {sorted(expected - set(final))[:5]}; "
            f"cards for no assignment: {sorted(set(final) - expected)[:5]}"
        )
    if visible != final:
        problems.append("the connector's chats and its records disagree")
    duplicates = {pair: n - 1 for pair, n in final.items() if n > 1}
    in_kill_window = {
        pair
        for pair, first in _first_copies(sends, final)
        if victim.killed_at is not None
        and abs((victim.killed_at - first).total_seconds()) <= KILL_WINDOW_S
    }
    unexplained = {pair: n for pair, n in duplicates.items() if pair not in in_kill_window or n > 1}
    if unexplained:
        problems.append(f"cards sent more than once, not by the kill: {unexplained}")

    # -- decisions: each click answered with a card, PATCHed once, as the clicker ----------------
    for answer, (reviewer, _instance, item, decision, where) in zip(answers, clicks, strict=True):
        body = answer.body if isinstance(answer.body, dict) else {}
        if (
            answer.status != 200
            or body.get("statusCode") != 200
            or body.get("type") != "application/vnd.microsoft.card.adaptive"
        ):
            problems.append(f"click on {where} for {item}: HTTP {answer.status} {answer.body}")
        writes = graph_log.patches_of(item)
        if len(writes) != 1 or writes[0][3] not in (200, 204):
            problems.append(f"{item} (clicked on {where}) was PATCHed as {writes}")
        if decided[item] != (decision, reviewer):
            problems.append(f"{item} in Graph is {decided[item]}, clicked {decision} by {reviewer}")
    clicked = {item for _r, _i, item, _d, _w in clicks}
    unclicked = [r for r in patches if not any(r[2].endswith(item) for item in clicked)]
    if unclicked:
        problems.append(f"Graph got writes nobody clicked: {unclicked}")

    # -- leases: fences only grow; every act of a replica within a lease it held -----------------
    for name in ("discovery-poll", "delivery", "reminders"):
        problems.extend(fence_problems(recorder.of(name)))
    poll_held = held_intervals(recorder.of("discovery-poll"), ttl_s=LEASE_TTL_S)
    delivery_held = held_intervals(recorder.of("delivery"), ttl_s=DELIVERY_TTL_S)
    logs = {name: log_entries(replica.log_text()) for name, replica in replicas.items()}
    for name, entries in logs.items():
        held = [span for h in holder_ids[name] for span in poll_held.get(h, [])]
        problems.extend(
            f"{name} ran a discovery cycle outside its poll lease: {start}..{end}"
            for start, end in discovery_cycles(entries)
            if outside_intervals(held, start, end, slack_s=LOG_SLACK_S)
        )
    for survivor in survivors:
        problems.extend(
            f"{survivor.name} lost its poll lease: {line}"
            for line in lease_lost_lines(logs[survivor.name])
        )
    # A send is checked when the connector accepted it; the bot can only make sure it *began*
    # inside the lease, so the moment of arrival may trail the lease by SEND_SLACK_S.
    problems.extend(
        f"card sent outside the sender's delivery lease: {line}"
        for line in sends_outside_lease(sends, senders, delivery_held, slack_s=SEND_SLACK_S)
    )
    assert not problems, summary + "\n" + "\n".join(problems)
    print(summary)


def _first_copies(sends: list[CardSend], counts: Counter[Pair]) -> list[tuple[Pair, datetime]]:
    """When the first copy of each card sent more than once was accepted."""
    return [
        (pair, min(send.at for send in sends if send.pair == pair))
        for pair, n in counts.items()
        if n > 1
    ]


async def _decide(
    teams: TeamsClient, reviewer: str, instance: str, item: str, decision: str, *, sso: bool
) -> Any:
    data = {
        "instanceId": instance,
        "itemId": item,
        "decision": decision,
        "page": 0,
        "justification": "checked in the replica test",
    }
    return await teams.card_action(reviewer, "decide", data, sso=sso)


async def _senders(database_url: str) -> dict[tuple[str, str], str]:
    """(conversation, activity id) -> the worker whose card row recorded sending it.

    Rows that skipped (already sent, nothing to show) say why in ``reason``.
    """
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT claimed_by, result FROM outbox WHERE kind = 'card' AND status = 'done'"
        )
    finally:
        await connection.close()
    senders: dict[tuple[str, str], str] = {}
    for row in rows:
        result = json.loads(row["result"] or "{}")
        if result.get("activityId") and "reason" not in result:
            message = (str(result.get("conversationId") or ""), str(result["activityId"]))
            senders[message] = str(row["claimed_by"])
    return senders
