"""The durable outbox of Teams messages and the worker that delivers it.

Every message is an outbox row first (:func:`enqueue_review_card`), keyed by
``(reviewer, instance, kind, sequence)`` so a repeated event cannot add a second one. The worker
claims due rows, renders the card from the store at send time (so it always shows the current
state), waits for a rate-limiter slot, sends or edits, records the activity id and marks the row
done. A claim that dies with its process expires and is taken again.

Outcomes. A transient failure is never final while its review runs (issue 14): 429 pauses
that conversation, or the whole tenant, for ``Retry-After`` or, without one (Teams sends none),
for an exponential backoff with full jitter (:class:`~bot.notify.ratelimit.RateLimiter`); 408,
412, 502, 503, 504, network failures, and Graph or token hiccups while installing the app retry
with full jitter, doubling from :data:`RETRY_BASE_S` up to :data:`RETRY_CAP_S` between tries,
as long as it takes. After a Bot Connector outage those backoffs would keep cards waiting for up
to a quarter of an hour once Teams works again: the first send that gets through after an outage
(transient connector failures and no send through for :data:`OUTAGE_MIN_S`) makes every message
the outage delayed due at once (:meth:`bot.store.Store.expedite_outbox`, by the
:data:`CONNECTOR_UNAVAILABLE` mark on their ``last_error``); the rate limiter paces them. Messages
waiting for anything else (429s, working hours, schedules, Graph or token errors) keep their time.

A new message for a review that has ended meanwhile ends as skipped ("review ended", with an
audit line); an edit is still delivered for :data:`EDIT_GRACE_AFTER_END` (it is what shows the
reviewer that the review ended).

Only a permanent answer fails a message for good, with the reason kept in its row (for the
status page) and an audit line, both in one transaction: 403 (blocked by the user, app not
installed), 404 chat gone a second time after creating it again once, the app missing from the org catalog, Graph refusing
the install, a card too large, any other 4xx or a 500 (the Teams docs say not to retry those).
Discovery queues a failed first card again once the reason may have gone
(:meth:`bot.notify.notifier.ReviewNotifier.ensure_first_cards`). A reviewer with no
conversation gets the app installed through Graph and a 1:1 chat created first.

Replies to chat messages that the connector refused inside the turn come here too (kind
``reply``, see :func:`reply_message`) and are delivered like any proactive send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram

from bot.backoff import full_jitter_s
from bot.clock import Clock
from bot.graph import (
    GraphBadRequest,
    GraphError,
    GraphForbidden,
    GraphNotFound,
    GraphUnauthorized,
    TokenAcquisitionError,
    TokenServiceUnavailable,
)
from bot.notify.language import LanguageDefaults, ViewerLanguage, kept_language, proactive_language
from bot.notify.ratelimit import RateLimiter
from bot.notify.views import (
    build_review_card_view,
    context_from_reference,
    escalation_view,
    pending_list_view,
    review_card_view,
)
from bot.store import (
    AuditEvent,
    InstanceRecord,
    ItemRecord,
    OutboxCompletion,
    OutboxMessage,
    PersonRecord,
    SentMessage,
    Store,
)
from bot.teams.connector import (
    ConnectorClient,
    ConnectorError,
    ConnectorForbidden,
    ConnectorNotFound,
    ConnectorRetryable,
    ConnectorThrottled,
)
from cards import (
    CardTooLargeError,
    ReviewStatus,
    render_escalation_card,
    render_pending_list_card,
    render_reminder_card,
    render_review_card,
)
from cards.strings import S, Strings


def _card_activity(card: Mapping[str, Any], summary: str) -> dict[str, Any]:
    return {
        "type": "message",
        "summary": summary,
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


__all__ = [
    "CARD_KIND",
    "CONNECTOR_UNAVAILABLE",
    "EDIT_GRACE_AFTER_END",
    "OUTAGE_MIN_S",
    "RETRY_BASE_S",
    "RETRY_CAP_S",
    "ConversationProvisioner",
    "DeliveryMetrics",
    "OutboxWorker",
    "enqueue_review_card",
    "reply_message",
    "review_card_message",
]

log = logging.getLogger(__name__)

CARD_KIND = "card"
#: Transient failures are retried after a full-jitter delay of up to RETRY_BASE_S · 2^attempt,
#: at most RETRY_CAP_S (15 minutes, as issue 14 asks): a long outage costs a card one try per
#: quarter of an hour at most, and recovery is noticed within that.
RETRY_BASE_S = 2.0
RETRY_CAP_S = 900.0
#: ``last_error`` prefix of a message given back after a transient connector failure: the mark by
#: which recovery finds the messages an outage delayed (and nothing else).
CONNECTOR_UNAVAILABLE = "connector unavailable: "
#: Transient connector failures with no send getting through for this long are an outage: the
#: first send through after it makes the messages it delayed due. Shorter runs of failures (one
#: conversation failing among sends that succeed) keep their backoff, or each success would
#: retry the failing conversation at once, wave after wave.
OUTAGE_MIN_S = 10.0
#: How long after its review ended an edit is still worth retrying (the edit that shows the end).
EDIT_GRACE_AFTER_END = timedelta(days=1)
#: A chat reply the connector refused inside its turn is not worth delivering after this long.
REPLY_MAX_AGE = timedelta(hours=1)
#: ``last_error`` of a message whose chat was gone: the next 404 means gone for good.
_CHAT_GONE = "404 ConversationNotFound: the chat is gone; creating it again once"
#: Skip reasons that end a message because its review ended (audited as such).
_REVIEW_ENDED = "review ended"
#: Waves the outbox worker runs side by side, and the seconds of sends at the tenant limit one
#: wave may hold (see ``OutboxWorker.run_once``).
LANES = 2
WAVE_HORIZON_S = 0.35


class _LeaseExpired(Exception):
    """This replica's delivery lease ran out before a send began: the row goes back."""


class ConversationProvisioner(Protocol):
    """Makes a 1:1 conversation possible for a user who never talked to the bot."""

    async def ensure_installed(self, *, user_oid: str) -> None: ...


def review_card_message(
    *, tenant_id: str, reviewer_oid: str, instance_id: str, edit: bool, sequence: str = "0"
) -> tuple[str, str, dict[str, Any]]:
    """The outbox (key, kind, payload) of a reviewer's review card: a send or an edit.

    ``sequence`` is "0" for the first card of a review; a card re-sent into a new chat uses the
    chat's id, so each chat gets the card once.
    """
    if edit:
        # Every edit renders the store's current state; a unique key keeps later changes from
        # being swallowed by an edit that was already sent.
        key = f"{reviewer_oid}|{instance_id}|review-edit|{uuid.uuid4().hex}"
    else:
        key = f"{reviewer_oid}|{instance_id}|review|{sequence}"
    payload = {
        "tenantId": tenant_id,
        "reviewerOid": reviewer_oid,
        "instanceId": instance_id,
        "card": "review",
        "mode": "edit" if edit else "new",
    }
    return key, CARD_KIND, payload


async def enqueue_review_card(
    store: Store,
    *,
    tenant_id: str,
    reviewer_oid: str,
    instance_id: str,
    edit: bool,
    sequence: str = "0",
) -> bool:
    """Queue the reviewer's review card (see :func:`review_card_message`)."""
    key, kind, payload = review_card_message(
        tenant_id=tenant_id,
        reviewer_oid=reviewer_oid,
        instance_id=instance_id,
        edit=edit,
        sequence=sequence,
    )
    return await store.enqueue_outbox(key=key, kind=kind, payload=payload)


def reply_message(
    *,
    reviewer_oid: str,
    conversation_id: str,
    service_url: str,
    activity: Mapping[str, Any],
    turn_activity_id: str,
    index: int,
    queued_at: str,
) -> tuple[str, str, dict[str, Any]]:
    """The outbox (key, kind, payload) of a chat reply the connector refused inside its turn.

    Keyed by the turn's activity and the reply's place in it, so a redelivered turn queues
    each of its replies once.
    """
    key = f"reply|{conversation_id}|{turn_activity_id or uuid.uuid4().hex}|{index}"
    payload = {
        "card": "reply",
        "reviewerOid": reviewer_oid,
        "conversationId": conversation_id,
        "serviceUrl": service_url,
        "activity": dict(activity),
        "queuedAt": queued_at,
    }
    return key, CARD_KIND, payload


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.messages = Counter(
            "delivery_messages",
            "Outbox messages handled, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.throttled = Counter(
            "delivery_throttled", "429 answers from the Bot Connector.", registry=registry
        )
        self.throttled_without_retry_after = Counter(
            "delivery_throttled_without_retry_after",
            "429 answers from the Bot Connector that carried no Retry-After.",
            registry=registry,
        )
        self.failed = Counter(
            "delivery_failed",
            "Messages failed for good, by reason.",
            ["reason"],
            registry=registry,
        )
        self.recoveries = Counter(
            "delivery_recoveries",
            "Bot Connector outages this process saw end (a send got through after them).",
            registry=registry,
        )
        self.expedited = Counter(
            "delivery_expedited",
            "Messages delayed by a Bot Connector outage, made due when it ended.",
            registry=registry,
        )
        self.send_duration_s = Histogram(
            "delivery_send_duration_seconds", "Time for one connector call.", registry=registry
        )


def _conversation_of(reference: Mapping[str, Any] | None) -> str | None:
    conversation = reference.get("conversation") if reference else None
    return str(conversation.get("id")) if isinstance(conversation, Mapping) else None


@dataclass
class _Wave:
    """The store's records for one wave of claimed messages, read together (see ``_read_wave``).

    A key that is missing means "not read": the worker reads it from the store then.
    """

    references: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    people: dict[str, PersonRecord | None] = field(default_factory=dict)
    instances: dict[str, InstanceRecord | None] = field(default_factory=dict)
    sent: dict[tuple[str, str], SentMessage | None] = field(default_factory=dict)
    items: dict[tuple[str, str], list[ItemRecord]] = field(default_factory=dict)


class _GroupCommit:
    """Outbox completions written together: whatever finished while the last write ran.

    Each caller waits for its own completion to be durable, so the window between a send the
    connector accepted and its "done" row stays one write long; under load one transaction
    carries many completions instead of one each.
    """

    def __init__(self, store: Store, worker: str) -> None:
        self._store = store
        self._worker = worker
        self._queue: list[tuple[OutboxCompletion, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def complete(self, completion: OutboxCompletion) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((completion, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        # Shielded: a cancelled sender still gets its completion written (the send happened).
        return await asyncio.shield(future)

    async def _write_queued(self) -> None:
        try:
            await self._drain_queue()
        except BaseException:
            # Cancelled (shutdown): nobody may wait for this writer forever.
            for _, future in self._queue:
                future.cancel()
            self._queue = []
            raise

    async def _drain_queue(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                if len(batch) == 1:
                    await self._write_each(batch)
                    continue
                try:
                    done = await self._store.complete_outbox_many(
                        worker=self._worker, completions=[completion for completion, _ in batch]
                    )
                except Exception:
                    # One bad completion must not fail the others (a failed completion means a
                    # send repeated once its claim expires): write them one by one.
                    log.warning("group completion failed; completing %d one by one", len(batch))
                    await self._write_each(batch)
                    continue
                for (_, future), ok in zip(batch, done, strict=True):
                    if not future.done():
                        future.set_result(ok)
            finally:
                for _, future in batch:
                    if not future.done():
                        future.cancel()

    async def _write_each(self, batch: list[tuple[OutboxCompletion, asyncio.Future[bool]]]) -> None:
        for completion, future in batch:
            try:
                done = await self._store.complete_outbox_many(
                    worker=self._worker, completions=[completion]
                )
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            if not future.done():
                future.set_result(bool(done and done[0]))


@dataclass(frozen=True)
class _Result:
    outcome: str
    detail: Mapping[str, Any]
    # The message as sent, recorded together with the outbox completion.
    sent: SentMessage | None = None


class OutboxWorker:
    """Claims and delivers card messages. ``run_once`` for tests, ``run_forever`` in the app."""

    def __init__(
        self,
        *,
        store: Store,
        connector: ConnectorClient,
        limiter: RateLimiter,
        clock: Clock,
        tenant_id: str,
        service_url: str,
        provisioner: ConversationProvisioner | None = None,
        worker_id: str | None = None,
        # Sends in flight at once: far above what the Teams rate allows per second, yet few
        # enough that a crash leaves only a handful of accepted-but-unrecorded sends.
        concurrency: int = 64,
        claim_lease_s: float = 120.0,
        metrics: DeliveryMetrics | None = None,
        lease_name: str | None = None,
        lease_ttl_s: float = 30.0,
        languages: LanguageDefaults | None = None,
    ) -> None:
        self._store = store
        self._connector = connector
        self._limiter = limiter
        self._clock = clock
        self._tenant_id = tenant_id
        self._service_url = service_url
        self._provisioner = provisioner
        self.worker_id = worker_id or f"outbox-{uuid.uuid4().hex[:12]}"
        self._concurrency = concurrency
        self._claim_lease_s = claim_lease_s
        self._metrics = metrics or DeliveryMetrics(CollectorRegistry())
        self._wake = asyncio.Event()
        self._completions = _GroupCommit(store, self.worker_id)
        # With several replicas, one at a time sends cards (under this lease), so the Teams
        # per-tenant rate limit is shared without coordinating every single send.
        self._lease_name = lease_name
        self._lease_ttl_s = lease_ttl_s
        # Monotonic time until which the delivery lease is surely ours (from the start of the
        # acquire or renewal that got it). No send begins after it.
        self._lease_valid_until = float("inf") if lease_name is None else 0.0
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not cryptography
        # The tenant's default language and zone, for people whose own are unknown.
        self._languages = languages or LanguageDefaults()
        # When the current run of transient connector failures began (None: the last connector
        # answer this process saw was a success, or it saw none).
        self._failing_since: datetime | None = None
        # No send of this worker has got through yet (see _connector_answered).
        self._first_answer = True
        self._started_at = self._clock.now()

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Deliver every message that is due now; return how many were handled.

        Messages go in waves: claimed, their records read together, sent concurrently. A wave
        holds no more than the tenant limit lets out in :data:`WAVE_HORIZON_S` (16 under the
        Teams limits): more would only wait in the rate limiter, claimed, and after a pause
        all fall due at once. When the limit is far above that, :data:`LANES` lanes run side by
        side, so that one claims and renders while another's sends are on the wire; together
        they keep at most ``concurrency`` messages in flight.
        """
        allowed = int(self._limiter.tenant_rate_per_s() * WAVE_HORIZON_S)
        if allowed >= self._concurrency:
            lanes, wave_size = LANES, max(1, self._concurrency // LANES)
        else:
            lanes, wave_size = 1, max(1, min(self._concurrency, allowed))
        if lanes == 1:
            return await self._run_lane(wave_size)
        # A lane that fails stops its sibling too (the next pass starts both afresh).
        async with asyncio.TaskGroup() as group:
            runs = [group.create_task(self._run_lane(wave_size)) for _ in range(lanes)]
        return sum(run.result() for run in runs)

    async def _run_lane(self, wave_size: int) -> int:
        handled = 0
        while True:
            if self._lease_name is not None and not await self._renew_lease():
                return handled  # another replica sends; this one stands by
            batch = await self._store.claim_outbox(
                worker=self.worker_id,
                limit=wave_size,
                lease_s=self._claim_lease_s,
                kinds=[CARD_KIND],
            )
            if not batch:
                return handled
            wave = await self._read_wave(batch)
            await self._while_renewing(asyncio.gather(*(self._handle(m, wave) for m in batch)))
            handled += len(batch)

    async def _renew_lease(self) -> bool:
        assert self._lease_name is not None
        started = time.monotonic()
        lease = await self._store.acquire_lease(
            name=self._lease_name, holder=self.worker_id, ttl_s=self._lease_ttl_s
        )
        self._lease_valid_until = started + self._lease_ttl_s if lease is not None else 0.0
        return lease is not None

    async def _while_renewing(self, batch: asyncio.Future[Any]) -> None:
        """Run a batch, renewing the delivery lease every third of its lifetime meanwhile.

        A batch can outlast the lease (rate-limit waits, a 429's Retry-After); without renewal
        another replica takes the lease and both send. If the lease is lost all the same, sends
        not yet begun give their rows back (:meth:`_check_lease`).
        """
        if self._lease_name is None:
            await batch
            return
        while True:
            done, _ = await asyncio.wait({batch}, timeout=self._lease_ttl_s / 3)
            if done:
                batch.result()
                return
            if not await self._renew_lease():
                log.warning("delivery lease lost during a batch; unsent rows go back")

    def _check_lease(self) -> None:
        """Raise :class:`_LeaseExpired` unless the delivery lease is surely still ours."""
        if time.monotonic() >= self._lease_valid_until:
            raise _LeaseExpired()

    async def run_forever(self, stop: asyncio.Event, *, idle_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox worker pass failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_any(stop), timeout=idle_s)

    async def _wait_any(self, stop: asyncio.Event) -> None:
        waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    # -- one message ----------------------------------------------------------------------------
    async def _read_wave(self, batch: list[OutboxMessage]) -> _Wave:
        """What the wave's review cards need from the store, read once for all of them."""
        wave = _Wave()
        by_instance: dict[str, set[str]] = {}
        reviewers: set[str] = set()
        for message in batch:
            reviewer = str(message.payload.get("reviewerOid") or "")
            reviewers.add(reviewer)
            # Edits read the store when their slot comes (below); first cards use the wave.
            if (
                str(message.payload.get("card") or "review") == "review"
                and message.payload.get("mode") != "edit"
            ):
                by_instance.setdefault(str(message.payload.get("instanceId") or ""), set()).add(
                    reviewer
                )
        references = await self._store.get_conversation_references(
            tenant_id=self._tenant_id, user_oids=sorted(reviewers)
        )
        wave.references.update(references)
        # Each recipient's mailbox language and zone, read once for the wave: choosing a card's
        # language adds no I/O to a send.
        people = await self._store.get_people(user_oids=sorted(reviewers))
        wave.people.update({oid: people.get(oid) for oid in reviewers})
        for instance_id, oids in by_instance.items():
            wave.instances[instance_id] = await self._store.get_instance(instance_id=instance_id)
            sent = await self._store.get_sent_messages(
                instance_id=instance_id, kind="review", reviewer_oids=sorted(oids)
            )
            for oid in oids:
                wave.sent[(oid, instance_id)] = sent.get(oid)
            rows = await self._store.list_assignments(
                instance_id=instance_id, reviewer_oids=sorted(oids)
            )
            items = {
                item.item_id: item
                for item in await self._store.list_items(
                    instance_id=instance_id, item_ids=[item_id for _r, _i, item_id in rows]
                )
            }
            for oid in oids:
                wave.items[(oid, instance_id)] = []
            for oid, _instance, item_id in rows:
                if item_id in items:
                    wave.items[(oid, instance_id)].append(items[item_id])
        return wave

    async def _handle(self, message: OutboxMessage, wave: _Wave | None = None) -> None:
        payload = message.payload
        reviewer = str(payload.get("reviewerOid") or "")
        instance_id = str(payload.get("instanceId") or "")
        wave = wave or _Wave()
        try:
            result = await self._deliver(message, reviewer, instance_id, wave)
        except _LeaseExpired:
            await self._store.retry_outbox(
                message_id=message.id,
                worker=self.worker_id,
                error="delivery lease expired before sending",
                not_before=self._clock.now(),
            )
            return
        except ConnectorThrottled as exc:
            delay_s = self._limiter.throttled(exc.conversation_id, exc.retry_after_s)
            self._metrics.throttled.inc()
            if exc.retry_after_s is None:
                self._metrics.throttled_without_retry_after.inc()
            await self._retry(message, str(exc), delay_s=delay_s)
            return
        except ConnectorNotFound as exc:
            await self._chat_gone(message, reviewer, instance_id, exc)
            return
        except ConnectorRetryable as exc:
            await self._retry(
                message, f"{CONNECTOR_UNAVAILABLE}{exc}", delay_s=self._backoff_s(message)
            )
            # Noted once the row is back: a recovery that runs before then would miss it.
            if self._failing_since is None:
                self._failing_since = self._clock.now()
            return
        except ConnectorError as exc:
            # 403 (blocked, not installed), 400, 401 after a fresh token, 413, 500: permanent.
            await self._fail(message, reviewer, instance_id, exc, _connector_reason(exc))
            return
        except CardTooLargeError as exc:
            await self._fail(message, reviewer, instance_id, exc, "card too large")
            return
        except LookupError as exc:
            # The app is not in the org catalog (or the install vanished): an admin must act.
            await self._fail(message, reviewer, instance_id, exc, "app not in the org catalog")
            return
        except GraphError as exc:
            # Installing the app for the reviewer failed.
            if isinstance(
                exc, GraphForbidden | GraphNotFound | GraphBadRequest | GraphUnauthorized
            ):
                reason = "app install refused by Graph"
                if isinstance(exc, GraphNotFound):
                    reason = "user not found in Graph"
                await self._fail(message, reviewer, instance_id, exc, reason)
            else:
                delay_s = max(exc.retry_after_s or 0.0, self._backoff_s(message))
                await self._retry(message, f"app install: {exc}", delay_s=delay_s)
            return
        except TokenAcquisitionError as exc:
            # The app's own token (for the connector or Graph): Entra down is transient, refused
            # credentials are not.
            if isinstance(exc, TokenServiceUnavailable):
                await self._retry(
                    message, f"token: {type(exc).__name__}", delay_s=self._backoff_s(message)
                )
            else:
                await self._fail(message, reviewer, instance_id, exc, "the bot's credentials")
            return
        audit = []
        kind = str(payload.get("card") or "review")
        if result.outcome in ("sent", "edited"):
            audit.append(
                AuditEvent(
                    action="notified" if result.outcome == "sent" else "card_updated",
                    actor="bot",
                    instance_id=instance_id or None,
                    result=result.outcome,
                    detail={"recipient": reviewer, "kind": kind, **result.detail},
                )
            )
        elif result.detail.get("reason") == _REVIEW_ENDED:
            audit.append(
                AuditEvent(
                    action="notify_skipped",
                    actor="bot",
                    instance_id=instance_id or None,
                    result="review_ended",
                    detail={"recipient": reviewer, "kind": kind, "attempts": message.attempts},
                )
            )
        # The sent message, its audit line and the completion in one transaction: right after
        # the connector accepted the message, one write stands between it and "done".
        await self._completions.complete(
            OutboxCompletion(
                message_id=message.id, result=dict(result.detail), audit=audit, sent=result.sent
            )
        )
        self._metrics.messages.labels(result.outcome).inc()
        if result.outcome in ("sent", "edited"):
            await self._connector_answered()

    async def _connector_answered(self) -> None:
        """A send got through. If it ends an outage, the messages the outage delayed are due now.

        Once per outage: the first success takes the mark; the others in flight find none. The
        first success of this worker does it too, whatever it saw: the outage may have begun
        before it started (a process restarted during it, a standby replica taking over the
        delivery lease), and the rows it delayed carry their mark in the store.
        """
        first, self._first_answer = self._first_answer, False
        failing_since, self._failing_since = self._failing_since, None
        outage_s = 0.0
        if failing_since is not None:
            outage_s = (self._clock.now() - failing_since).total_seconds()
        if not first and outage_s < OUTAGE_MIN_S:
            return
        try:
            due = await self._store.expedite_outbox(
                kinds=[CARD_KIND],
                error_prefix=CONNECTOR_UNAVAILABLE,
                # No outage seen here: only what an earlier process saw (a chat of this
                # worker's failing among sends that get through keeps its backoff).
                marked_before=None if outage_s >= OUTAGE_MIN_S else self._started_at,
            )
        except Exception:
            # The next send through tries again; meanwhile the messages keep their backoff.
            log.warning("could not make the messages of the connector outage due", exc_info=True)
            if self._failing_since is None:
                self._failing_since = failing_since
            self._first_answer = self._first_answer or first
            return
        if outage_s < OUTAGE_MIN_S and not due:
            return  # a first success, and no outage before it
        self._metrics.recoveries.inc()
        self._metrics.expedited.inc(due)
        log.info(
            "Bot Connector answers again after %.0f s of failures seen here: %d delayed "
            "messages due now",
            outage_s,
            due,
            extra={"outage_s": round(outage_s), "expedited": due},
        )
        if due:
            self.wake()

    def _backoff_s(self, message: OutboxMessage) -> float:
        """The wait before the next try of a message that failed transiently (full jitter)."""
        return full_jitter_s(
            max(0, message.attempts - 1), base_s=RETRY_BASE_S, cap_s=RETRY_CAP_S, rng=self._rng
        )

    async def _chat_gone(
        self, message: OutboxMessage, reviewer: str, instance_id: str, exc: ConnectorNotFound
    ) -> None:
        """404: the chat (or the message to edit) is gone. Create the chat again, once."""
        if exc.code == "ActivityNotFoundInConversation":
            # The card message was deleted: a new card goes to the chat (it shows the current
            # state), in place of the edit.
            await self._store.complete_outbox(
                message_id=message.id,
                worker=self.worker_id,
                result={"skipped": "the card message is gone; sent again"},
            )
            if message.payload.get("card") == "review" and message.payload.get("mode") == "edit":
                await self._resend_review_card(message, reviewer, instance_id, "gone")
            return
        reference = await self._store.get_conversation_reference(
            tenant_id=self._tenant_id, user_oid=reviewer
        )
        if exc.conversation_id is None or _conversation_of(reference) == exc.conversation_id:
            # (A reference to a newer chat than the one that is gone stays.)
            await self._store.delete_conversation_reference(
                tenant_id=self._tenant_id, user_oid=reviewer
            )
        if message.last_error == _CHAT_GONE:
            await self._fail(message, reviewer, instance_id, exc, "chat gone")
            return
        if message.payload.get("card") == "review" and message.payload.get("mode") == "edit":
            # An edit cannot follow the card into a new chat: the card is sent there anew.
            await self._store.complete_outbox(
                message_id=message.id,
                worker=self.worker_id,
                result={"skipped": "the chat is gone; the card goes to a new one"},
            )
            await self._resend_review_card(message, reviewer, instance_id, "recreated")
            return
        await self._retry(message, _CHAT_GONE, delay_s=0.0)

    async def _resend_review_card(
        self, message: OutboxMessage, reviewer: str, instance_id: str, why: str
    ) -> None:
        await enqueue_review_card(
            self._store,
            tenant_id=str(message.payload.get("tenantId") or self._tenant_id),
            reviewer_oid=reviewer,
            instance_id=instance_id,
            edit=False,
            sequence=f"{why}-{message.id}",
        )
        self.wake()

    async def _deliver(
        self, message: OutboxMessage, reviewer: str, instance_id: str, wave: _Wave
    ) -> _Result:
        card_kind = str(message.payload.get("card") or "review")
        if card_kind == "review":
            return await self._deliver_review(message, reviewer, instance_id, wave)
        if card_kind == "reply":
            return await self._deliver_reply(message)
        now = self._clock.now()
        if card_kind in ("reminder", "escalation") and await self._review_ended(
            instance_id, wave, now
        ):
            return _Result("skipped", {"reason": _REVIEW_ENDED})
        reference = await self._reference(reviewer, wave)
        language = await self._language(reviewer, wave)
        viewer = context_from_reference(
            reference,
            reviewer_oid=reviewer,
            locale=language.locale,
            time_zone=language.time_zone,
        )
        st = Strings(language.locale)
        card: dict[str, Any] | None
        if card_kind == "reminder":
            view = await review_card_view(
                self._store, viewer=viewer, instance_id=instance_id, now=now
            )
            if view is None or not any(item.is_open for item in view.items):
                # Only people with work left are reminded: they finished since it was queued.
                return _Result("skipped", {"reason": "nothing pending any more"})
            card = render_reminder_card(view)
            summary = st.text(S.SUMMARY_REMINDER, name=view.review_name)
        elif card_kind == "digest":
            pending = await pending_list_view(self._store, viewer=viewer, now=now)
            if not pending.reviews:
                return _Result("skipped", {"reason": "nothing pending any more"})
            card, summary = render_pending_list_card(pending), st.text(S.SUMMARY_PENDING)
        elif card_kind == "escalation":
            card = await self._escalation_card(message.payload, viewer, instance_id, now)
            if card is None:
                return _Result("skipped", {"reason": "the reviewer has nothing pending any more"})
            summary = st.text(S.SUMMARY_ESCALATION)
        else:
            return _Result("skipped", {"reason": f"unknown card kind {card_kind!r}"})
        activity = _card_activity(card, summary)
        conversation_id, service_url = await self._ensure_conversation(reviewer, wave)
        await self._limiter.acquire(conversation_id)
        self._check_lease()
        with self._metrics.send_duration_s.time():
            activity_id = await self._connector.send(
                service_url=service_url, conversation_id=conversation_id, activity=activity
            )
        self._limiter.succeeded(conversation_id)
        data: dict[str, Any] = language.record()
        if card_kind == "escalation":
            # Remember whom the manager was told about, so that refreshing the card can name them.
            earlier = await self._store.get_sent_message(
                reviewer_oid=reviewer, instance_id=instance_id, kind=card_kind
            )
            subjects = dict((earlier.data.get("subjects") or {}) if earlier else {})
            subjects[str(message.payload.get("subjectOid"))] = str(
                message.payload.get("subjectName") or ""
            )
            data["subjects"] = subjects
        sent = SentMessage(
            reviewer_oid=reviewer,
            instance_id=instance_id,
            kind=card_kind,
            conversation_id=conversation_id,
            activity_id=activity_id,
            sent_at=now,
            data=data,
        )
        return _Result("sent", {"activityId": activity_id, "card": card_kind}, sent)

    async def _review_ended(self, instance_id: str, wave: _Wave, now: datetime) -> bool:
        """True once the review is no longer running (unknown reviews are left to the card)."""
        if instance_id in wave.instances:
            instance = wave.instances[instance_id]
        else:
            instance = await self._store.get_instance(instance_id=instance_id)
            wave.instances[instance_id] = instance
        if instance is None:
            return False
        return instance.status != "InProgress" or (
            instance.end_at is not None and instance.end_at <= now
        )

    async def _deliver_reply(self, message: OutboxMessage) -> _Result:
        """A chat reply refused inside its turn: sent as it was, unless it is stale by now."""
        payload = message.payload
        queued_at = _parse_time(payload.get("queuedAt"))
        if queued_at is not None and self._clock.now() - queued_at > REPLY_MAX_AGE:
            return _Result("skipped", {"reason": "reply too old"})
        activity = payload.get("activity")
        conversation_id = str(payload.get("conversationId") or "")
        service_url = str(payload.get("serviceUrl") or "")
        if not isinstance(activity, Mapping) or not conversation_id or not service_url:
            return _Result("skipped", {"reason": "malformed reply"})
        await self._limiter.acquire(conversation_id)
        self._check_lease()
        with self._metrics.send_duration_s.time():
            activity_id = await self._connector.send(
                service_url=service_url, conversation_id=conversation_id, activity=activity
            )
        self._limiter.succeeded(conversation_id)
        return _Result("sent", {"activityId": activity_id, "card": "reply"})

    async def _escalation_card(
        self, payload: Mapping[str, Any], viewer: Any, instance_id: str, now: Any
    ) -> dict[str, Any] | None:
        view = await escalation_view(
            self._store,
            viewer=viewer,
            instance_id=instance_id,
            subject_oid=str(payload.get("subjectOid") or ""),
            subject_name=str(payload.get("subjectName") or ""),
            now=now,
        )
        if view is None or view.pending_count == 0:
            return None
        return render_escalation_card(view)

    async def _deliver_review(
        self, message: OutboxMessage, reviewer: str, instance_id: str, wave: _Wave
    ) -> _Result:
        payload = message.payload
        edit = payload.get("mode") == "edit"
        key = (reviewer, instance_id)
        if key in wave.sent:
            sent = wave.sent[key]
        else:
            sent = await self._store.get_sent_message(
                reviewer_oid=reviewer, instance_id=instance_id, kind="review"
            )
        if edit and sent is None:
            return _Result("skipped", {"reason": "nothing sent yet to edit"})
        if not edit and await self._review_ended(instance_id, wave, self._clock.now()):
            # Queued (or retried through an outage) until after the end: nothing to review.
            return _Result("skipped", {"reason": _REVIEW_ENDED})
        reference = await self._reference(reviewer, wave)
        if not edit and sent is not None and sent.conversation_id == _conversation_of(reference):
            return _Result("skipped", {"reason": "already sent", "activityId": sent.activity_id})

        # A first card speaks the reviewer's language as known now; an edit keeps the language
        # its card was sent in unless the reviewer's own language changed since.
        language = await self._language(reviewer, wave)
        if edit and sent is not None:
            language = kept_language(sent.data, language)
        viewer = context_from_reference(
            reference, reviewer_oid=reviewer, locale=language.locale, time_zone=language.time_zone
        )
        words = Strings(language.locale)
        # Cards are rendered once the send slot is ours, right before the call: the renders of
        # a wave then spread over the slots instead of running back to back while due sends
        # wait for the loop (which would bunch them up at the connector).
        if edit and sent is not None:
            await self._limiter.acquire(sent.conversation_id)
            self._check_lease()
            # An edit shows the store as it is now, not as any earlier read: a later change may
            # have landed meanwhile (a wait in the limiter, another lane's edit sent first).
            view = await review_card_view(
                self._store,
                viewer=viewer,
                instance_id=instance_id,
                now=self._clock.now(),
                page=int(sent.data.get("page") or 0),
            )
            if view is None:
                return _Result("skipped", {"reason": "no items for this reviewer"})
            if view.status is ReviewStatus.ENDED and view.context.now > view.due + (
                EDIT_GRACE_AFTER_END
            ):
                return _Result("skipped", {"reason": _REVIEW_ENDED})
            activity = _card_activity(
                render_review_card(view), words.text(S.SUMMARY_REVIEW, name=view.review_name)
            )
            current = _conversation_of(reference)
            try:
                await self._connector.update(
                    service_url=str(reference.get("serviceUrl"))
                    if reference
                    else self._service_url,
                    conversation_id=sent.conversation_id,
                    activity_id=sent.activity_id,
                    activity=activity,
                )
                self._limiter.succeeded(sent.conversation_id)
            except (ConnectorNotFound, ConnectorForbidden) as exc:
                if current is None or current == sent.conversation_id:
                    raise
                # The card's chat is gone (or closed to the bot) and the reviewer talks to us
                # from another one: the card moves there, once per chat (the key names it).
                await enqueue_review_card(
                    self._store,
                    tenant_id=self._tenant_id,
                    reviewer_oid=reviewer,
                    instance_id=instance_id,
                    edit=False,
                    sequence=current,
                )
                self.wake()
                return _Result(
                    "moved",
                    {"from": sent.conversation_id, "to": current, "status": exc.status},
                )
            return _Result("edited", {"activityId": sent.activity_id})

        now = self._clock.now()
        instance = wave.instances.get(instance_id)
        if instance is not None and key in wave.items:
            view = build_review_card_view(instance, wave.items[key], viewer=viewer, now=now)
        else:
            view = await review_card_view(
                self._store, viewer=viewer, instance_id=instance_id, now=now
            )
        if view is None:
            return _Result("skipped", {"reason": "no items for this reviewer"})
        conversation_id, service_url = await self._ensure_conversation(reviewer, wave)
        await self._limiter.acquire(conversation_id)
        self._check_lease()
        activity = _card_activity(
            render_review_card(view), words.text(S.SUMMARY_REVIEW, name=view.review_name)
        )
        with self._metrics.send_duration_s.time():
            activity_id = await self._connector.send(
                service_url=service_url, conversation_id=conversation_id, activity=activity
            )
        self._limiter.succeeded(conversation_id)
        sent = SentMessage(
            reviewer_oid=reviewer,
            instance_id=instance_id,
            kind="review",
            conversation_id=conversation_id,
            activity_id=activity_id,
            sent_at=self._clock.now(),
            data={"page": 0, **language.record()},
        )
        return _Result("sent", {"activityId": activity_id, "conversationId": conversation_id}, sent)

    async def _reference(self, reviewer: str, wave: _Wave) -> Mapping[str, Any] | None:
        """The reviewer's conversation reference: from the wave, else from the store."""
        reference = wave.references.get(reviewer)
        if reference is None:
            reference = await self._store.get_conversation_reference(
                tenant_id=self._tenant_id, user_oid=reviewer
            )
            if reference is not None:
                wave.references[reviewer] = reference
        return reference

    async def _language(self, reviewer: str, wave: _Wave) -> ViewerLanguage:
        """The reviewer's language and zone for a card now (see :mod:`bot.notify.language`):
        from the wave's records, else read from the store."""
        if reviewer in wave.people:
            person = wave.people[reviewer]
        else:
            person = (await self._store.get_people(user_oids=[reviewer])).get(reviewer)
            wave.people[reviewer] = person
        reference = await self._reference(reviewer, wave)
        return proactive_language(person=person, reference=reference, defaults=self._languages)

    async def _ensure_conversation(self, reviewer: str, wave: _Wave) -> tuple[str, str]:
        """The reviewer's 1:1 conversation, installing the app and creating the chat if needed."""
        reference = await self._reference(reviewer, wave)
        if reference:
            return str(reference["conversation"]["id"]), str(reference["serviceUrl"])
        if self._provisioner is not None:
            self._check_lease()
            await self._provisioner.ensure_installed(user_oid=reviewer)
        await self._limiter.acquire(None)
        self._check_lease()
        conversation = await self._connector.create_personal_conversation(
            service_url=self._service_url, tenant_id=self._tenant_id, user_id=reviewer
        )
        self._limiter.succeeded(None)
        reference = {
            "serviceUrl": conversation.service_url,
            "channelId": "msteams",
            "conversation": {
                "id": conversation.id,
                "conversationType": "personal",
                "tenantId": self._tenant_id,
            },
            "user": {"aadObjectId": reviewer},
            "bot": {"id": self._connector.bot_id},
        }
        await self._store.save_conversation_reference(
            tenant_id=self._tenant_id, user_oid=reviewer, reference=reference
        )
        wave.references[reviewer] = reference
        return conversation.id, conversation.service_url

    async def _retry(self, message: OutboxMessage, error: str, *, delay_s: float) -> None:
        self._metrics.messages.labels("retried").inc()
        await self._store.retry_outbox(
            message_id=message.id,
            worker=self.worker_id,
            error=error[:2000],
            not_before=self._clock.now() + timedelta(seconds=delay_s),
        )

    async def _fail(
        self,
        message: OutboxMessage,
        reviewer: str,
        instance_id: str,
        error: BaseException,
        reason: str,
    ) -> None:
        """Fail a message for good; its row keeps who, which review, why and when."""
        text = str(error)[:500]
        log.warning("message not delivered (%s): %s", reason, text, extra={"reviewer": reviewer})
        self._metrics.messages.labels("failed").inc()
        self._metrics.failed.labels(reason).inc()
        now = self._clock.now()
        kind = str(message.payload.get("card") or "review")
        # The failed row and its audit line in one transaction: a crash between two writes
        # would leave a failure nobody can find in the audit trail.
        await self._store.fail_outbox(
            message_id=message.id,
            worker=self.worker_id,
            error=text,
            result={
                "reason": reason,
                "status": getattr(error, "status", None),
                "code": str(getattr(error, "code", "") or ""),
                "card": kind,
                "failedAt": now.isoformat(),
                "attempts": message.attempts,
            },
            audit=[
                AuditEvent(
                    action="notify_failed",
                    actor="bot",
                    instance_id=instance_id or None,
                    result="failed",
                    detail={"recipient": reviewer, "reason": reason, "kind": kind, "error": text},
                )
            ],
        )


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _connector_reason(error: ConnectorError) -> str:
    """Why the connector refused a message, in the words the status page shows."""
    if isinstance(error, ConnectorForbidden):
        if error.code == "ConversationBlockedByUser":
            return "blocked by the user"
        if error.code in ("BotNotInConversationRoster", "ForbiddenOperationException"):
            return "app not installed for the user"
        if error.code == "BotDisabledByAdmin":
            return "bot disabled by an admin"
        return "refused (403)"
    if error.status == 413:
        return "card too large"
    return f"refused ({error.status or 'no answer'} {error.code})".replace(" )", ")")
