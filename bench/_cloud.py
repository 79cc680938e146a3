"""The emulated Microsoft cloud in a process of its own, driven by the benchmarks over a pipe.

``python -m bench._cloud '<config JSON>'`` starts an :class:`~emulator.server.EmulatorCloud`,
prints one JSON line (``EmulatorCloud.describe()`` plus the connector's plain-http channel
metadata URL), then answers one JSON command per stdin line with one JSON line on stdout.

Why a process: the machine has two cores, and a benchmark must not count the emulator's CPU (or
its memory) as the bot's. The emulator also plays the Teams client here (it holds the channel's
signing key), so the clicks of ``bench decide`` are timed outside the bot's process too.

Commands (``{"op": NAME, ...}``):

- ``set_graph_latency``: change the emulated Graph latency (``latency_ms``);
- ``reset``: zero the Graph counters and forget connector records and PATCH timings;
- ``graph_stats``: Graph requests by kind (every ``$batch`` item counts; the ``$batch`` POSTs
  themselves are counted apart), and how many of them Graph answered 429;
- ``discovery_minimum``: the facts a full discovery of this tenant must learn (counts of pages,
  directory objects, principals needing a manager, users), from which ``bench.discovery``
  derives the fewest Graph requests;
- ``install``: the bot's app installed for users (no delivery to the bot): their chat ids;
- ``connector_stats``: accepted sends (times), 429s, messages per user;
- ``clicks``: ``adaptiveCard/action`` invokes sent concurrently to the bot, each timed, with the
  Graph time of the PATCH it caused (matched by decision id);
- ``quit``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import aiohttp
import httpx

from emulator.clock import Clock
from emulator.connector import TeamsLimits
from emulator.faults import FaultRule
from emulator.graph import MAX_PAGE_SIZE, GraphRequest, GraphResponse
from emulator.lifecycle import recommendation_for
from emulator.seeds import SEEDS
from emulator.seeds.common import (
    DEFAULT_BOT_APP_ID,
    GENERATED_TENANT_ID,
    group_scope,
    one_time,
    teams_catalog,
)
from emulator.server import EmulatorCloud, EmulatorConfig
from emulator.teams_client import TeamsClient
from emulator.tenant import (
    Decision,
    Definition,
    Group,
    Instance,
    MailboxSettings,
    ReviewerScope,
    ReviewResource,
    ReviewSettings,
    Tenant,
    User,
)

log = logging.getLogger("bench.cloud")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class CloudHost:
    """One running cloud plus the instrumentation the benchmarks read."""

    def __init__(self, cloud: EmulatorCloud) -> None:
        self.cloud = cloud
        self.calls_by_kind: Counter[str] = Counter()
        self.batch_posts = 0
        self.throttled_calls = 0
        # decision id → (Graph time of its latest PATCH: emulated latency + handling, seconds;
        # the HTTP status Graph answered)
        self.patches: dict[str, tuple[float, int]] = {}
        # Every PATCH Graph answered, by status (a decision written twice counts twice).
        self.patch_statuses: Counter[int] = Counter()
        self._install_hooks()

    def _install_hooks(self) -> None:
        graph = self.cloud.graph
        original_dispatch = graph.dispatch

        async def timed_dispatch(request: GraphRequest) -> GraphResponse:
            started = time.perf_counter()
            response = await original_dispatch(request)
            if request.path == "/$batch":
                self.batch_posts += 1
            else:
                self.calls_by_kind[_kind(request.method, request.path)] += 1
                if response.status == 429:
                    self.throttled_calls += 1
            if request.method == "PATCH":
                # Graph's side of the call: from the request's arrival (before the emulated
                # latency, measured as slept, timer overshoot included) to its answer.
                decision_id = request.path.rstrip("/").rsplit("/", 1)[-1]
                elapsed_s = time.perf_counter() - (request.received_at or started)
                self.patches[decision_id] = (elapsed_s, response.status)
                self.patch_statuses[response.status] += 1
            return response

        # Instance attribute: GraphApi's handler and $batch both call ``self.dispatch``.
        graph.dispatch = timed_dispatch  # type: ignore[method-assign]

    # -- commands -------------------------------------------------------------------------------
    async def reset(self, _cmd: dict[str, Any]) -> dict[str, Any]:
        self.cloud.graph.throttle.reset()
        self.calls_by_kind.clear()
        self.batch_posts = 0
        self.throttled_calls = 0
        self.patches.clear()
        self.patch_statuses.clear()
        self.cloud.connector.records.clear()
        return {}

    async def set_graph_latency(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Change the emulated latency (set-up at 0 ms, measurement at the configured value)."""
        self.cloud.graph.latency_s = float(cmd["latency_ms"]) / 1000.0
        return {}

    async def graph_stats(self, _cmd: dict[str, Any]) -> dict[str, Any]:
        return {
            "calls": sum(self.calls_by_kind.values()),
            "batch_posts": self.batch_posts,
            "throttled_calls": self.throttled_calls,
            "by_kind": dict(self.calls_by_kind),
            # Per app: requests, resource units, writes, 429s (and by x-ms-throttle-priority).
            "throttle": self.cloud.graph.throttle.counters(),
            "patches_by_status": {str(k): v for k, v in self.patch_statuses.items()},
            # Distinct decision items PATCHed since the last reset.
            "patched_items": len(self.patches),
        }

    async def discovery_minimum(self, _cmd: dict[str, Any]) -> dict[str, Any]:
        return discovery_minimum(self.cloud.tenant)

    async def install(self, cmd: dict[str, Any]) -> dict[str, Any]:
        connector = self.cloud.connector
        tenant = self.cloud.tenant
        conversations: dict[str, str] = {}
        for n, oid in enumerate(cmd["users"]):
            user = tenant.users[oid]
            connector.note_app_installed(
                user_oid=oid, user_name=user.display_name, installation_id=f"bench-{n}"
            )
            conversations[oid] = connector.conversation_id_for(oid)
        return {
            "conversations": conversations,
            "user_ids": {oid: connector.user_mri(oid) for oid in conversations},
        }

    async def connector_stats(self, _cmd: dict[str, Any]) -> dict[str, Any]:
        records = self.cloud.connector.records
        by_op_status = Counter(f"{r.operation}:{r.status}" for r in records)
        sends = [r for r in records if r.operation == "send" and r.status == 201]
        per_user = Counter(r.user_oid for r in sends if r.user_oid)
        return {
            "sends_accepted_at": [r.at.timestamp() for r in sends],
            "throttled": sum(1 for r in records if r.status == 429),
            "throttled_at": [r.at.timestamp() for r in records if r.status == 429],
            "by_op_status": dict(by_op_status),
            "sends_per_user": dict(per_user),
        }

    async def clicks(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Send every click at once (bounded by ``concurrency``); time each answer."""
        cloud = self.cloud
        limits = httpx.Limits(max_connections=int(cmd.get("concurrency", 200)) + 8)
        semaphore = asyncio.Semaphore(int(cmd.get("concurrency", 200)))
        async with httpx.AsyncClient(limits=limits, timeout=60.0) as http:
            teams = TeamsClient(
                cloud.identity,
                cloud.connector_url,
                str(cmd["endpoint"]),
                cloud.bot_app_id,
                cloud.tenant_id,
                http,
                conversation_id_for=cloud.connector.conversation_id_for,
            )
            # Tokens and bodies are made before the clock starts: the client's crypto is not
            # the bot's time.
            prepared = []
            for click in cmd["clicks"]:
                sso = (
                    cloud.identity.issue_sso_token(user_oid=click["user"], app_id=cloud.bot_app_id)
                    if click.get("sso")
                    else None
                )
                activity = teams.card_action_activity(
                    click["user"], click["verb"], click["data"], sso_token=sso
                )
                prepared.append(
                    (
                        json.dumps(activity).encode(),
                        {
                            "Content-Type": "application/json",
                            "Authorization": f"Bearer {teams.channel_token()}",
                        },
                    )
                )

            # The clicks go out through aiohttp's client: httpx's pool costs milliseconds of CPU
            # per request at 200 in flight, and that queueing here would be counted as the bot's.
            connector = aiohttp.TCPConnector(limit=int(cmd.get("concurrency", 200)) + 8)
            async with aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=60.0)
            ) as session:
                # Open loop: a click with ``at`` goes out that many seconds after the first, whether
                # or not earlier clicks were answered (arrivals never wait for answers).
                origin = time.perf_counter()

                async def one(
                    body: bytes, headers: dict[str, str], at: float | None
                ) -> dict[str, Any]:
                    if at is not None:
                        delay = origin + at - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)  # the arrival time, not a wait for a state
                    async with semaphore:
                        started = time.perf_counter()
                        try:
                            async with session.post(
                                teams.bot_endpoint, data=body, headers=headers
                            ) as response:
                                content = await response.read()
                                answer_s = time.perf_counter() - started
                                status = response.status
                        except (aiohttp.ClientError, TimeoutError) as exc:
                            return {"status": 0, "error": type(exc).__name__, "answer_s": None}
                        try:
                            payload = json.loads(content) if content else None
                        except ValueError:
                            payload = None
                        late_s = started - (origin + at) if at is not None else None
                        return {
                            "status": status,
                            "body": payload,
                            "answer_s": answer_s,
                            "started_late_s": late_s,
                        }

                arrivals = [click.get("at") for click in cmd["clicks"]]
                results = await asyncio.gather(
                    *(one(b, h, at) for (b, h), at in zip(prepared, arrivals, strict=True))
                )
        for click, result in zip(cmd["clicks"], results, strict=True):
            item_id = str(click["data"].get("itemId") or "")
            graph_s, graph_status = self.patches.get(item_id, (None, None))
            result["graph_s"], result["graph_status"] = graph_s, graph_status
            body = result.pop("body", None)
            result["invoke_status"] = body.get("statusCode") if isinstance(body, dict) else None
            result["body_type"] = str(body.get("type") or "") if isinstance(body, dict) else ""
            text = _texts(body.get("value")) if isinstance(body, dict) else ""
            # The "Saving…" notice: the answer came before Graph confirmed the write.
            result["saving"] = "Saving your decisions" in text
        return {"results": results}


_K_REVIEWER = 0xB001
_K_PRINCIPAL = 0xB002
_K_REVIEW = 0xB003
_K_DECISION = 0xB004


def _bid(kind: int, n: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{n:012x}"


def decide_tenant(
    clock: Clock,
    *,
    shapes: Sequence[Sequence[int]] = ((10, 1, 3),),
    bot_app_id: str = DEFAULT_BOT_APP_ID,
    tenant_id: str = GENERATED_TENANT_ID,
    **_: Any,
) -> Tenant:
    """The ``bench-decide`` seed: reviews of known sizes, each with one reviewer of its own.

    ``shapes``: ``[reviewers, reviews each, items per review]`` triples. Every reviewer is named
    outright (``/users/{id}``) by their reviews and by no other, so every pending item has
    exactly one reviewer and a click on it is that reviewer's alone. Reviewers come in the order
    of ``shapes`` (ids ``_bid(_K_REVIEWER, n)``), their reviews in order after them.
    """
    now = clock.now().replace(microsecond=0)
    tenant = Tenant(tenant_id=tenant_id, clock=clock, display_name="Fabrikam (bench decide)")
    domain = "fabrikam.onmicrosoft.com"
    teams_catalog(tenant, bot_app_id)
    most = max((int(items) for _count, _reviews, items in shapes), default=1)
    principals = [
        tenant.add_user(
            User(
                id=_bid(_K_PRINCIPAL, n),
                display_name=f"Member {n}",
                user_principal_name=f"member.{n}@{domain}",
                last_sign_in=now - timedelta(days=n % 60),
            )
        )
        for n in range(most)
    ]
    settings = ReviewSettings(instance_duration_in_days=21)
    begin, end = now - timedelta(days=1), now + timedelta(days=14)
    reviewer_n = review_n = decision_n = 0
    for count, reviews_each, items in shapes:
        for _ in range(int(count)):
            reviewer = tenant.add_user(
                User(
                    id=_bid(_K_REVIEWER, reviewer_n),
                    display_name=f"Reviewer {reviewer_n}",
                    user_principal_name=f"reviewer.{reviewer_n}@{domain}",
                    mail=f"reviewer.{reviewer_n}@{domain}",
                    mailbox=MailboxSettings(time_zone="UTC"),
                )
            )
            reviewer_n += 1
            scopes = (ReviewerScope(f"/users/{reviewer.id}"),)
            for _review in range(int(reviews_each)):
                review_id = _bid(_K_REVIEW, review_n)
                members = [p.id for p in principals[: int(items)]]
                group = tenant.add_group(
                    Group(
                        id=review_id,
                        display_name=f"Project {review_n:05d}",
                        member_ids=members,
                        owner_ids=[reviewer.id],
                    )
                )
                resource = ReviewResource(
                    id=group.id,
                    display_name=group.display_name,
                    type="group",
                    link=f"https://graph.microsoft.com/v1.0/groups/{group.id}",
                )
                definition = Definition(
                    id=review_id,
                    display_name=f"Project {review_n:05d} membership review",
                    scope=group_scope(group.id),
                    reviewers=scopes,
                    settings=settings,
                    created_by=(reviewer.id, reviewer.display_name, reviewer.user_principal_name),
                    created_at=begin - timedelta(days=1),
                    fallback_reviewers=(),
                    recurrence=one_time(begin, end),
                    resource=resource,
                )
                instance = Instance(
                    id=review_id,
                    definition_id=review_id,
                    start=begin,
                    end=end,
                    scope=group_scope(group.id),
                    reviewers=scopes,
                    fallback_reviewers=(),
                )
                for principal in principals[: int(items)]:
                    decision = Decision(
                        id=_bid(_K_DECISION, decision_n),
                        principal_id=principal.id,
                        principal_kind="user",
                        resource=resource,
                        recommendation=recommendation_for(principal.last_sign_in, now),
                        membership_type="direct",
                    )
                    decision_n += 1
                    instance.decisions[decision.id] = decision
                tenant.add_review(definition, [instance])
                review_n += 1
    return tenant


# Registered in the cloud process only (this module runs as that process).
SEEDS.setdefault("bench-decide", decide_tenant)


def _kind(method: str, path: str) -> str:
    """A coarse name for a Graph request (for the printed breakdown)."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["identityGovernance", "accessReviews"]:
        tail = [p for n, p in enumerate(parts[2:]) if n % 2 == 0]
        return f"{method} reviews/" + "/".join(tail)
    if parts[0] == "users" and len(parts) >= 3:
        return f"{method} users/{{id}}/{parts[2]}"
    if parts[0] in ("groups", "servicePrincipals") and len(parts) >= 3:
        return f"{method} {parts[0]}/{{id}}/{parts[2]}"
    return f"{method} {parts[0]}"


def _texts(node: Any) -> str:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str):
                found.append(value["text"])
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(node)
    return "\n".join(found)


def _pages(items: int) -> int:
    """Requests to list ``items`` at the largest page size (an empty list still costs one)."""
    return max(1, math.ceil(items / MAX_PAGE_SIZE))


def discovery_minimum(tenant: Tenant) -> dict[str, Any]:
    """The fewest Graph requests that list every pending decision and resolve its reviewers.

    One request per page at the largest page size Graph serves (``MAX_PAGE_SIZE``) for
    definitions, each definition's InProgress instances, the active stage of multi-stage ones and
    each active instance's pending decisions; plus one per distinct directory object whose
    relation must be read: a reviewer group's members, a resource's owners, a principal's manager
    (``/users/{id}`` scopes name the reviewer outright and cost nothing; a self-review needs no
    look-up). Fallback scopes are counted only where the primary ones resolve to nobody.
    """
    definitions = list(tenant.definitions.values())
    minimum = {"definitions": _pages(len(definitions)), "instance_lists": len(definitions)}
    decision_pages = stage_lists = 0
    groups: set[str] = set()
    owners_of: set[str] = set()
    managers_of: set[str] = set()
    pending_per_target: list[int] = []
    pending_total = 0
    for instance in tenant.instances.values():
        if tenant.instance_status(instance) != "InProgress":
            continue
        definition = tenant.definitions[instance.definition_id]
        if getattr(definition, "stage_settings", None):
            stage_lists += 1
        pending = [d for d in instance.decisions.values() if d.decision == "NotReviewed"]
        pending_per_target.append(len(pending))
        pending_total += len(pending)
        decision_pages += _pages(len(pending))
        scopes = instance.reviewers or definition.reviewers
        for decision in pending:
            found = _lookups(tenant, scopes, decision, groups, owners_of, managers_of)
            if not found:
                fallback = instance.fallback_reviewers or definition.fallback_reviewers
                _lookups(tenant, fallback, decision, groups, owners_of, managers_of)
    facts = {
        "definitions": len(definitions),
        "pending_per_target": pending_per_target,
        "stage_lists": stage_lists,
        "group_members": [
            len(tenant.transitive_member_objects(g)) for g in sorted(groups) if g in tenant.groups
        ],
        "owner_resources": len(owners_of),
        "manager_principals": len(managers_of),
        "tenant_users": len(tenant.users),
    }
    group_pages = sum(
        _pages(len(tenant.groups[g].member_ids)) for g in groups if g in tenant.groups
    )
    minimum.update(
        stage_lists=stage_lists,
        decision_pages=decision_pages,
        group_member_lists=group_pages,
        resource_owner_lists=len(owners_of),
        managers=len(managers_of),
    )
    return {
        "min_calls": sum(minimum.values()),
        "parts": minimum,
        "pending_items": pending_total,
        "page_size": MAX_PAGE_SIZE,
        "facts": facts,
    }


def _lookups(
    tenant: Tenant,
    scopes: Sequence[ReviewerScope],
    decision: Decision,
    groups: set[str],
    owners_of: set[str],
    managers_of: set[str],
) -> bool:
    """Note the look-ups ``scopes`` need for ``decision``; whether anybody is found."""
    if not scopes:
        return decision.principal_kind == "user"  # self-review
    found = False
    for scope in scopes:
        query = scope.query.split("?", 1)[0]
        parts = query.strip("/").split("/")
        if parts[0] == "users" and len(parts) == 2:
            found = True
        elif (
            parts[0] == "groups"
            and len(parts) >= 3
            and parts[2]
            in (
                "transitiveMembers",
                "members",
            )
        ):
            groups.add(parts[1])
            found = found or bool(
                tenant.groups.get(parts[1]) and tenant.groups[parts[1]].member_ids
            )
        elif query in ("./owners", "owners"):
            resource_id = decision.resource.id if decision.resource else ""
            owners_of.add(resource_id)
            group = tenant.groups.get(resource_id)
            found = found or bool(group and group.owner_ids)
        elif query in ("./manager", "manager") and decision.principal_kind == "user":
            managers_of.add(decision.principal_id)
            user = tenant.users.get(decision.principal_id)
            found = found or bool(user and user.manager_id)
    return found


def _config(raw: dict[str, Any]) -> EmulatorConfig:
    limits = raw.get("teams_limits", "default")
    teams_limits = TeamsLimits.unlimited() if limits == "unlimited" else TeamsLimits()
    # The benchmarks meet the services as they are: Graph throttling, connector 429s without
    # Retry-After, occasional transient failures (emulator.profiles). Except the ceiling with
    # the limits lifted: it is the bot's own speed, and random failures there would time the
    # retry backoff instead.
    default_profile = "deterministic" if limits == "unlimited" else "realistic"
    # Fault rules to add once the cloud runs ("faults": [rule fields, ...]).
    for rule in raw.get("faults") or []:
        FaultRule.from_json(rule)  # refuse a bad rule before anything starts
    return EmulatorConfig(
        seed=str(raw.get("seed", "generated")),
        seed_params=dict(raw.get("seed_params") or {}),
        graph_latency_s=float(raw.get("graph_latency_ms", 0.0)) / 1000.0,
        teams_limits=teams_limits,
        profile=str(raw.get("profile", default_profile)),
    )


async def serve(raw_config: dict[str, Any]) -> None:
    """Start the cloud, print its description, answer commands until ``quit`` or EOF."""
    async with EmulatorCloud(_config(raw_config)) as cloud:
        for rule in raw_config.get("faults") or []:
            cloud.faults.add(FaultRule.from_json(rule))
        host = CloudHost(cloud)
        handlers: dict[str, Handler] = {
            "reset": host.reset,
            "set_graph_latency": host.set_graph_latency,
            "graph_stats": host.graph_stats,
            "discovery_minimum": host.discovery_minimum,
            "install": host.install,
            "connector_stats": host.connector_stats,
            "clicks": host.clicks,
        }
        description = cloud.describe()
        description["connector_channel_metadata_url"] = (
            f"{cloud.connector_url}v1/.well-known/openidconfiguration"
        )
        _write(description)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=64 * 1024 * 1024)  # commands carry id lists
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "quit":
                break
            handler = handlers.get(str(op))
            if handler is None:
                _write({"error": f"unknown op {op!r}"})
                continue
            try:
                _write({"ok": await handler(cmd)})
            except Exception as exc:
                log.exception("command %s failed", op)
                _write({"error": f"{type(exc).__name__}: {exc}"})


def _write(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    """Entry point: one argument, the config JSON."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))


if __name__ == "__main__":
    main()
