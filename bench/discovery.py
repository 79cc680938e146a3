"""``python -m bench discovery``: one full discovery cycle of the real app on a big tenant.

The emulated cloud runs in a child process (``bench._cloud``) with a generated tenant (100,000
pending decisions, 5,000 reviewers, 500 reviews by default) and 50 ms latency on every Graph
round trip. This process runs the app exactly as ``create_app(settings, workers=False)`` builds
it and calls ``app[DISCOVERY].run_once()`` once: list, resolve reviewers, write the store, queue
the notifications. The app token is fetched first (sign-in is not part of a poll).

Prints Graph requests (counted by the emulator; every ``$batch`` item counts, as against Graph's
limits) against the minimum the API allows for the tenant (one request per page at the largest
page size Graph serves, plus one per distinct directory object to resolve: see
``bench._cloud.discovery_minimum``; plus one mailbox-settings read per distinct reviewer, for the
language of their cards), HTTP round trips (the bot's own count), wall time and the
bot process's peak RSS, and as the last line
``{"calls", "min_calls", "calls_ratio", "round_trips", "wall_s", "rss_mb"}``.
Targets (DESIGN §7): calls ≤ 1.2 × minimum, wall ≤ 60 s, RSS ≤ 250 MB. ``--quick``: a small
tenant in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from app import create_app
from bench._common import CloudProcess, bot_settings, peak_rss_mb, print_figures, started_app
from bot.web.keys import APP_TOKENS, DISCOVERY, REGISTRY, STORE

CALLS_RATIO_TARGET = 1.2
WALL_TARGET_S = 60.0
RSS_TARGET_MB = 250.0


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench discovery", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="2,000 decisions, 10 ms latency")
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--reviewers", type=int, default=5_000)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=50.0)
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
    # Each reviewer's cards are in their mailbox's language: Graph serves mailboxSettings only
    # per user ("supported only on the Get user API"), so the cheapest way to learn it is one
    # request per distinct reviewer of a pending decision (the cycle found them all: see the
    # completeness check below).
    minimum["parts"]["mailbox_settings"] = len(reviewers)
    minimum["min_calls"] = int(minimum["min_calls"]) + len(reviewers)
    calls, min_calls = int(stats["calls"]), int(minimum["min_calls"])
    ratio = calls / min_calls
    print(
        f"discovery: {report.pending_items} pending decisions in {report.instances} reviews, "
        f"{args.reviewers} reviewers, {args.latency_ms:g} ms emulated Graph latency per round "
        "trip; emulator in a child process (its CPU and memory are not the bot's)"
    )
    print(
        f"  Graph requests (each $batch item counts): {calls}   minimum for this tenant: "
        f"{min_calls} (page size {minimum['page_size']})   ratio {ratio:.2f} "
        f"(target <= {CALLS_RATIO_TARGET})"
    )
    print("    minimum: " + ", ".join(f"{k} {v}" for k, v in minimum["parts"].items()))
    print(
        "    made:    "
        + ", ".join(f"{k} {v}" for k, v in sorted(stats["by_kind"].items(), key=lambda kv: -kv[1]))
    )
    print(
        f"  HTTP round trips: {round_trips} ($batch POSTs {stats['batch_posts']})   "
        f"directory look-ups: {report.directory_lookups}"
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
    registry = app[REGISTRY]  # type: ignore[index]
    return int(
        sum(
            sample.value
            for metric in registry.collect()
            if metric.name == "graph_http_requests"
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
    )


def main(argv: list[str]) -> int:
    """Run the benchmark; exit code 1 if the cycle missed pending decisions."""
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(_run(_parse(argv)))
