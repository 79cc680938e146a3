"""The reminder and escalation loop: the schedule (:mod:`bot.notify.schedule`) applied to the store.

Every pass looks at each running review and each reviewer with pending items there, asks the
schedule what is due now (their policy, working hours, time zone, snooze), and queues it in the
outbox under the slot's deterministic id — so restarts and several replicas queue it once. The
outbox worker renders the card when it sends, and skips a reminder whose reviewer finished in the
meantime.

Escalations go to the reviewer's manager; with no manager, to the review's fallback reviewers, or
to a configured address; each recipient is recorded so that their **Nudge** is authorized. The
escalation point is counted in the reviewer's working days, but the card is for the recipient: it
goes out in *their* working hours (Graph mailbox settings, else the configured default), each
recipient's card held in the outbox until their next working moment.

Reminders asked for by a person — an admin's remind-now, a manager's Nudge — are *requests*
(outbox rows of kind :data:`REQUEST_KIND`, see :func:`request_reminder`) that each pass settles
after its scheduled work: outside the reviewer's working hours, or while they snooze, a request
waits (the row's ``not_before``) for their next working moment; a request whose reviewer got a
scheduled reminder in the same pass is *covered* by it rather than sent as a second message; a
request for someone with nothing left to do is skipped. Every outcome is audited.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from bot.clock import Clock
from bot.graph import (
    DirectoryApi,
    GraphError,
    GraphServerError,
    GraphThrottled,
    GraphUnavailable,
    TokenServiceUnavailable,
)
from bot.notify.delivery import CARD_KIND
from bot.notify.language import MailboxLanguages
from bot.notify.policy import ReminderPolicy, ScheduleSettings
from bot.notify.schedule import Due, due_notifications, escalation_point, notification_id
from bot.notify.worktime import WorkingHours, hours_from_mailbox
from bot.store import AuditEvent, InstanceRecord, OnceWork, OutboxMessage, QueuedMessage, Store

__all__ = [
    "REMINDER_LEASE",
    "REMINDER_LEASE_TTL_S",
    "REMINDER_PASS_EVERY_S",
    "REQUEST_KIND",
    "ReminderMode",
    "ReminderScheduler",
    "enqueue_reminder",
    "reminder_card",
    "reminder_request",
    "request_reminder",
]

log = logging.getLogger(__name__)

_HOURS_TTL_S = 6 * 3600
# An escalation slot's one-time key outlives the review's end by this much.
_SLOT_KEY_MARGIN_S = 7 * 86400.0
# Directory failures that say nothing about the user (retry budget spent on 429s or 5xx, no
# answer, no token): a later pass asks again.
_TRANSIENT = (GraphThrottled, GraphServerError, GraphUnavailable, TokenServiceUnavailable)
#: The lease under which one replica at a time runs the reminder passes.
REMINDER_LEASE = "reminders"
#: How often the background loop runs a pass (a requested reminder wakes it earlier).
REMINDER_PASS_EVERY_S = 60.0
#: The lease outlives its holder by three passes: another replica takes over within that.
REMINDER_LEASE_TTL_S = 3 * REMINDER_PASS_EVERY_S
#: Outbox kind of a reminder a person asked for, settled by the next reminder pass.
REQUEST_KIND = "reminder_request"
# A request row is claimed for this long while a pass settles it (a crash gives it back).
_REQUEST_CLAIM_S = 120.0
# Requests settled per claim; a pass keeps claiming until none is due.
_REQUEST_BATCH = 50

#: ``now``: send at once, whatever the hour or snooze (an admin's explicit override);
#: ``working_hours``: at the reviewer's next working moment, after any snooze (the default).
ReminderMode = Literal["now", "working_hours"]


def reminder_card(
    *, tenant_id: str, reviewer_oid: str, instance_id: str, key: str, reason: str
) -> QueuedMessage:
    """The outbox message of a reminder card (the review's items, "6 of 18 left, due tomorrow")."""
    return QueuedMessage(
        key=key,
        kind=CARD_KIND,
        payload={
            "tenantId": tenant_id,
            "reviewerOid": reviewer_oid,
            "instanceId": instance_id,
            "card": "reminder",
            "mode": "new",
            "reason": reason,
        },
    )


async def enqueue_reminder(
    store: Store, *, tenant_id: str, reviewer_oid: str, instance_id: str, key: str, reason: str
) -> bool:
    """Queue a reminder card under ``key``. False if ``key`` was already queued."""
    card = reminder_card(
        tenant_id=tenant_id,
        reviewer_oid=reviewer_oid,
        instance_id=instance_id,
        key=key,
        reason=reason,
    )
    return await store.enqueue_outbox(key=card.key, kind=card.kind, payload=card.payload)


def reminder_request(
    *,
    tenant_id: str,
    reviewer_oid: str,
    instance_id: str,
    key: str,
    card_key: str,
    reason: str,
    by: str,
    requested_at: datetime,
) -> QueuedMessage:
    """The outbox message asking the next reminder pass to remind ``reviewer_oid`` in their
    working hours, after any snooze (see the module docs). ``card_key`` is the outbox key the
    reminder card gets, so a pass that dies half-way cannot queue it twice."""
    return QueuedMessage(
        key=key,
        kind=REQUEST_KIND,
        payload={
            "tenantId": tenant_id,
            "reviewerOid": reviewer_oid,
            "instanceId": instance_id,
            "cardKey": card_key,
            "reason": reason,
            "by": by,
            "requestedAt": requested_at.isoformat(),
        },
        not_before=requested_at,
    )


async def request_reminder(
    store: Store,
    *,
    tenant_id: str,
    reviewer_oid: str,
    instance_id: str,
    key: str,
    card_key: str,
    reason: str,
    by: str,
    requested_at: datetime,
) -> bool:
    """Queue :func:`reminder_request`. False if ``key`` was already requested."""
    request = reminder_request(
        tenant_id=tenant_id,
        reviewer_oid=reviewer_oid,
        instance_id=instance_id,
        key=key,
        card_key=card_key,
        reason=reason,
        by=by,
        requested_at=requested_at,
    )
    return await store.enqueue_outbox(
        key=request.key,
        kind=request.kind,
        payload=request.payload,
        not_before=request.not_before,
    )


@dataclass(frozen=True)
class _Recipient:
    oid: str
    source: str  # "manager", "fallback_reviewer", "configured"


@dataclass(frozen=True)
class _Reviewer:
    """One reviewer of one running review, as a pass sees them."""

    oid: str
    pending: int
    hours: WorkingHours
    assigned_at: datetime
    snoozed_until: datetime | None


class ReminderScheduler:
    """Finds due reminders and escalations and queues them. One pass: :meth:`run_once`."""

    def __init__(
        self,
        *,
        store: Store,
        directory: DirectoryApi | None,
        clock: Clock,
        schedule: ScheduleSettings,
        tenant_id: str,
        escalation_fallback: str = "",
        digest: bool = False,
        wake: Callable[[], None] | None = None,
        lease_ttl_s: float = REMINDER_LEASE_TTL_S,
        languages: MailboxLanguages | None = None,
    ) -> None:
        self._store = store
        self._directory = directory
        self._clock = clock
        self._schedule = schedule
        self._tenant_id = tenant_id
        self._escalation_fallback = escalation_fallback
        self._digest = digest
        self._wake_outbox = wake
        #: This scheduler's name as the reminders lease holder (and as the claimer of requests):
        #: the background loop and a demo clock move run passes under it, so the two are one role.
        self.holder = f"reminders-{uuid.uuid4().hex[:12]}"
        self._worker_id = self.holder
        self._lease_ttl_s = lease_ttl_s
        self._hours: dict[str, tuple[float, WorkingHours]] = {}
        self._recipients: dict[tuple[str, str], tuple[float, list[_Recipient]]] = {}
        # Escalation slots this process saw claimed: no more directory look-ups for them.
        self._escalated: set[str] = set()
        # Passes of one process run one at a time (the loop, a demo clock move, a test).
        self._pass_lock = asyncio.Lock()
        self._wake_event = asyncio.Event()
        # Where mailbox languages are kept: the readings made here for working hours feed it.
        self._languages = languages

    @property
    def schedule(self) -> ScheduleSettings:
        return self._schedule

    # -- waking ---------------------------------------------------------------------------------
    def wake(self) -> None:
        """A reminder was requested: run the next pass now rather than at the next minute."""
        self._wake_event.set()

    async def wait(self, stop: asyncio.Event, *, timeout_s: float) -> None:
        """Wait until ``stop`` is set, :meth:`wake` is called, or ``timeout_s`` passes."""
        waiters = {
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._wake_event.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            self._wake_event.clear()

    async def run_leased(self) -> list[Due] | None:
        """A pass, if this scheduler holds (or can take) the reminders lease; ``None`` if another
        replica holds it."""
        lease = await self._store.acquire_lease(
            name=REMINDER_LEASE, holder=self.holder, ttl_s=self._lease_ttl_s
        )
        if lease is None:
            return None
        return await self.run_once()

    async def run_forever(
        self, stop: asyncio.Event, *, every_s: float = REMINDER_PASS_EVERY_S
    ) -> None:
        """Leased passes until ``stop`` is set, every ``every_s`` or when :meth:`wake` is called."""
        while not stop.is_set():
            try:
                await self.run_leased()
            except Exception:
                log.exception("reminder pass failed")
            await self.wait(stop, timeout_s=every_s)

    # -- look-ups ---------------------------------------------------------------------------------
    async def hours_for(self, user_oid: str) -> WorkingHours:
        """The user's working hours and zone (Graph mailbox settings, else the default)."""
        cached = self._hours.get(user_oid)
        if cached is not None and time.monotonic() - cached[0] < _HOURS_TTL_S:
            return cached[1]
        default = self._schedule.default_hours
        mailbox: Mapping[str, Any] | None = None
        if self._directory is not None:
            try:
                settings = await self._directory.mailbox_settings(user_oid)
                mailbox = settings.raw if settings is not None else None
            except GraphError as exc:
                log.info("mailbox settings unreadable, default hours used: %s", type(exc).__name__)
            else:
                if self._languages is not None:
                    # The same reading tells the language of their cards (a change is noticed
                    # within the hours' lifetime, with no extra Graph call).
                    await self._languages.note(user_oid, settings)
        hours = hours_from_mailbox(mailbox, default=default)
        self._hours[user_oid] = (time.monotonic(), hours)
        return hours

    async def assigned_at(self, instance: InstanceRecord, reviewer_oid: str) -> datetime:
        first = await self._store.first_assigned_at(
            instance_id=instance.instance_id, reviewer_oid=reviewer_oid
        )
        return first or instance.start_at or self._clock.now()

    # -- one pass -------------------------------------------------------------------------------
    async def run_once(self) -> list[Due]:
        """Queue everything due now, then settle the reminders people asked for; return the
        scheduled reminders and escalations this pass queued."""
        async with self._pass_lock:
            now = self._clock.now()
            queued: list[Due] = []
            # (reviewer, instance) → the point of the reminder this pass queued for them.
            reminded: dict[tuple[str, str], str] = {}
            for instance in await self._store.list_instances(status="InProgress"):
                if instance.end_at is None or instance.end_at <= now:
                    continue
                policy = self._schedule.policy_for(instance.definition_id, instance.display_name)
                pending = await self._pending_by_reviewer(instance.instance_id)
                for oid, count in sorted(pending.items()):
                    reviewer = _Reviewer(
                        oid=oid,
                        pending=count,
                        hours=await self.hours_for(oid),
                        assigned_at=await self.assigned_at(instance, oid),
                        snoozed_until=await self._store.get_snooze(
                            reviewer_oid=oid, instance_id=instance.instance_id
                        ),
                    )
                    for due in self._reminders_due(now, instance, policy, reviewer):
                        if await self._queue_reminder(due):
                            queued.append(due)
                            reminded[(due.reviewer_oid, due.instance_id)] = due.point
                    escalation = await self._escalation(now, instance, policy, reviewer)
                    if escalation is not None:
                        queued.append(escalation)
            settled = await self._settle_requests(now, reminded)
            if (queued or settled) and self._wake_outbox is not None:
                self._wake_outbox()
            return queued

    def _reminders_due(
        self, now: datetime, instance: InstanceRecord, policy: ReminderPolicy, reviewer: _Reviewer
    ) -> list[Due]:
        assert instance.end_at is not None
        return due_notifications(
            now=now,
            instance_start=instance.start_at or now,
            instance_end=instance.end_at,
            assigned_at=reviewer.assigned_at,
            reviewer_oid=reviewer.oid,
            instance_id=instance.instance_id,
            pending=reviewer.pending,
            # Escalations are the recipient's, in their hours: see _escalation.
            policy=replace(policy, escalation=None),
            hours=reviewer.hours,
            snoozed_until=reviewer.snoozed_until,
        )

    async def _pending_by_reviewer(self, instance_id: str) -> Counter[str]:
        rows = await self._store.list_assignments(instance_id=instance_id)
        items = {i.item_id: i for i in await self._store.list_items(instance_id=instance_id)}
        pending: Counter[str] = Counter()
        for reviewer, _instance, item_id in rows:
            item = items.get(item_id)
            if item is not None and item.decision == "NotReviewed":
                pending[reviewer] += 1
        return pending

    async def _queue_reminder(self, due: Due) -> bool:
        if due.point == "assigned":
            # The first review card is the "at assignment" reminder: record the slot only.
            await self._store.mark_reminder_sent(
                reminder_id=due.id,
                recipient_oid=due.reviewer_oid,
                instance_id=due.instance_id,
                kind="reminder",
            )
            return False
        if self._digest:
            # One message a day listing all of the reviewer's open reviews.
            hours = await self.hours_for(due.reviewer_oid)
            day = hours.local(self._clock.now()).date().isoformat()
            queued = await self._store.enqueue_outbox(
                key=f"digest|{due.reviewer_oid}|{day}",
                kind=CARD_KIND,
                payload={
                    "tenantId": self._tenant_id,
                    "reviewerOid": due.reviewer_oid,
                    "instanceId": due.instance_id,
                    "card": "digest",
                    "mode": "new",
                },
            )
        else:
            queued = await enqueue_reminder(
                self._store,
                tenant_id=self._tenant_id,
                reviewer_oid=due.reviewer_oid,
                instance_id=due.instance_id,
                key=due.id,
                reason=due.point,
            )
        if queued:
            await self._store.mark_reminder_sent(
                reminder_id=due.id,
                recipient_oid=due.reviewer_oid,
                instance_id=due.instance_id,
                kind="reminder",
            )
            await self._store.append_audit(
                event=AuditEvent(
                    action="reminder_queued",
                    actor="scheduler",
                    instance_id=due.instance_id,
                    detail={
                        "recipient": due.reviewer_oid,
                        "point": due.point,
                        "pending": due.pending,
                    },
                )
            )
        return queued

    # -- escalations ----------------------------------------------------------------------------
    async def _escalation(
        self, now: datetime, instance: InstanceRecord, policy: ReminderPolicy, reviewer: _Reviewer
    ) -> Due | None:
        """The reviewer's escalation, queued if it is due now for at least one recipient."""
        assert instance.end_at is not None
        start = instance.start_at or now
        point = escalation_point(
            policy=policy,
            hours=reviewer.hours,
            instance_start=start,
            instance_end=instance.end_at,
            assigned_at=reviewer.assigned_at,
        )
        if point is None or point > now or policy.escalation is None:
            return None  # not yet: nobody's hours matter, no directory look-up
        slot_id = notification_id(
            "escalation", reviewer.oid, instance.instance_id, policy.escalation.name
        )
        if slot_id in self._escalated:
            return None
        if await self._store.reminder_slot_taken(reminder_id=slot_id):
            # Claimed before (by this replica before a restart, or another): no look-ups.
            self._escalated.add(slot_id)
            return None
        recipients = await self._escalation_recipients(reviewer.oid, instance)
        if recipients is None:
            return None  # the directory did not answer: a later pass asks again
        calendar_owners = [await self.hours_for(r.oid) for r in recipients] or [reviewer.hours]
        due: Due | None = None
        for hours in calendar_owners:
            for candidate in due_notifications(
                now=now,
                instance_start=start,
                instance_end=instance.end_at,
                assigned_at=reviewer.assigned_at,
                reviewer_oid=reviewer.oid,
                instance_id=instance.instance_id,
                pending=reviewer.pending,
                policy=replace(policy, points=()),
                hours=reviewer.hours,
                escalation_hours=hours,
            ):
                if candidate.kind == "escalation":
                    due = candidate
            if due is not None:
                break
        if due is None:
            return None  # outside every recipient's working hours: a later pass sends it
        # Each recipient's card waits for their own next working moment (at once for the one
        # whose hours made it due); one whose next working moment is after the end gets none.
        timed: list[tuple[_Recipient, datetime]] = []
        for recipient, hours in zip(recipients, calendar_owners, strict=False):
            send_at = hours.with_holidays(policy.holidays).next_working_moment(now)
            if send_at < instance.end_at:
                timed.append((recipient, send_at))
        # The slot's one-time key lives a week past the review's end (no slot outlives it).
        ttl_s = (instance.end_at - now).total_seconds() + _SLOT_KEY_MARGIN_S
        claimed = await self._escalate(
            due, timed, skipped=len(recipients) - len(timed), ttl_s=ttl_s
        )
        self._escalated.add(due.id)
        return due if claimed else None

    async def _escalate(
        self,
        due: Due,
        recipients: list[tuple[_Recipient, datetime]],
        *,
        skipped: int,
        ttl_s: float,
    ) -> bool:
        """Claim the slot, queue its cards and audit it in one store transaction: whatever
        fails, restarts or moves to another replica, a slot yields its cards once — to the
        recipients of the pass that claimed it. True if this call claimed the slot."""
        reviewer_name = await self._display_name(due.reviewer_oid) if recipients else ""
        if self._languages is not None and recipients:
            # A manager may never have been a reviewer: learn their language before their card.
            await self._languages.refresh([recipient.oid for recipient, _send_at in recipients])
        for recipient, _send_at in recipients:
            # Before the card exists, so that its Nudge is authorized when it arrives.
            await self._store.record_escalation(
                instance_id=due.instance_id,
                reviewer_oid=due.reviewer_oid,
                recipient_oid=recipient.oid,
            )
        cards = [
            QueuedMessage(
                key=f"{due.id}|{recipient.oid}",
                kind=CARD_KIND,
                payload={
                    "tenantId": self._tenant_id,
                    "reviewerOid": recipient.oid,
                    "instanceId": due.instance_id,
                    "card": "escalation",
                    "mode": "new",
                    "subjectOid": due.reviewer_oid,
                    "subjectName": reviewer_name,
                },
                not_before=send_at,
            )
            for recipient, send_at in recipients
        ]
        detail: dict[str, Any] = {
            "reviewer": due.reviewer_oid,
            "recipients": [r.oid for r, _ in recipients],
            "sources": sorted({r.source for r, _ in recipients}),
            "sendAt": {r.oid: at.isoformat() for r, at in recipients},
            "pending": due.pending,
            "point": due.point,
        }
        if skipped:
            detail["outsideWorkingHoursBeforeEnd"] = skipped
        line = AuditEvent(
            action="escalation_queued" if recipients else "escalation_undeliverable",
            actor="scheduler",
            instance_id=due.instance_id,
            result="queued" if recipients else "no recipient",
            detail=detail,
        )
        taken = await self._store.enqueue_once(
            work=[OnceWork(once_key=due.id, messages=cards)],
            ttl_s=ttl_s,
            audit=lambda taken: [line] if taken else [],
        )
        # The ledger of claimed slots (what a restarted pass checks first); after a crash just
        # before this, the next pass finds the one-time key taken and records it then.
        await self._store.mark_reminder_sent(
            reminder_id=due.id,
            recipient_oid=due.reviewer_oid,
            instance_id=due.instance_id,
            kind="escalation",
        )
        return bool(taken)

    async def _escalation_recipients(
        self, reviewer_oid: str, instance: InstanceRecord
    ) -> list[_Recipient] | None:
        """Who gets the reviewer's escalation; None while the directory cannot say (not cached)."""
        key = (reviewer_oid, instance.instance_id)
        cached = self._recipients.get(key)
        if cached is not None and time.monotonic() - cached[0] < _HOURS_TTL_S:
            return cached[1]
        recipients = await self._resolve_recipients(reviewer_oid, instance)
        if recipients is not None:
            self._recipients[key] = (time.monotonic(), recipients)
        return recipients

    async def _resolve_recipients(
        self, reviewer_oid: str, instance: InstanceRecord
    ) -> list[_Recipient] | None:
        manager_id: str | None = None
        guest_self_review = False
        if self._directory is not None:
            try:
                user = await self._directory.get_user(reviewer_oid)
                guest_self_review = user.is_guest
                if not guest_self_review:
                    manager = await self._directory.get_manager(reviewer_oid, select=("id",))
                    manager_id = manager.id if manager else None
            except _TRANSIENT as exc:
                # Throttled or unavailable is not "no manager": falling back now would send
                # the escalation to someone else than the manager a later pass would find.
                log.info("manager look-up postponed: %s", type(exc).__name__)
                return None
            except GraphError as exc:
                log.warning("manager lookup failed: %s", type(exc).__name__)
        if manager_id:
            return [_Recipient(manager_id, "manager")]
        # No manager (or a guest, who has none in this tenant): the review's fallback reviewers.
        fallback = [
            _Recipient(str(oid), "fallback_reviewer")
            for oid in instance.data.get("fallbackUserIds") or []
            if oid != reviewer_oid
        ]
        if fallback:
            return fallback
        if self._escalation_fallback:
            return [_Recipient(self._escalation_fallback, "configured")]
        return []

    async def _display_name(self, user_oid: str) -> str:
        if self._directory is None:
            return ""
        try:
            return (
                await self._directory.get_user(user_oid, select=("id", "displayName"))
            ).display_name
        except GraphError:
            return ""

    # -- reminders people asked for -------------------------------------------------------------
    async def _settle_requests(self, now: datetime, reminded: dict[tuple[str, str], str]) -> int:
        """Settle every due reminder request; return how many were settled."""
        settled = 0
        while True:
            batch = await self._store.claim_outbox(
                worker=self._worker_id,
                limit=_REQUEST_BATCH,
                lease_s=_REQUEST_CLAIM_S,
                kinds=[REQUEST_KIND],
            )
            if not batch:
                return settled
            for message in batch:
                # A failure here fails the pass; the claim expires and a later pass settles it.
                await self._settle(message, now, reminded)
                settled += 1

    async def _settle(
        self, message: OutboxMessage, now: datetime, reminded: dict[tuple[str, str], str]
    ) -> None:
        payload = message.payload
        reviewer = str(payload.get("reviewerOid") or "")
        instance_id = str(payload.get("instanceId") or "")
        reason = str(payload.get("reason") or "manual")
        detail: dict[str, Any] = {
            "recipient": reviewer,
            "point": reason,
            "requestedBy": str(payload.get("by") or ""),
            "requestedAt": str(payload.get("requestedAt") or ""),
        }
        instance = await self._store.get_instance(instance_id=instance_id)
        if (
            instance is None
            or instance.status != "InProgress"
            or instance.end_at is None
            or instance.end_at <= now
        ):
            await self._finish(message, "skipped", "the review is no longer running", detail)
            return
        pending = await self._pending_of(reviewer, instance_id)
        if pending == 0:
            await self._finish(message, "skipped", "nothing pending any more", detail)
            return
        covered_by = reminded.get((reviewer, instance_id))
        if covered_by is not None:
            # One message, not two: the scheduled reminder of this pass is the one they asked for.
            await self._finish(
                message, "covered", f"the {covered_by} reminder went out at the same time", detail
            )
            return
        policy = self._schedule.policy_for(instance.definition_id, instance.display_name)
        hours = (await self.hours_for(reviewer)).with_holidays(policy.holidays)
        snoozed_until = await self._store.get_snooze(reviewer_oid=reviewer, instance_id=instance_id)
        wait_until: datetime | None = None
        why = ""
        if snoozed_until is not None and now < snoozed_until:
            wait_until, why = hours.next_working_moment(snoozed_until), "snoozed"
        elif not hours.is_working_moment(now):
            wait_until, why = hours.next_working_moment(now), "outside working hours"
        if wait_until is not None:
            if wait_until >= instance.end_at:
                await self._finish(message, "skipped", f"{why} until after the review ends", detail)
                return
            await self._store.retry_outbox(
                message_id=message.id,
                worker=self._worker_id,
                error=why,
                not_before=wait_until,
            )
            await self._store.append_audit(
                event=AuditEvent(
                    action="reminder_deferred",
                    actor="scheduler",
                    instance_id=instance_id,
                    result=why,
                    detail={**detail, "until": wait_until.isoformat()},
                )
            )
            return
        card_key = str(payload.get("cardKey") or message.key)
        await enqueue_reminder(
            self._store,
            tenant_id=str(payload.get("tenantId") or self._tenant_id),
            reviewer_oid=reviewer,
            instance_id=instance_id,
            key=card_key,
            reason=reason,
        )
        await self._store.complete_outbox(
            message_id=message.id,
            worker=self._worker_id,
            result={"outcome": "queued", "at": now.isoformat(), "cardKey": card_key},
            audit=[
                AuditEvent(
                    action="reminder_queued",
                    actor="scheduler",
                    instance_id=instance_id,
                    detail={**detail, "pending": pending, "mode": "working_hours"},
                )
            ],
        )
        reminded[(reviewer, instance_id)] = reason

    async def _finish(
        self, message: OutboxMessage, outcome: str, why: str, detail: Mapping[str, Any]
    ) -> None:
        await self._store.complete_outbox(
            message_id=message.id,
            worker=self._worker_id,
            result={"outcome": outcome, "reason": why},
            audit=[
                AuditEvent(
                    action=f"reminder_{outcome}",
                    actor="scheduler",
                    instance_id=str(message.payload.get("instanceId") or ""),
                    result=why,
                    detail=dict(detail),
                )
            ],
        )

    async def _pending_of(self, reviewer: str, instance_id: str) -> int:
        rows = await self._store.list_assignments(instance_id=instance_id, reviewer_oid=reviewer)
        if not rows:
            return 0
        items = await self._store.list_items(
            instance_id=instance_id, item_ids=[item for _r, _i, item in rows]
        )
        return sum(1 for item in items if item.decision == "NotReviewed")
