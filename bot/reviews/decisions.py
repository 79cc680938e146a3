"""Recording a reviewer's decision: authorize from the store, write to Graph as the reviewer.

The order is what makes a click safe:

1. **Authorize** against the store only: the instance is ours and running, the actor is a
   current reviewer of every item named, each item belongs to the instance, a justification is
   there when the review requires one (≤ 500 characters). A refusal writes nothing.
2. **Get a delegated token** (msal on-behalf-of; cached, or exchanged from the Teams SSO token).
   None available → the caller answers with a Teams ``loginRequest``; still nothing written.
3. **Record the intent** in the outbox (durable) and mark the items "saving".
4. **Write to Graph** as the reviewer (PATCH, or ``$batch`` of PATCHes), within a short deadline.
   Success → the store shows the decision, the audit trail has it, the outbox row is done.
   A transient failure or the deadline → the row stays and :class:`DecisionWorker` finishes it
   later with the cached token, as long as the review runs. A permanent failure (403, 404,
   400) → the items show the error.

**Writes to one item are ordered** (issue 14: Approve and Deny clicked at once left Graph and
the store disagreeing). The transaction that records a click's intent also makes it the newest
click on each of its items and takes the item's write claim if no other write holds it
(:meth:`~bot.store.Store.begin_decision`, a row per item in the store, so replicas agree; no
database transaction is held across the Graph call). Only the newest click on an item writes
it: a later click waits (bounded by the invoke's deadline, then "Saving…") for the write in
flight, and an earlier click that has not written yet is superseded. The claim is released in
the transaction that records the outcome, so Graph and the store see the writes in the same
order and end equal — last click wins.

**The same decision clicked twice** (same reviewer, item, decision and reason, a new activity
id) within :data:`REPEAT_WINDOW_S` is one write and one audit line: the second click adds no
intent and is answered from the first one's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import uuid
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Literal

from bot.backoff import full_jitter_s
from bot.clock import Clock
from bot.graph import (
    AccessReviewsApi,
    DecisionWrite,
    GraphBadRequest,
    GraphClient,
    GraphConflict,
    GraphError,
    GraphForbidden,
    GraphNotFound,
    OboTokenProvider,
)
from bot.store import (
    AuditEvent,
    InstanceRecord,
    ItemClaims,
    ItemRecord,
    OutboxMessage,
    Store,
    WriteClaim,
    is_unavailable,
)

__all__ = [
    "DECISION_KIND",
    "DecisionOutcome",
    "DecisionRequest",
    "DecisionService",
    "DecisionWorker",
    "Refusal",
]

log = logging.getLogger(__name__)

DECISION_KIND = "decision"
JUSTIFICATION_MAX_CHARS = 500
WRITABLE = frozenset({"Approve", "Deny", "DontKnow"})
#: Identical decisions by the same reviewer on the same item within this many seconds are one
#: write and one audit line. Long enough for a double click, for Teams sending an invoke again
#: after giving up on the first (it waits 10–15 s), and for a reviewer who clicks again because
#: the first answer was slow; short next to any deliberate second decision, which if identical
#: changes nothing in Graph anyway.
REPEAT_WINDOW_S = 60.0
#: How long a write waits for an earlier write of the same item to end before it gives its row
#: back to be tried again (the click itself answers "Saving…" at its inline deadline).
ITEM_WAIT_S = 20.0
#: How often a waiting write looks again (a write in another replica ends unannounced; one in
#: this process wakes it at once), and how soon a row given back is tried again.
ITEM_POLL_S = 0.05
ITEM_RETRY_S = 0.5
#: Transient Graph failures are retried with full jitter, doubling from this up to the cap,
#: for as long as the review runs.
WRITE_RETRY_BASE_S = 2.0
WRITE_RETRY_CAP_S = 300.0

RefusalReason = Literal[
    "unknown_review",
    "review_ended",
    "not_a_reviewer",
    "justification_required",
    "justification_too_long",
    "bad_decision",
    "nothing_selected",
    "wrong_tenant",
]


@dataclass(frozen=True)
class Refusal:
    """Why an action was refused before anything was written."""

    reason: RefusalReason
    detail: str = ""


@dataclass(frozen=True)
class DecisionRequest:
    """One click: the actor, the instance, the item decisions and the justification."""

    tenant_id: str
    actor_oid: str
    actor_name: str
    instance_id: str
    decisions: Mapping[str, str]  # item id → Approve / Deny / DontKnow
    justification: str | None = None
    idempotency: str = ""  # the invoke's activity id: a redelivered invoke writes once
    sso_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DecisionOutcome:
    """What became of a decision request."""

    status: Literal["saved", "saving", "failed"]
    item_ids: tuple[str, ...]
    error: str | None = None
    request_id: str | None = None


def _reason_digest(justification: str | None) -> str:
    """A digest of the reason, to tell a repeated click (same reason) from a new one."""
    return hashlib.sha256((justification or "").strip().encode()).hexdigest()[:32]


def _intent_key(request: DecisionRequest) -> str:
    digest = hashlib.sha256(
        "|".join(
            [
                request.actor_oid,
                request.instance_id,
                request.idempotency or uuid.uuid4().hex,
                *(f"{i}={d}" for i, d in sorted(request.decisions.items())),
            ]
        ).encode()
    ).hexdigest()[:32]
    return f"decision|{request.actor_oid}|{request.instance_id}|{digest}"


def _report_background_write(write: asyncio.Future[DecisionOutcome]) -> None:
    """A write that went on after its click was answered has nobody to raise to: say how it
    ended. Its intent stays in the outbox, claimed, so the decision worker tries it again once
    the claim lapses; nothing is lost."""
    if write.cancelled():
        return
    error = write.exception()
    if error is None:
        return
    if is_unavailable(error):
        log.warning(
            "decision write interrupted, store unavailable: %s; the worker tries it again",
            type(error).__name__,
        )
    else:
        log.error("decision write failed; the worker tries it again", exc_info=error)


class DecisionService:
    """Authorizes and records decisions for one tenant."""

    def __init__(
        self,
        *,
        store: Store,
        graph: GraphClient,
        obo: OboTokenProvider,
        clock: Clock,
        tenant_id: str,
        inline_deadline_s: float = 2.5,
        worker_id: str | None = None,
        on_settled: Callable[[str, Sequence[str]], Awaitable[None]] | None = None,
        claim_lease_s: float = 60.0,
    ) -> None:
        self._claim_lease_s = claim_lease_s
        self._store = store
        self._graph = graph
        self._obo = obo
        self._clock = clock
        self._tenant_id = tenant_id
        self._inline_deadline_s = inline_deadline_s
        self._worker_id = worker_id or f"decide-{uuid.uuid4().hex[:12]}"
        # Called with (instance id, item ids) once items changed: edit the cards that show them.
        self._on_settled = on_settled
        # Writes that outlived the inline deadline, finishing in the background under their claim.
        self._background: set[asyncio.Task[DecisionOutcome]] = set()
        # Per intent: marking items "saving" and settling their outcome never interleave, so a
        # late "saving" mark cannot overwrite a decision that was just recorded.
        self._intent_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        # Writes of this process waiting for an earlier write of the same item, by item: woken
        # when a write here lets go of its claims (one in another replica is polled for). Weak:
        # an event lives as long as somebody waits on it.
        self._item_waiters: weakref.WeakValueDictionary[tuple[str, str], asyncio.Event] = (
            weakref.WeakValueDictionary()
        )
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not cryptography

    # -- step 1 ---------------------------------------------------------------------------------
    async def authorize(
        self,
        *,
        tenant_id: str,
        actor_oid: str,
        instance_id: str,
        item_ids: Sequence[str],
        decision: str | None = None,
        justification: str | None = None,
        needs_writable: bool = True,
    ) -> tuple[InstanceRecord, list[ItemRecord]] | Refusal:
        """Check an action against the store; return the instance and items, or why not."""
        if tenant_id.lower() != self._tenant_id.lower():
            return Refusal("wrong_tenant")
        instance = await self._store.get_instance(instance_id=instance_id)
        if instance is None:
            return Refusal("unknown_review")
        if not item_ids:
            return Refusal("nothing_selected")
        if decision is not None and decision not in WRITABLE:
            return Refusal("bad_decision", decision)
        # Every named item must be the actor's (assigned to them, and stored): one read.
        items = await self._store.list_reviewer_items(
            instance_id=instance_id, reviewer_oid=actor_oid, item_ids=list(item_ids)
        )
        if len(items) != len(set(item_ids)):
            return Refusal("not_a_reviewer")
        if needs_writable:
            now = self._clock.now()
            if instance.status != "InProgress" or (
                instance.end_at is not None and instance.end_at <= now
            ):
                return Refusal("review_ended")
            if any(item.decision == "Removed" for item in items):
                return Refusal("not_a_reviewer")
            settings = instance.data.get("settings") or {}
            reason = (justification or "").strip()
            if settings.get("justificationRequiredOnApproval") and not reason:
                return Refusal("justification_required")
            if len(reason) > JUSTIFICATION_MAX_CHARS:
                return Refusal("justification_too_long")
        return instance, items

    # -- step 2 ---------------------------------------------------------------------------------
    async def ensure_token(self, *, actor_oid: str, sso_token: str | None) -> None:
        """Raise :class:`~bot.graph.NoCachedToken` (and other token errors) before anything is written."""
        await self._obo.acquire(user_oid=actor_oid, tenant_id=self._tenant_id, sso_token=sso_token)

    # -- steps 3 and 4 --------------------------------------------------------------------------
    async def record(self, request: DecisionRequest, instance: InstanceRecord) -> DecisionOutcome:
        """Record the intent durably, then try the Graph write within the inline deadline."""
        key = _intent_key(request)
        payload = {
            "tenantId": request.tenant_id,
            "actorOid": request.actor_oid,
            "actorName": request.actor_name,
            "instanceId": request.instance_id,
            "definitionId": instance.definition_id,
            "stageId": instance.stage_id,
            "decisions": dict(request.decisions),
            "justification": (request.justification or "").strip() or None,
        }
        start = await self._store.begin_decision(
            key=key,
            kind=DECISION_KIND,
            payload=payload,
            instance_id=request.instance_id,
            actor_oid=request.actor_oid,
            decisions=request.decisions,
            reason_digest=_reason_digest(request.justification),
            worker=self._worker_id,
            lease_s=self._claim_lease_s,
            repeat_window_s=REPEAT_WINDOW_S,
        )
        message = start.message
        if message is None:
            if start.repeats:
                # The same decisions again: answered from the earlier click's outcome.
                log.info(
                    "repeated click: nothing new to write", extra={"items": len(start.repeats)}
                )
                return _repeat_outcome(request, start.repeat_status)
            # A redelivered invoke whose write is already done or in another worker's hands.
            existing = await self._store.get_outbox(key=key)
            if existing is not None and existing.status == "done":
                return DecisionOutcome(status="saved", item_ids=tuple(request.decisions))
            return DecisionOutcome(status="saving", item_ids=tuple(request.decisions))
        write = asyncio.ensure_future(
            self.execute(
                message,
                worker=self._worker_id,
                sso_token=request.sso_token,
                claims=start.claims,
                wait_s=ITEM_WAIT_S,
            )
        )
        try:
            return await asyncio.wait_for(asyncio.shield(write), self._inline_deadline_s)
        except TimeoutError:
            # Graph is slow (or an earlier write of the same item is): the card says "Saving…"
            # and this write goes on under its claim. Cancelling it could cut off a PATCH Graph
            # already applied; the retry would then write it a second time.
            async with self._intent_lock(key):
                settled = await self._store.get_outbox(key=key)
                if settled is None or settled.status != "done":
                    await self._mark_saving(
                        request.instance_id,
                        {i: d for i, d in request.decisions.items() if i not in start.repeats},
                    )
            self._background.add(write)
            write.add_done_callback(self._background.discard)
            write.add_done_callback(_report_background_write)
            return DecisionOutcome(status="saving", item_ids=tuple(request.decisions))

    async def execute(
        self,
        message: OutboxMessage,
        *,
        worker: str,
        sso_token: str | None = None,
        claims: ItemClaims | None = None,
        wait_s: float = 0.0,
    ) -> DecisionOutcome:
        """Write one claimed decision intent to Graph and settle the store. Safe to repeat.

        Only the items this intent holds the write claim of are written (see the module
        docstring); ``claims`` are those :meth:`record` took with the intent, else they are
        taken here. While an earlier write of one of its items is in flight, this waits up to
        ``wait_s``, then gives the row back to be tried again shortly.
        """
        payload = message.payload
        actor = str(payload["actorOid"])
        instance_id = str(payload["instanceId"])
        decisions: dict[str, str] = dict(payload.get("decisions") or {})
        repeats = set(payload.get("repeats") or ())
        own = sorted(set(decisions) - repeats)
        claim = WriteClaim(key=message.key, instance_id=instance_id, item_ids=tuple(own))
        if claims is None:
            claims = await self._claim(claim)
        if claims.waiting and wait_s > 0:
            claims = await self._wait_for_items(claim, claims, wait_s)
        if claims.waiting:
            # An earlier write of one of these items is still in flight; this intent keeps the
            # claims it has (nobody but it may take them) and looks again shortly.
            await self._store.retry_outbox(
                message_id=message.id,
                worker=worker,
                error="waiting for an earlier write of the same item",
                not_before=self._clock.now() + timedelta(seconds=ITEM_RETRY_S),
            )
            return DecisionOutcome(status="saving", item_ids=tuple(decisions))
        justification = payload.get("justification")
        writes = [
            DecisionWrite(
                definition_id=str(payload["definitionId"]),
                instance_id=instance_id,
                decision_id=item_id,
                decision=decisions[item_id],
                justification=justification,
                stage_id=payload.get("stageId") or None,
            )
            for item_id in own
            if item_id in claims.held
        ]
        superseded = sorted(set(own) & claims.superseded)
        api = AccessReviewsApi(
            self._graph.with_tokens(
                self._obo.for_user(user_oid=actor, tenant_id=self._tenant_id, sso_token=sso_token)
            )
        )
        failures: dict[str, GraphError] = {}
        transient: GraphError | None = None
        try:
            pending = writes
            if message.attempts > 1:
                # A retry: an earlier attempt may have reached Graph and died before recording
                # it (a crash, a cut connection). What Graph already shows as this reviewer's
                # decision is not written again (it would count twice in Graph's audit).
                pending = [w for w in writes if not await self._already_written(api, w, actor)]
            if len(pending) == 1:
                await api.record_decision(pending[0])
            elif pending:
                answers = await api.record_decisions(pending)
                for item_id, answer in answers.items():
                    if answer.error is not None:
                        failures[item_id] = answer.error
        except GraphError as exc:
            if _permanent(exc):
                failures = {w.decision_id: exc for w in writes}
            else:
                transient = exc
        if transient is None:
            transient = next((e for e in failures.values() if not _permanent(e)), None)
            if transient is not None:
                failures = {}
        if transient is not None:
            held = [w.decision_id for w in writes]
            return await self._transient(message, worker, transient, claim, held=held)

        saved = [w for w in writes if w.decision_id not in failures]
        result: dict[str, Any] = {"saved": [w.decision_id for w in saved]}
        if failures:
            result["failed"] = sorted(failures)
        if superseded:
            result["superseded"] = superseded
        async with self._intent_lock(message.key):
            items, audit = await self._outcome(payload, saved, failures)
            audit.extend(_superseded_audit(payload, superseded))
            # The items, the audit lines, the completion and the end of the item claims land in
            # one transaction: the next write of these items starts after this one is recorded.
            await self._store.complete_outbox(
                message_id=message.id,
                worker=worker,
                result=result,
                items=items,
                audit=audit,
                claims=claim,
            )
        self._wake_waiters(claim)
        if self._on_settled is not None and items:
            await self._on_settled(str(payload["instanceId"]), [i.item_id for i in items])
        if failures:
            error = next(iter(failures.values()))
            return DecisionOutcome(
                status="failed" if not saved else "saved",
                item_ids=tuple(decisions),
                error=_error_code(error),
                request_id=error.request_id,
            )
        return DecisionOutcome(status="saved", item_ids=tuple(decisions))

    async def _claim(self, claim: WriteClaim) -> ItemClaims:
        return await self._store.claim_item_writes(
            key=claim.key,
            instance_id=claim.instance_id,
            item_ids=claim.item_ids,
            lease_s=self._claim_lease_s,
        )

    async def _wait_for_items(
        self, claim: WriteClaim, claims: ItemClaims, wait_s: float
    ) -> ItemClaims:
        """Wait (up to ``wait_s``) until no earlier write of this intent's items is in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while claims.waiting and loop.time() < deadline:
            events = [self._item_waiter(claim.instance_id, item) for item in claims.waiting]
            waiters = [asyncio.ensure_future(event.wait()) for event in events]
            try:
                await asyncio.wait(
                    waiters,
                    timeout=min(ITEM_POLL_S, max(0.0, deadline - loop.time())),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()
            claims = await self._claim(claim)
        return claims

    def _item_waiter(self, instance_id: str, item_id: str) -> asyncio.Event:
        event = self._item_waiters.get((instance_id, item_id))
        if event is None:
            event = asyncio.Event()
            self._item_waiters[(instance_id, item_id)] = event
        return event

    def _wake_waiters(self, claim: WriteClaim) -> None:
        for item in claim.item_ids:
            event = self._item_waiters.pop((claim.instance_id, item), None)
            if event is not None:
                event.set()

    @staticmethod
    async def _already_written(api: AccessReviewsApi, write: DecisionWrite, actor: str) -> bool:
        current = await api.get_decision(
            write.definition_id, write.instance_id, write.decision_id, stage_id=write.stage_id
        )
        # The reason counts too: a second click may change only the reason, and a retry of it
        # must still write it.
        return (
            current.decision == write.decision
            and current.reviewed_by.id.lower() == actor.lower()
            and (current.justification or "") == (write.justification or "")
        )

    async def _transient(
        self,
        message: OutboxMessage,
        worker: str,
        error: GraphError,
        claim: WriteClaim,
        *,
        held: Sequence[str],
    ) -> DecisionOutcome:
        """A transient failure is never final while the review runs: the row is tried again
        after ``Retry-After`` or a full-jitter backoff. Once the review has ended (nothing can be
        written any more) the items this intent still writes (``held``: not those a later click
        took over, nor repeats) show the error."""
        instance = await self._store.get_instance(instance_id=claim.instance_id)
        now = self._clock.now()
        ended = (
            instance is None
            or instance.status != "InProgress"
            or (instance.end_at is not None and instance.end_at <= now)
        )
        if ended:
            items, audit = await self._outcome(message.payload, [], dict.fromkeys(held, error))
            # The items, their audit lines and the failure in one transaction (all or nothing).
            await self._store.fail_outbox(
                message_id=message.id,
                worker=worker,
                error=str(error)[:500],
                result={"reason": "review ended before Graph took the write"},
                claims=claim,
                items=items,
                audit=audit,
            )
            self._wake_waiters(claim)
            if self._on_settled is not None and items:
                await self._on_settled(
                    str(message.payload["instanceId"]), [i.item_id for i in items]
                )
            return DecisionOutcome(
                status="failed",
                item_ids=tuple(message.payload.get("decisions") or {}),
                error="unavailable",
            )
        backoff_s = full_jitter_s(
            max(0, message.attempts - 1),
            base_s=WRITE_RETRY_BASE_S,
            cap_s=WRITE_RETRY_CAP_S,
            rng=self._rng,
        )
        # Graph's Retry-After is honoured, up to the cap: a write waits at most that long between
        # tries, so it is never parked past its review by one answer.
        delay_s = min(max(error.retry_after_s or 0.0, backoff_s), WRITE_RETRY_CAP_S)
        # The claim goes: a later click on these items may write meanwhile (this intent is then
        # superseded and writes nothing when it comes back).
        await self._store.retry_outbox(
            message_id=message.id,
            worker=worker,
            error=str(error)[:500],
            not_before=now + timedelta(seconds=delay_s),
            claims=claim,
        )
        self._wake_waiters(claim)
        log.info(
            "decision write deferred: %s", type(error).__name__, extra={"attempt": message.attempts}
        )
        return DecisionOutcome(
            status="saving", item_ids=tuple(message.payload.get("decisions") or {})
        )

    # -- store bookkeeping ------------------------------------------------------------------------
    def _intent_lock(self, key: str) -> asyncio.Lock:
        lock = self._intent_locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._intent_locks[key] = lock
        return lock

    async def _mark_saving(self, instance_id: str, decisions: Mapping[str, str]) -> None:
        items = await self._store.list_items(instance_id=instance_id, item_ids=list(decisions))
        await self._store.upsert_items(
            items=[
                replace(
                    item,
                    data={
                        **{k: v for k, v in item.data.items() if k != "writeError"},
                        "saving": decisions[item.item_id],
                    },
                )
                for item in items
            ]
        )

    async def _outcome(
        self,
        payload: Mapping[str, Any],
        saved: list[DecisionWrite],
        failures: Mapping[str, GraphError],
    ) -> tuple[list[ItemRecord], list[AuditEvent]]:
        """The store changes a write's outcome makes: the items as decided (or failed), and
        one audit line per item."""
        instance_id = str(payload["instanceId"])
        actor = str(payload["actorOid"])
        now = self._clock.now()
        justification = payload.get("justification")
        ids = [w.decision_id for w in saved] + list(failures)
        items = {
            i.item_id: i
            for i in await self._store.list_items(instance_id=instance_id, item_ids=ids)
        }
        updated: list[ItemRecord] = []
        for write in saved:
            item = items.get(write.decision_id)
            if item is None:
                continue
            data = {k: v for k, v in item.data.items() if k not in ("saving", "writeError")}
            data["reviewedByName"] = str(payload.get("actorName") or "")
            updated.append(
                replace(
                    item,
                    decision=write.decision,
                    reviewed_by=actor,
                    reviewed_at=now,
                    justification=justification,
                    data=data,
                )
            )
        for item_id, error in failures.items():
            item = items.get(item_id)
            if item is None:
                continue
            data = {k: v for k, v in item.data.items() if k != "saving"}
            data["writeError"] = _error_code(error)
            updated.append(replace(item, data=data))
        audit: list[AuditEvent] = []
        for write in saved:
            audit.append(
                AuditEvent(
                    action="decision",
                    actor=actor,
                    instance_id=instance_id,
                    item_id=write.decision_id,
                    result="recorded",
                    detail={"decision": write.decision, "justification": justification or ""},
                )
            )
        for item_id, error in failures.items():
            audit.append(
                AuditEvent(
                    action="decision",
                    actor=actor,
                    instance_id=instance_id,
                    item_id=item_id,
                    result=f"failed:{_error_code(error)}",
                    request_id=error.request_id,
                    detail={
                        "decision": str((payload.get("decisions") or {}).get(item_id)),
                        "status": error.status,
                        "code": error.code or "",
                    },
                )
            )
        return updated, audit


def _repeat_outcome(request: DecisionRequest, statuses: Mapping[str, str]) -> DecisionOutcome:
    """The answer to a click that only repeats earlier ones: theirs."""
    items = tuple(request.decisions)
    found = set(statuses.values())
    if found and found <= {"done"}:
        return DecisionOutcome(status="saved", item_ids=items)
    if "failed" in found:
        return DecisionOutcome(status="failed", item_ids=items, error="unavailable")
    return DecisionOutcome(status="saving", item_ids=items)


def _superseded_audit(payload: Mapping[str, Any], item_ids: Sequence[str]) -> list[AuditEvent]:
    """A line per item a later click took over before this one was written."""
    decisions = payload.get("decisions") or {}
    return [
        AuditEvent(
            action="decision",
            actor=str(payload["actorOid"]),
            instance_id=str(payload["instanceId"]),
            item_id=item_id,
            result="superseded",
            detail={"decision": str(decisions.get(item_id)), "by": "a later click"},
        )
        for item_id in item_ids
    ]


class DecisionWorker:
    """Finishes decision writes that could not complete inside the click (Graph slow or down)."""

    def __init__(
        self,
        *,
        store: Store,
        service: DecisionService,
        worker_id: str | None = None,
        claim_lease_s: float = 120.0,
    ) -> None:
        self._store = store
        self._service = service
        self._claim_lease_s = claim_lease_s
        self.worker_id = worker_id or f"decisions-{uuid.uuid4().hex[:12]}"
        self.settled: list[DecisionOutcome] = []

    async def run_once(self) -> list[DecisionOutcome]:
        """Write every due decision intent once; return what became of them."""
        outcomes: list[DecisionOutcome] = []
        claimed = await self._store.claim_outbox(
            worker=self.worker_id, limit=50, lease_s=self._claim_lease_s, kinds=[DECISION_KIND]
        )
        for message in claimed:
            outcome = await self._service.execute(message, worker=self.worker_id)
            outcomes.append(outcome)
        self.settled.extend(o for o in outcomes if o.status != "saving")
        return outcomes

    async def run_forever(self, stop: asyncio.Event, *, idle_s: float = 1.0) -> None:
        """Retry pending writes until ``stop`` is set; each write waits for its own backoff."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("decision worker pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle_s)


def _permanent(error: GraphError) -> bool:
    return isinstance(error, GraphForbidden | GraphNotFound | GraphBadRequest | GraphConflict)


def _error_code(error: GraphError) -> str:
    if isinstance(error, GraphForbidden):
        return "forbidden"
    if isinstance(error, GraphNotFound):
        return "not_found"
    if isinstance(error, GraphBadRequest):
        return "bad_request"
    return "unavailable"
