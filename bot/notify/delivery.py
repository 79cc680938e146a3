"""The durable outbox of Teams messages and the worker that delivers it.

Every message is an outbox row first (:func:`enqueue_review_card`), keyed by
``(reviewer, instance, kind, sequence)`` so a repeated event cannot add a second one. The worker
claims due rows, renders the card from the store at send time (so it always shows the current
state), waits for a rate-limiter slot, sends or edits, records the activity id and marks the row
done. A claim that dies with its process expires and is taken again.

Outcomes: 429 pauses that conversation for ``Retry-After`` and retries then; 412/5xx/network
retry with backoff; 404 ``ConversationNotFound`` forgets the conversation and creates it again
(once); 403 (blocked, uninstalled) is recorded and not retried. A reviewer with no conversation
gets the app installed through Graph and a 1:1 chat created first.
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
from datetime import timedelta
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram

from bot.clock import Clock
from bot.graph import GraphBadRequest, GraphError, GraphForbidden, GraphNotFound
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
    "ConversationProvisioner",
    "DeliveryMetrics",
    "OutboxWorker",
    "enqueue_review_card",
    "review_card_message",
]

log = logging.getLogger(__name__)

CARD_KIND = "card"
MAX_ATTEMPTS = 8
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
        conversation_id: str | None = None
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
            conversation_id = await self._conversation_id(reviewer, wave)
            self._limiter.pause(conversation_id, exc.retry_after_s)
            self._metrics.throttled.inc()
            await self._retry(message, str(exc), delay_s=exc.retry_after_s)
            return
        except ConnectorNotFound as exc:
            # The chat is gone (history cleared, app reinstalled): create it again, once.
            await self._store.delete_conversation_reference(
                tenant_id=self._tenant_id, user_oid=reviewer
            )
            if message.attempts < 2:
                await self._retry(message, str(exc), delay_s=0.0)
            else:
                await self._fail(message, reviewer, instance_id, str(exc))
            return
        except ConnectorForbidden as exc:
            await self._fail(message, reviewer, instance_id, str(exc))
            return
        except (ConnectorRetryable, ConnectorError) as exc:
            if isinstance(exc, ConnectorRetryable) and message.attempts < MAX_ATTEMPTS:
                backoff_s = min(300.0, 2.0**message.attempts) * (0.5 + self._rng.random() / 2)
                await self._retry(message, str(exc), delay_s=backoff_s)
            else:
                await self._fail(message, reviewer, instance_id, str(exc))
            return
        except CardTooLargeError as exc:
            await self._fail(message, reviewer, instance_id, f"card too large: {exc}")
            return
        except LookupError as exc:
            # The app is not in the org catalog (or the install vanished): an admin must act.
            await self._fail(message, reviewer, instance_id, str(exc))
            return
        except GraphError as exc:
            # Installing the app for the reviewer failed.
            permanent = isinstance(exc, GraphForbidden | GraphNotFound | GraphBadRequest)
            if permanent or message.attempts >= MAX_ATTEMPTS:
                await self._fail(message, reviewer, instance_id, f"app install failed: {exc}")
            else:
                delay_s = exc.retry_after_s or min(300.0, 2.0**message.attempts)
                await self._retry(message, str(exc), delay_s=delay_s)
            return
        audit = []
        if result.outcome in ("sent", "edited"):
            audit.append(
                AuditEvent(
                    action="notified" if result.outcome == "sent" else "card_updated",
                    actor="bot",
                    instance_id=instance_id,
                    result=result.outcome,
                    detail={
                        "recipient": reviewer,
                        "kind": str(payload.get("card") or "review"),
                        **result.detail,
                    },
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

    async def _deliver(
        self, message: OutboxMessage, reviewer: str, instance_id: str, wave: _Wave
    ) -> _Result:
        card_kind = str(message.payload.get("card") or "review")
        if card_kind == "review":
            return await self._deliver_review(message, reviewer, instance_id, wave)
        reference = await self._reference(reviewer, wave)
        language = await self._language(reviewer, wave)
        viewer = context_from_reference(
            reference,
            reviewer_oid=reviewer,
            locale=language.locale,
            time_zone=language.time_zone,
        )
        st = Strings(language.locale)
        now = self._clock.now()
        card: dict[str, Any] | None
        if card_kind == "reminder":
            view = await review_card_view(
                self._store, viewer=viewer, instance_id=instance_id, now=now
            )
            if (
                view is None
                or not any(item.is_open for item in view.items)
                or view.status != "InProgress"
            ):
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
            activity = _card_activity(
                render_review_card(view), words.text(S.SUMMARY_REVIEW, name=view.review_name)
            )
            await self._connector.update(
                service_url=str(reference.get("serviceUrl")) if reference else self._service_url,
                conversation_id=sent.conversation_id,
                activity_id=sent.activity_id,
                activity=activity,
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

    async def _conversation_id(self, reviewer: str, wave: _Wave) -> str | None:
        return _conversation_of(await self._reference(reviewer, wave))

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
            error=error,
            not_before=self._clock.now() + timedelta(seconds=delay_s),
        )

    async def _fail(
        self, message: OutboxMessage, reviewer: str, instance_id: str, error: str
    ) -> None:
        log.warning("message not delivered: %s", error, extra={"reviewer": reviewer})
        self._metrics.messages.labels("failed").inc()
        await self._store.fail_outbox(message_id=message.id, worker=self.worker_id, error=error)
        await self._store.append_audit(
            event=AuditEvent(
                action="notify_failed",
                actor="bot",
                instance_id=instance_id,
                result="failed",
                detail={"recipient": reviewer, "error": error[:500]},
            )
        )
