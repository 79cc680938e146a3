"""``python -m bench discovery``: one full discovery cycle of the real app on a big tenant.

The emulated cloud runs in a child process (``bench._cloud``) with a generated tenant (100,000
pending decisions, 5,000 reviewers, 500 reviews by default) and 50 ms latency on every Graph
round trip. This process runs the app exactly as ``create_app(settings, workers=False)`` builds
it and calls ``app[DISCOVERY].run_once()`` once: list, resolve reviewers, write the store, queue
the notifications. The app token is fetched first (sign-in is not part of a poll).

Graph requests are counted by the emulator (every ``$batch`` item counts, as against Graph's
limits; requests Graph answered 429 and that were sent again are not counted twice) against
``min_calls``, the cheapest documented way to learn the same facts (:func:`minimum_calls`):

* definitions: ``ceil(D / 100)`` pages — access-review lists serve 100 items a page;
* instances: one list per definition, ``$filter=status eq 'InProgress'`` (a definition has one
  running instance, or one per reviewed group: one page);
* stages: one list per running multi-stage instance;
* decisions: ``ceil(p / 100)`` pages per running instance (or active stage) with ``p`` pending
  (``$filter=decision eq 'NotReviewed'``; at least one page);
* reviewer groups: ``ceil(m / 999)`` pages of ``transitiveMembers`` per distinct group
  (member lists serve up to 999 a page); ``/users/{id}`` reviewers cost nothing;
* owners: one list per distinct resource whose owners review (``./owners``);
* managers (``./manager``): ``min(N, ceil(U / 100))`` — ``GET /users/{id}/manager`` once per
  distinct principal ``N``, or ``GET /users?$expand=manager`` over the tenant's ``U`` users, 100
  a page (with ``$expand`` directory lists serve at most 100; ``$levels`` works only on a single
  user). The bot learns ``U`` with one ``GET /users/$count``, which the minimum does not count;
* mailbox settings: one ``GET /users/{id}/mailboxSettings`` per distinct reviewer of a pending
  decision — the language (and time zone) of their cards; Graph serves mailbox settings only per
  user ("supported only on the Get user API").

It also prints HTTP round trips (the bot's own count), wall time, the bot process's peak RSS and
the 429s the cycle met (``--throttle-rate`` injects some without ``Retry-After``), and as the
last line ``{"calls", "min_calls", "calls_ratio", "round_trips", "wall_s", "rss_mb", "throttled",
"retried_ok"}`` (``retried_ok``: the cycle completed and saw every pending decision despite them).
Targets (DESIGN §7): calls ≤ 1.2 × minimum, wall ≤ 60 s, RSS ≤ 250 MB. ``--quick``: a small
tenant in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app import create_app
from bench._common import CloudProcess, bot_settings, peak_rss_mb, print_figures, started_app
from bot.web.keys import APP_TOKENS, DISCOVERY, REGISTRY, STORE

CALLS_RATIO_TARGET = 1.2
WALL_TARGET_S = 60.0
RSS_TARGET_MB = 250.0
#: Page sizes Graph documents (see the module docstring).
REVIEW_PAGE = 100
MEMBER_PAGE = 999
USERS_WITH_MANAGER_PAGE = 100


def _pages(items: int, size: int) -> int:
    return max(1, math.ceil(items / size))


def minimum_calls(facts: Mapping[str, Any]) -> dict[str, int]:
    """The fewest Graph requests that learn what discovery learns, by part (module docstring)."""
    managers = int(facts["manager_principals"])
    users = int(facts["tenant_users"])
    return {
        "definitions": _pages(int(facts["definitions"]), REVIEW_PAGE),
        "instance_lists": int(facts["definitions"]),
        "stage_lists": int(facts["stage_lists"]),
        "decision_pages": sum(_pages(p, REVIEW_PAGE) for p in facts["pending_per_target"]),
        "group_member_lists": sum(_pages(m, MEMBER_PAGE) for m in facts["group_members"]),
        "resource_owner_lists": int(facts["owner_resources"]),
        "managers": min(managers, math.ceil(users / USERS_WITH_MANAGER_PAGE)) if managers else 0,
    }


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench discovery", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="2,000 decisions, 10 ms latency")
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--reviewers", type=int, default=5_000)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--throttle-rate",
        type=float,
        default=0.0,
        help="share of Graph requests answered 429 without Retry-After (e.g. 0.01)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.decisions, args.reviewers, args.instances, args.latency_ms = 2_000, 200, 20, 10.0
    return args


async def _run(args: argparse.Namespace) -> int:
    config = {
        "seed": "generated",
        "seed_params": {
            "decisions": args.decisions,
            "reviewers": args.reviewers,
            "instances": args.instances,
        },
        "graph_latency_ms": args.latency_ms,
    }
    if args.throttle_rate > 0:
        config["faults"] = [
            {
                "kind": "status",
                "service": "graph",
                "status": 429,
                "omit_retry_after": True,
                "probability": args.throttle_rate,
                "seed": 7,
            }
        ]
    async with CloudProcess(config) as cloud:
        minimum = await cloud.call("discovery_minimum")
        with tempfile.TemporaryDirectory(prefix="bench-discovery-") as tmp:
            app = create_app(bot_settings(cloud.info, Path(tmp)), workers=False)
            async with started_app(app, serve=False):
                await app[APP_TOKENS].get_token()  # sign-in is not part of the cycle
                await cloud.call("reset")
                rounds_before = _round_trips(app)
                started = time.perf_counter()
                report = await app[DISCOVERY].run_once()
                wall_s = time.perf_counter() - started
                round_trips = _round_trips(app) - rounds_before
                stats = await cloud.call("graph_stats")
                queued = await app[STORE].count_outbox(status="pending")
                # Taken before reading every assignment back (below), which is the benchmark's
                # own bookkeeping, not the bot's.
                rss_mb = peak_rss_mb()
                reviewers = {r for r, _i, _n in await app[STORE].list_assignments()}
    parts = minimum_calls(minimum["facts"])
    # The cycle found every reviewer of a pending decision (see the completeness check below).
    parts["mailbox_settings"] = len(reviewers)
    calls = int(stats["calls"]) - int(stats.get("throttled_calls", 0))
    min_calls = sum(parts.values())
    ratio = calls / min_calls
    throttled = _count(app, "graph_throttled")
    retried_ok = report.complete and report.pending_items == minimum["pending_items"]
    print(
        f"discovery: {report.pending_items} pending decisions in {report.instances} reviews, "
        f"{args.reviewers} reviewers, {args.latency_ms:g} ms emulated Graph latency per round "
        "trip; emulator in a child process (its CPU and memory are not the bot's)"
    )
    print(
        f"  Graph requests (each $batch item counts, 429s not twice): {calls}   minimum for "
        f"this tenant: {min_calls}   ratio {ratio:.2f} (target <= {CALLS_RATIO_TARGET})"
    )
    print("    minimum: " + ", ".join(f"{k} {v}" for k, v in parts.items()))
    facts = minimum["facts"]
    print(
        f"    managers: {facts['manager_principals']} principals, {facts['tenant_users']} users; "
        f"the bot learnt them {report.manager_mode.replace('_', ' ')} in "
        f"{report.manager_requests} requests"
    )
    print(
        "    made:    "
        + ", ".join(f"{k} {v}" for k, v in sorted(stats["by_kind"].items(), key=lambda kv: -kv[1]))
    )
    print(
        f"  HTTP round trips: {round_trips} ($batch POSTs {stats['batch_posts']})   "
        f"directory look-ups: {report.directory_lookups}"
    )
    print(
        f"  429s met: {throttled} (answered again; counted {stats.get('throttled_calls', 0)} "
        f"times by Graph)   all retried well: {retried_ok}"
    )
    print(f"  wall time: {wall_s:.2f} s (target <= {WALL_TARGET_S:g})")
    print(f"  peak RSS of the bot process: {rss_mb:.0f} MB (target <= {RSS_TARGET_MB:g})")
    print(
        f"  assignments added: {report.assignments_added}   notifications queued: {queued}   "
        f"complete: {report.complete}"
    )
    print_figures(
        {
            "calls": calls,
            "min_calls": min_calls,
            "calls_ratio": round(ratio, 3),
            "round_trips": round_trips,
            "wall_s": round(wall_s, 3),
            "rss_mb": round(rss_mb, 1),
            "throttled": throttled,
            "retried_ok": retried_ok,
        }
    )
    if not report.complete or report.pending_items != minimum["pending_items"]:
        print(
            f"ERROR: the cycle saw {report.pending_items} of {minimum['pending_items']} pending "
            f"decisions (complete={report.complete}, errors={report.errors[:3]})"
        )
        return 1
    return 0


def _round_trips(app: object) -> int:
    """HTTP requests the bot sent to Graph (its ``graph_http_requests`` counter)."""
    return _count(app, "graph_http_requests")


def _count(app: object, metric_name: str) -> int:
    """The total of one of the bot's counters, over all labels."""
    registry = app[REGISTRY]  # type: ignore[index]
    return int(
        sum(
            sample.value
            for metric in registry.collect()
            if metric.name == metric_name
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
    )


def main(argv: list[str]) -> int:
    """Run the benchmark; exit code 1 if the cycle missed pending decisions."""
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(_run(_parse(argv)))
