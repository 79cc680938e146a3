"""``python -m bench graph``: Graph requests and wall time for a full discovery listing.

Starts the emulator with a generated tenant (10,000 pending decisions in 500 reviews by default)
and 50 ms latency per Graph round trip, then lists what discovery lists, app-only, the way the bot
does it: definitions (one page of up to 100), their InProgress instances (``$batch``, 20 per call),
then every instance's pending decisions (``$batch`` first pages, ``$top=100``, nextLinks after).

Prints Graph requests made (every ``$batch`` item counts, as it does against Graph's limits)
against the minimum the API allows for that tenant, HTTP round trips, wall time, and as the last
line one JSON object ``{"items", "calls", "round_trips", "wall_s"}``. ``--quick`` runs a small
tenant so CI can run it on every change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet
from prometheus_client import CollectorRegistry

from bot.graph import (
    PENDING_DECISIONS,
    AccessReviewsApi,
    AppTokenProvider,
    GraphClient,
    GraphSettings,
    Query,
    create_http_client,
    odata_eq,
)
from bot.store import open_store
from emulator.server import EmulatorCloud, EmulatorConfig

# Access-review lists serve 100 items a page (Graph's documented default; a larger $top on
# decisions is refused).
PAGE_SIZE = 100


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench graph", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small tenant, 5 ms latency (CI)")
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--reviewers", type=int, default=1_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--batch-concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    if args.quick:
        args.decisions, args.instances, args.reviewers, args.latency_ms = 600, 30, 50, 5.0
    return args


def _minimum_calls(cloud: EmulatorCloud) -> int:
    """Fewest Graph requests that can list every pending decision of the tenant."""
    definitions = len(cloud.tenant.definitions)
    calls = math.ceil(max(1, definitions) / PAGE_SIZE) + definitions
    for instance in cloud.tenant.instances.values():
        if cloud.tenant.instance_status(instance) == "InProgress":
            pending = sum(1 for d in instance.decisions.values() if d.decision == "NotReviewed")
            calls += math.ceil(max(1, pending) / PAGE_SIZE)
    return calls


async def _run(args: argparse.Namespace) -> int:
    config = EmulatorConfig(
        seed="generated",
        seed_params={
            "decisions": args.decisions,
            "instances": args.instances,
            "reviewers": args.reviewers,
        },
        graph_latency_s=args.latency_ms / 1000,
    )
    async with EmulatorCloud(config) as cloud:
        with tempfile.TemporaryDirectory(prefix="bench-graph-") as tmp:
            store = await open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
            settings = GraphSettings(
                tenant_id=cloud.tenant_id,
                client_id=cloud.bot_app_id,
                client_secret=cloud.bot_app_secret,
                graph_base_url=cloud.graph_url,
                authority_host=cloud.login_url,
                ca_bundle_path=cloud.ca_pem_path,
                token_cache_keys=(Fernet.generate_key().decode(),),
                batch_concurrency=args.batch_concurrency,
            )
            tokens = AppTokenProvider(settings, store=store)
            registry = CollectorRegistry()
            try:
                async with create_http_client(settings) as http:
                    graph = GraphClient.from_settings(
                        http, tokens=tokens, settings=settings, registry=registry
                    )
                    await tokens.get_token()  # sign-in is not part of the listing
                    cloud.graph.request_log.clear()
                    started = time.perf_counter()
                    items = await _discover(AccessReviewsApi(graph))
                    wall_s = time.perf_counter() - started
            finally:
                await tokens.close()
                await store.close()
        round_trips = int(
            sum(
                sample.value
                for metric in registry.collect()
                if metric.name == "graph_http_requests"
                for sample in metric.samples
                if sample.name.endswith("_total")
            )
        )
        calls = sum(1 for entry in cloud.graph.request_log if entry[2] != "/$batch")
        minimum = _minimum_calls(cloud)
        expected = sum(
            1
            for instance in cloud.tenant.instances.values()
            if cloud.tenant.instance_status(instance) == "InProgress"
            for d in instance.decisions.values()
            if d.decision == "NotReviewed"
        )
    print(
        f"graph listing: {items} pending decisions in {args.instances} reviews "
        f"({args.latency_ms:g} ms emulated latency per round trip)"
    )
    print(
        f"  Graph requests (each $batch item counts): {calls}   minimum for this tenant: "
        f"{minimum}   ratio {calls / minimum:.2f}"
    )
    print(
        f"  HTTP round trips: {round_trips}   items per round trip: {items / max(1, round_trips):.0f}"
    )
    print(f"  wall time: {wall_s:.2f} s")
    print(
        json.dumps(
            {"items": items, "calls": calls, "round_trips": round_trips, "wall_s": round(wall_s, 3)}
        )
    )
    if items != expected:
        print(f"ERROR: listed {items} items, the tenant has {expected}")
        return 1
    return 0


async def _discover(reviews: AccessReviewsApi) -> int:
    definitions = [
        d.id async for d in reviews.list_definitions(Query(top=PAGE_SIZE, select=("id",)))
    ]
    instances = await reviews.list_instances_for_definitions(
        definitions, Query(filter=odata_eq("status", "InProgress"), top=PAGE_SIZE)
    )
    pairs = [(d, i.id) for d, found in instances.items() for i in found]
    decisions = await reviews.list_decisions_for_instances(
        pairs, Query(filter=PENDING_DECISIONS, top=PAGE_SIZE)
    )
    return sum(len(items) for items in decisions.values())


def main(argv: list[str]) -> int:
    """Run the benchmark; exit code 1 if the listing was incomplete."""
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(_run(_parse(argv)))
