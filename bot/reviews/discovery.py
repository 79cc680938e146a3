"""Discovery: poll Graph (app-only) for pending decisions, resolve reviewers, diff against the store.

One cycle (:meth:`Discovery.run_once`):

1. definitions → their ``InProgress`` instances (``$batch``) → the active stage of multi-stage ones;
2. the ``NotReviewed`` decisions of each active instance/stage: first pages through ``$batch``,
   further pages by ``@odata.nextLink``, ``$select`` of the fields used, the largest page size;
3. reviewers resolved per decision (:mod:`bot.reviews.resolver`, look-ups shared in the cycle);
4. per instance, the snapshot and assignments in the store are replaced and the differences become
   domain events (:mod:`bot.reviews.events`), recorded in the audit trail and handed to handlers.

An instance is only written after all its decisions were read, so a failed page leaves that
instance's previous snapshot untouched; the cycle reports itself incomplete and is retried. An
instance is only declared ended after Graph itself says so.

Only ``InProgress`` is open for decisions. An instance that ended is followed while Graph still
moves it on by itself (``Completing``, ``AutoReviewing``, ``Applying``: every cycle) and, for a
week after it ended, hourly for an ``applyDecisions`` (``Completed`` → ``Applied``), so cards and
the status page show where it ended up. Ids: a definition's instances each have their own id
(recurring reviews; only a one-time review's instance may share its definition's id); the store,
cards and decision writes are keyed by instance id, and an instance's definition id is only ever
taken from the URL it was read from, never assumed equal.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bot.clock import Clock
from bot.graph import (
    AccessReviewsApi,
    BatchRequest,
    DirectoryApi,
    GraphError,
    GraphNotFound,
    Query,
    odata_eq,
)
from bot.graph.models import (
    AccessReviewDecision,
    AccessReviewDefinition,
    AccessReviewInstance,
    AccessReviewStage,
    ReviewerScope,
    ReviewStatus,
)
from bot.graph.odata import encode_query
from bot.reviews.events import (
    Assigned,
    DomainEvent,
    EventHandler,
    InstanceEnded,
    ItemDecidedElsewhere,
    ReviewerDone,
)
from bot.reviews.reconcile import DecisionValues
from bot.reviews.resolver import ReviewerResolver, scope_kind
from bot.store import AuditEvent, InstanceRecord, ItemRecord, Store

__all__ = ["CycleReport", "Discovery", "DiscoveryConfig", "DiscoveryMetrics", "LeaseLost"]


class LeaseLost(Exception):
    """This replica no longer holds the lease it works under: stop, write nothing more."""


_GUARD: contextvars.ContextVar[Callable[[], Awaitable[None]] | None] = contextvars.ContextVar(
    "discovery_guard", default=None
)


#: Called in every cycle, for each instance processed, with (instance id, reviewers with pending
#: items there who were not just assigned): a previous lease holder may have died between
#: recording assignments and queueing their cards (the next diff would see no change and send
#: nothing), and a card that failed for good may be worth queueing again. Must be cheap.
Reconciler = Callable[[str, Sequence[str]], Awaitable[None]]


async def _check_guard() -> None:
    guard = _GUARD.get()
    if guard is not None:
        await guard()


log = logging.getLogger(__name__)

IN_PROGRESS = "InProgress"
PENDING = "NotReviewed"
_ROOT = "/identityGovernance/accessReviews/definitions"

DEFINITION_FIELDS = (
    "id",
    "displayName",
    "status",
    "descriptionForReviewers",
    "reviewers",
    "fallbackReviewers",
    "settings",
    "stageSettings",
    "scope",
)
INSTANCE_FIELDS = (
    "id",
    "startDateTime",
    "endDateTime",
    "status",
    "scope",
    "reviewers",
    "fallbackReviewers",
)
DECISION_FIELDS = (
    "id",
    "accessReviewId",
    "decision",
    "recommendation",
    "justification",
    "principal",
    "principalLink",
    "resource",
    "resourceLink",
    "reviewedBy",
    "reviewedDateTime",
)
# Settings the cards and reminders read; the rest of the definition is not kept.
_KEPT_SETTINGS = (
    "justificationRequiredOnApproval",
    "defaultDecisionEnabled",
    "defaultDecision",
    "autoApplyDecisionsEnabled",
    "recommendationsEnabled",
    "decisionHistoriesForReviewersEnabled",
    "instanceDurationInDays",
)


@dataclass(frozen=True)
class DiscoveryConfig:
    """How discovery reads Graph."""

    # Access review lists serve at most 100 items a page (Graph's documented default and the
    # emulator's maximum): asking for more only gets 100 back.
    page_size: int = 100
    # Compare our resolved reviewers with Graph's contactedReviewers, once per instance whose
    # reviewers are found through the directory (managers, owners, groups).
    crosscheck_contacted_reviewers: bool = True
    # Instances whose decisions are listed at once (each a $batch sub-request for its first page).
    instance_concurrency: int = 20
    # The cross-check is a diagnostic: a few instances a cycle find a systematic difference
    # without spending a Graph request on every instance of a big first poll (the others are
    # checked in later cycles).
    crosscheck_limit_per_cycle: int = 3
    # Ended instances are re-read (for an applyDecisions) this often, for this long after they end.
    recheck_ended_s: float = 3600.0
    follow_ended_s: float = 7 * 24 * 3600.0


class DiscoveryMetrics:
    """Prometheus metrics of discovery, in the given registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.cycle_duration_s = Histogram(
            "discovery_cycle_duration_seconds", "Duration of a discovery cycle.", registry=registry
        )
        self.cycles = Counter(
            "discovery_cycles", "Discovery cycles, by outcome.", ["outcome"], registry=registry
        )
        self.items = Gauge(
            "discovery_pending_items",
            "Pending decision items seen in the last cycle.",
            registry=registry,
        )
        self.assignments = Counter(
            "discovery_assignment_changes",
            "Assignments added or removed.",
            ["change"],
            registry=registry,
        )
        self.errors = Counter(
            "discovery_errors",
            "Instances or lists that could not be read.",
            ["stage"],
            registry=registry,
        )
        self.events = Counter(
            "discovery_events", "Domain events emitted, by kind.", ["kind"], registry=registry
        )


@dataclass
class CycleReport:
    """What one cycle saw and did."""

    complete: bool = True
    instances: int = 0
    pending_items: int = 0
    assignments_added: int = 0
    assignments_removed: int = 0
    directory_lookups: int = 0
    crosschecks: int = 0
    # How managers were learnt this cycle ("per_user" or "list") and the requests it took.
    manager_mode: str = "per_user"
    manager_requests: int = 0
    events: list[DomainEvent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0


@dataclass(frozen=True)
class _Target:
    """An active instance, or the active stage of one, whose pending decisions are read."""

    definition: AccessReviewDefinition
    instance: AccessReviewInstance
    stage: AccessReviewStage | None

    @property
    def reviewers(self) -> tuple[ReviewerScope, ...]:
        if self.stage is not None:
            return self.stage.reviewers
        return self.instance.reviewers or self.definition.reviewers

    @property
    def fallback_reviewers(self) -> tuple[ReviewerScope, ...]:
        if self.stage is not None:
            return self.stage.fallback_reviewers
        return self.instance.fallback_reviewers or self.definition.fallback_reviewers

    def decisions_path(self) -> str:
        path = f"{_ROOT}/{self.definition.id}/instances/{self.instance.id}"
        if self.stage is not None:
            path += f"/stages/{self.stage.id}"
        return path + "/decisions"


class Discovery:
    """Finds every pending decision and who may make it; keeps the store's snapshot current."""

    def __init__(
        self,
        *,
        reviews: AccessReviewsApi,
        directory: DirectoryApi,
        store: Store,
        clock: Clock,
        handlers: Sequence[EventHandler] = (),
        config: DiscoveryConfig | None = None,
        metrics: DiscoveryMetrics | None = None,
    ) -> None:

        self._reviews = reviews
        self._graph = reviews.graph
        self._directory = directory
        self._store = store
        self._clock = clock
        self._handlers = list(handlers)
        self._reconcilers: list[Reconciler] = []
        self._config = config or DiscoveryConfig()
        self._metrics = metrics or DiscoveryMetrics(CollectorRegistry())
        self._values = DecisionValues(
            store=store, graph=self._graph, page_size=self._config.page_size
        )

    def add_handler(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def add_reconciler(self, reconciler: Reconciler) -> None:
        """Called in every cycle with (instance id, reviewers with pending items there)."""
        self._reconcilers.append(reconciler)

    # -- the cycle ------------------------------------------------------------------------------
    async def run_once(
        self,
        *,
        definition_id: str | None = None,
        instance_id: str | None = None,
        guard: Callable[[], Awaitable[None]] | None = None,
        reconcile: bool = False,
    ) -> CycleReport:
        """One discovery cycle over the tenant, or over one definition / one instance.

        ``guard`` is awaited before every write batch and raises :class:`LeaseLost` when this
        replica may no longer write (fencing by the poll lease). ``reconcile`` (the first cycle
        under a new lease) needs nothing extra any more: reconcilers run in every cycle.
        """
        del reconcile
        token = _GUARD.set(guard)
        try:
            return await self._run_once(definition_id=definition_id, instance_id=instance_id)
        finally:
            _GUARD.reset(token)

    async def _run_once(self, *, definition_id: str | None, instance_id: str | None) -> CycleReport:
        if instance_id and not definition_id:
            record = await self._store.get_instance(instance_id=instance_id)
            if record is None:
                raise ValueError(f"unknown instance {instance_id!r}: name its definition too")
            definition_id = record.definition_id
        started = time.perf_counter()
        report = CycleReport()
        resolver = ReviewerResolver(self._directory)
        try:
            targets, ended_candidates = await self._find_targets(definition_id, instance_id, report)
            semaphore = asyncio.Semaphore(self._config.instance_concurrency)

            async def process(group: list[_Target]) -> None:
                async with semaphore:
                    await self._process_instance(group, resolver, report)

            by_instance: dict[str, list[_Target]] = defaultdict(list)
            for target in targets:
                by_instance[target.instance.id].append(target)
            resolver.managers.plan(
                scoped_targets=sum(1 for group in by_instance.values() if _needs_managers(group[0]))
            )
            try:
                async with asyncio.TaskGroup() as tasks:
                    for group in by_instance.values():
                        tasks.create_task(process(group))
            except ExceptionGroup as group_error:
                lost = group_error.subgroup(LeaseLost)
                if lost is not None:
                    raise LeaseLost(str(lost.exceptions[0])) from group_error
                raise
            # Those that ended before this cycle first: one just ended is not read twice.
            await self._follow_ended(definition_id, instance_id, report)
            await self._end_instances(ended_candidates, report)
        except GraphError as exc:
            report.complete = False
            report.errors.append(f"listing failed: {exc}")
            self._metrics.errors.labels("listing").inc()
            log.warning("discovery cycle stopped early: %s", exc)
        report.directory_lookups = resolver.lookups
        report.manager_requests = resolver.managers.requests
        report.manager_mode = resolver.managers.mode
        report.duration_s = time.perf_counter() - started
        self._metrics.cycle_duration_s.observe(report.duration_s)
        self._metrics.cycles.labels("complete" if report.complete else "incomplete").inc()
        if definition_id is None:
            self._metrics.items.set(report.pending_items)
        log.info(
            "discovery cycle done",
            extra={
                "complete": report.complete,
                "instances": report.instances,
                "pending_items": report.pending_items,
                "assignments_added": report.assignments_added,
                "assignments_removed": report.assignments_removed,
                "events": len(report.events),
                "duration_ms": round(report.duration_s * 1000),
            },
        )
        return report

    # -- step 1: what is active -----------------------------------------------------------------
    async def _find_targets(
        self, definition_id: str | None, instance_id: str | None, report: CycleReport
    ) -> tuple[list[_Target], list[InstanceRecord]]:
        page = self._config.page_size
        if definition_id:
            definitions = [await self._reviews.get_definition(definition_id)]
        else:
            definitions = [
                d
                async for d in self._reviews.list_definitions(
                    Query(top=page, select=DEFINITION_FIELDS)
                )
            ]
        by_id = {d.id: d for d in definitions}

        instances: list[AccessReviewInstance] = []
        if instance_id and definition_id:
            try:
                one = await self._reviews.get_instance(definition_id, instance_id)
            except GraphNotFound:
                one = AccessReviewInstance(
                    id=instance_id, definition_id=definition_id, status="Deleted"
                )
            instances = [one] if one.status == IN_PROGRESS else []
        elif definitions:
            listed = await self._reviews.list_instances_for_definitions(
                [d.id for d in definitions],
                Query(top=page, select=INSTANCE_FIELDS, filter=odata_eq("status", IN_PROGRESS)),
            )
            instances = [i for group in listed.values() for i in group if i.status == IN_PROGRESS]

        # Instances the store thinks are running but Graph no longer lists as such.
        active_ids = {i.id for i in instances}
        scope_definitions = set(by_id) if definition_id else None
        ended_candidates = [
            record
            for record in await self._store.list_instances(status=IN_PROGRESS)
            if record.instance_id not in active_ids
            and (scope_definitions is None or record.definition_id in scope_definitions)
            and (instance_id is None or record.instance_id == instance_id)
        ]

        targets: list[_Target] = []
        multi_stage = [i for i in instances if by_id[i.definition_id].is_multi_stage]
        stages = await asyncio.gather(*(self._active_stage(i) for i in multi_stage))
        stage_of = {i.id: s for i, s in zip(multi_stage, stages, strict=True)}
        for instance in instances:
            definition = by_id[instance.definition_id]
            if definition.is_multi_stage:
                stage = stage_of[instance.id]
                if stage is None:
                    continue  # between stages: nothing can be decided right now
                targets.append(_Target(definition, instance, stage))
            else:
                targets.append(_Target(definition, instance, None))
        report.instances = len({t.instance.id for t in targets})
        return targets, ended_candidates

    async def _active_stage(self, instance: AccessReviewInstance) -> AccessReviewStage | None:
        async for stage in self._reviews.list_stages(
            instance.definition_id, instance.id, Query(filter=odata_eq("status", IN_PROGRESS))
        ):
            if stage.status == IN_PROGRESS:
                return stage
        return None

    # -- step 2-4: one instance -----------------------------------------------------------------
    async def _process_instance(
        self, targets: list[_Target], resolver: ReviewerResolver, report: CycleReport
    ) -> None:
        target = targets[0]
        instance = target.instance
        read_began = self._clock.now()
        try:
            decisions = await self._pending_decisions(target)
            if _needs_managers(target):
                # All of them at once, the cheaper way (resolver.ManagerLookup). While the
                # tenant's user list is read this instance keeps its slot: handing it back let
                # a hundred instances hold their decisions at once (+35 MB at 100k) for no gain.
                await resolver.prefetch_managers(decisions)
            resolutions = await asyncio.gather(
                *(
                    resolver.resolve(
                        reviewers=target.reviewers,
                        fallback_reviewers=target.fallback_reviewers,
                        decision=d,
                    )
                    for d in decisions
                )
            )
            previous = await self._store.get_instance(instance_id=instance.id)
            crosschecked = bool(previous is not None and previous.data.get("crosschecked"))
            if (
                self._config.crosscheck_contacted_reviewers
                and not crosschecked
                and _resolved_through_directory(target)
                and report.crosschecks < self._config.crosscheck_limit_per_cycle
            ):
                report.crosschecks += 1
                await self._crosscheck(target, {r for res in resolutions for r in res.reviewers})
                crosschecked = True
        except GraphError as exc:
            report.complete = False
            report.errors.append(f"instance {instance.id}: {exc}")
            self._metrics.errors.labels("instance").inc()
            log.warning("instance skipped this cycle, previous snapshot kept: %s", exc)
            return

        await _check_guard()
        record = self._instance_record(target)
        if crosschecked:
            record = _replace_instance(record, data={**record.data, "crosschecked": True})
        await self._store.upsert_instances(instances=[record])
        stored = {i.item_id: i for i in await self._store.list_items(instance_id=instance.id)}
        pending_ids = {d.id for d in decisions}
        items = [
            self._item_record(target, d, res.source, stored.get(d.id))
            for d, res in zip(decisions, resolutions, strict=True)
        ]
        items, reopened = await self._values.hold_writes_in_flight(
            instance.id, items, stored, read_began
        )
        await self._store.upsert_items(items=items)
        report.pending_items += len(items)

        # Items pending last time and not now were decided somewhere else (or removed).
        vanished = [
            item
            for item_id, item in stored.items()
            if item.decision == PENDING and item_id not in pending_ids
        ]
        decided_now = await self._refresh_vanished(target, vanished, report)
        await self._correct_values(
            target, stored, pending_ids | decided_now, reopened, read_began, report
        )

        previous_pairs = await self._store.list_assignments(instance_id=instance.id)
        decided_ids = {i for i, item in stored.items() if item.decision != PENDING} | decided_now
        decided_ids -= pending_ids
        pairs = {(r, i) for r, _inst, i in previous_pairs if i in decided_ids}
        for decision, resolution in zip(decisions, resolutions, strict=True):
            pairs.update((reviewer, decision.id) for reviewer in resolution.reviewers)
        change = await self._store.replace_assignments(instance_id=instance.id, pairs=pairs)
        report.assignments_added += len(change.added)
        report.assignments_removed += len(change.removed)
        self._metrics.assignments.labels("added").inc(len(change.added))
        self._metrics.assignments.labels("removed").inc(len(change.removed))

        added_by_reviewer: dict[str, list[str]] = defaultdict(list)
        for reviewer, item_id in sorted(change.added):
            if item_id in pending_ids:
                added_by_reviewer[reviewer].append(item_id)
        events: list[DomainEvent] = [
            Assigned(reviewer_oid=r, instance_id=instance.id, item_ids=tuple(ids))
            for r, ids in added_by_reviewer.items()
        ]
        had_pending = {
            r
            for r, _inst, i in previous_pairs
            if stored.get(i, None) and stored[i].decision == PENDING
        }
        has_pending = {r for r, i in pairs if i in pending_ids}
        events.extend(
            ReviewerDone(reviewer_oid=r, instance_id=instance.id)
            for r in sorted(had_pending - has_pending)
        )
        await self._emit(events, report)
        rest = sorted(has_pending - set(added_by_reviewer))
        for reconciler in self._reconcilers:
            await reconciler(instance.id, rest)

    async def _pending_decisions(self, target: _Target) -> list[AccessReviewDecision]:
        query = Query(
            top=self._config.page_size,
            select=DECISION_FIELDS,
            filter=odata_eq("decision", PENDING),
        )
        decisions: list[AccessReviewDecision] = []
        async for item in self._graph.paginate(target.decisions_path(), params=query):
            # Everything discovery uses is modelled: the JSON is not kept (a poll holds many
            # instances' decisions at once; ~1.5 KB each).
            decision = AccessReviewDecision.from_graph(item, keep_raw=False)
            if decision.is_pending:
                decisions.append(decision)
        return decisions

    async def _refresh_vanished(
        self, target: _Target, vanished: list[ItemRecord], report: CycleReport
    ) -> set[str]:
        """Read the current state of items that left the pending list; record who decided."""
        if not vanished:
            return set()
        base = target.decisions_path()
        requests = [
            BatchRequest(id=str(n), method="GET", url=f"{base}/{item.item_id}")
            for n, item in enumerate(vanished)
        ]
        answers = await self._graph.batch(requests)
        updated: list[ItemRecord] = []
        events: list[DomainEvent] = []
        for n, item in enumerate(vanished):
            answer = answers[str(n)]
            if isinstance(answer.error, GraphNotFound):
                # Gone from the review (principal removed from scope): nothing to decide any more.
                updated.append(_replace_item(item, decision="Removed"))
                continue
            if answer.error is not None:
                report.complete = False
                report.errors.append(f"decision {item.item_id}: {answer.error}")
                continue
            decision = AccessReviewDecision.from_graph(answer.body or {})
            if decision.is_pending:
                continue  # moved to another stage path or flickered; next cycle sees it
            by = decision.reviewed_by
            updated.append(
                _replace_item(
                    item,
                    decision=decision.decision,
                    reviewed_by=None if by.is_nobody else by.id,
                    reviewed_at=decision.reviewed_at,
                    justification=decision.justification or None,
                    data={**item.data, "reviewedByName": by.display_name},
                )
            )
            events.append(
                ItemDecidedElsewhere(
                    instance_id=item.instance_id,
                    item_id=item.item_id,
                    decision=decision.decision,
                    decided_by="" if by.is_nobody else by.id,
                    decided_by_name=by.display_name,
                    decided_at=decision.reviewed_at,
                )
            )
        await self._store.upsert_items(items=updated)
        await self._emit(events, report)
        return {item.item_id for item in updated}

    async def _crosscheck(self, target: _Target, resolved: set[str]) -> None:
        """Log when Graph's contactedReviewers and our resolution disagree (both sides shown)."""
        try:
            contacted = {
                r.id
                async for r in self._reviews.contacted_reviewers(
                    target.definition.id, target.instance.id, Query(select=("id",))
                )
            }
        except GraphError as exc:
            log.info("contactedReviewers unavailable for cross-check: %s", exc)
            return
        if contacted and contacted != resolved:
            log.warning(
                "reviewers differ from Graph's contactedReviewers",
                extra={
                    "instance_id": target.instance.id,
                    "only_ours": ",".join(sorted(resolved - contacted)),
                    "only_graph": ",".join(sorted(contacted - resolved)),
                },
            )

    async def _end_instances(self, candidates: list[InstanceRecord], report: CycleReport) -> None:
        for record in candidates:
            await _check_guard()
            try:
                current = await self._reviews.get_instance(record.definition_id, record.instance_id)
                status = current.status
            except GraphNotFound:
                status = "Deleted"
            except GraphError as exc:
                report.complete = False
                report.errors.append(f"instance {record.instance_id}: {exc}")
                continue
            if status == IN_PROGRESS:
                continue  # a listing race; it is still running
            await self._record_status(record, status, report)

    async def _follow_ended(
        self, definition_id: str | None, instance_id: str | None, report: CycleReport
    ) -> None:
        """Re-read ended instances Graph may still move on, and record where they went."""
        now = self._clock.now()
        due: list[InstanceRecord] = []
        for record in await self._store.list_instances():
            status = record.status
            if status in (IN_PROGRESS, ReviewStatus.APPLIED, "Deleted"):
                continue
            if definition_id is not None and record.definition_id != definition_id:
                continue
            if instance_id is not None and record.instance_id != instance_id:
                continue
            if status not in ReviewStatus.SETTLING and status not in ReviewStatus.NOT_YET_OPEN:
                ended_at = _when(record.data.get("endedAt")) or record.end_at
                checked_at = _when(record.data.get("statusCheckedAt")) or ended_at
                if ended_at is None or (now - ended_at).total_seconds() > (
                    self._config.follow_ended_s
                ):
                    continue
                if checked_at is not None and (now - checked_at).total_seconds() < (
                    self._config.recheck_ended_s
                ):
                    continue
            due.append(record)
        if not due:
            return
        select = encode_query(Query(select=("id", "status")).params())
        answers = await self._graph.batch(
            [
                BatchRequest(
                    id=str(n),
                    method="GET",
                    url=f"{_ROOT}/{_seg(r.definition_id)}/instances/{_seg(r.instance_id)}?{select}",
                )
                for n, r in enumerate(due)
            ]
        )
        for n, record in enumerate(due):
            await _check_guard()
            answer = answers[str(n)]
            if isinstance(answer.error, GraphNotFound):
                status = "Deleted"
            elif answer.error is not None:
                report.complete = False
                report.errors.append(f"instance {record.instance_id}: {answer.error}")
                continue
            else:
                body = answer.body if isinstance(answer.body, Mapping) else {}
                status = AccessReviewInstance.from_graph(body).status
            if status == record.status or status == IN_PROGRESS:
                # Unchanged (or reopened, which the next listing picks up): remember the look.
                await self._store.upsert_instances(
                    instances=[
                        _replace_instance(
                            record, data={**record.data, "statusCheckedAt": now.isoformat()}
                        )
                    ]
                )
                continue
            await self._record_status(record, status, report)

    async def _record_status(
        self, record: InstanceRecord, status: str, report: CycleReport
    ) -> None:
        """Store an instance's new (not open) status and tell the cards."""
        now = self._clock.now().isoformat()
        data = {**record.data, "statusCheckedAt": now}
        if record.status == IN_PROGRESS:
            data["endedAt"] = now
        if not ReviewStatus.is_open(status) and status not in ReviewStatus.DOCUMENTED:
            log.info(
                "instance has an undocumented status: not open for decisions",
                extra={"instance_id": record.instance_id, "status": status[:64]},
            )
        await self._store.upsert_instances(
            instances=[_replace_instance(record, status=status, data=data)]
        )
        await self._emit(
            [
                InstanceEnded(
                    instance_id=record.instance_id, status=status, previous_status=record.status
                )
            ],
            report,
        )

    async def _correct_values(
        self,
        target: _Target,
        stored: Mapping[str, ItemRecord],
        seen: set[str],
        reopened: list[ItemRecord],
        read_began: datetime,
        report: CycleReport,
    ) -> None:
        """Graph wins over the store where no write of the bot is in flight
        (:mod:`bot.reviews.reconcile`): the store is corrected, audited, the cards edited."""
        fix = await self._values.corrections(
            instance_id=target.instance.id,
            stage_id=target.stage.id if target.stage else None,
            decisions_path=target.decisions_path(),
            stored=stored,
            seen=seen,
            reopened=reopened,
            read_began=read_began,
        )
        if fix.errors:
            report.complete = False
            report.errors.extend(fix.errors)
        if not fix.events:
            return
        await _check_guard()
        await self._store.upsert_items(items=fix.items)
        await self._store.append_audits(events=fix.audit)
        await self._emit(fix.events, report, audit=False)

    # -- records and events ---------------------------------------------------------------------
    def _instance_record(self, target: _Target) -> InstanceRecord:
        definition, instance, stage = target.definition, target.instance, target.stage
        settings = {
            k: definition.settings.get(k) for k in _KEPT_SETTINGS if k in definition.settings
        }
        display_name = str(instance.raw.get("displayName") or definition.display_name)
        return InstanceRecord(
            instance_id=instance.id,
            definition_id=definition.id,
            display_name=display_name,
            status=instance.status,
            start_at=instance.start,
            end_at=stage.end if stage is not None and stage.end else instance.end,
            stage_id=stage.id if stage is not None else None,
            data={
                "definitionName": definition.display_name,
                "descriptionForReviewers": definition.description_for_reviewers,
                "settings": settings,
                "multiStage": definition.is_multi_stage,
                "stageCount": len(definition.stage_settings),
                "stageEnd": stage.end.isoformat() if stage is not None and stage.end else None,
                "instanceEnd": instance.end.isoformat() if instance.end else None,
                "scopeQuery": str(instance.scope.get("query") or ""),
                # Specific people among the fallback reviewers: escalations go to them when a
                # reviewer has no manager.
                "fallbackUserIds": _specific_users(target.fallback_reviewers),
            },
        )

    def _item_record(
        self,
        target: _Target,
        decision: AccessReviewDecision,
        resolution_source: str,
        previous: ItemRecord | None,
    ) -> ItemRecord:
        principal = decision.principal
        resource = decision.resource
        signed_in_at = decision.principal_signed_in_at
        data: dict[str, Any] = {
            "principal": {
                "id": principal.id,
                "displayName": principal.display_name,
                "userPrincipalName": principal.user_principal_name,
                # A guest's #EXT# name is unreadable: the cards show its real address.
                "address": principal.address if principal.is_guest else None,
                "type": principal.kind or "user",
                "isGuest": principal.is_guest,
                "appId": decision.principal_app_id,
            },
            "resource": {
                "id": resource.id if resource else "",
                "displayName": resource.display_name if resource else "",
                "type": decision.resource_kind,
            },
            # ISO 8601 (Graph's own text is US-formatted); None with neverSignedIn when Graph
            # said "" or null, None alone when it said nothing usable.
            "lastSignIn": signed_in_at.isoformat() if signed_in_at else None,
            "neverSignedIn": decision.principal_never_signed_in,
            "reviewerSource": resolution_source,
        }
        if previous is not None and previous.data.get("earlierStages"):
            data["earlierStages"] = previous.data["earlierStages"]
        if (
            previous is not None
            and previous.stage_id
            and previous.stage_id != (target.stage.id if target.stage else None)
            and previous.decision != PENDING
        ):
            # The item moved on from an earlier stage: keep that stage's outcome for reviewers.
            data["earlierStages"] = [
                *previous.data.get("earlierStages", []),
                {
                    "stageId": previous.stage_id,
                    "decision": previous.decision,
                    "justification": previous.justification or "",
                    "reviewedByName": previous.data.get("reviewedByName", ""),
                },
            ]
        return ItemRecord(
            instance_id=target.instance.id,
            item_id=decision.id,
            stage_id=target.stage.id if target.stage else None,
            decision=PENDING,
            recommendation=decision.recommendation or "NotAvailable",
            data=data,
        )

    async def _emit(
        self, events: Iterable[DomainEvent], report: CycleReport, *, audit: bool = True
    ) -> None:
        events = list(events)
        # Recorded first, all in one transaction; then handed to the consumers.
        if audit:
            await self._store.append_audits(events=[_audit_of(event) for event in events])
        for event in events:
            report.events.append(event)
            self._metrics.events.labels(type(event).__name__).inc()
        if not events:
            return
        for handler in self._handlers:
            # Handlers that take a batch get the whole pass at once (far fewer store calls).
            batch = getattr(handler, "handle_batch", None)
            try:
                if batch is not None:
                    await batch(events)
                else:
                    for event in events:
                        await handler(event)
            except Exception:
                # A consumer's failure must not stop discovery; the audit rows stay, and the
                # first full cycle under a new lease queues any first card still missing.
                log.exception("event handler failed")


def _audit_of(event: DomainEvent) -> AuditEvent:
    detail: Mapping[str, Any]
    match event:
        case Assigned():
            detail = {"items": len(event.item_ids), "itemIds": list(event.item_ids[:200])}
            return AuditEvent(
                action="assigned",
                actor="discovery",
                instance_id=event.instance_id,
                detail={"reviewer": event.reviewer_oid, **detail},
            )
        case ItemDecidedElsewhere():
            return AuditEvent(
                action="item_decided_elsewhere",
                actor=event.decided_by or "system",
                instance_id=event.instance_id,
                item_id=event.item_id,
                detail={"decision": event.decision, "by": event.decided_by_name},
            )
        case InstanceEnded():
            ended = event.previous_status == IN_PROGRESS
            return AuditEvent(
                action="instance_ended" if ended else "instance_status_changed",
                actor="discovery",
                instance_id=event.instance_id,
                detail={"status": event.status, "previous": event.previous_status},
            )
        case ReviewerDone():
            return AuditEvent(
                action="reviewer_done",
                actor="discovery",
                instance_id=event.instance_id,
                detail={"reviewer": event.reviewer_oid},
            )


def _resolved_through_directory(target: _Target) -> bool:
    """Whether reviewers come from directory relations (a cross-check can find a difference);
    named users and self-review cannot differ."""
    kinds = {scope_kind(s) for s in (*target.reviewers, *target.fallback_reviewers)}
    return bool(kinds - {"user"})


def _needs_managers(target: _Target) -> bool:
    return any(scope_kind(s) == "manager" for s in (*target.reviewers, *target.fallback_reviewers))


def _specific_users(scopes: Iterable[ReviewerScope]) -> list[str]:
    found: list[str] = []
    for scope in scopes:
        path = scope.query.split("?")[0]
        parts = [p for p in path.split("/") if p and p not in ("v1.0", "beta")]
        if len(parts) == 2 and parts[0].lower() == "users":
            found.append(parts[1])
    return found


def _replace_item(item: ItemRecord, **changes: Any) -> ItemRecord:
    return replace(item, **changes)


def _replace_instance(record: InstanceRecord, **changes: Any) -> InstanceRecord:
    return replace(record, **changes)


def _when(value: Any) -> datetime | None:
    """An ISO timestamp kept in a record's data, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seg(value: str) -> str:
    return quote(value, safe="")
