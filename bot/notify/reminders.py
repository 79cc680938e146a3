"""The reminder and escalation loop: the schedule (:mod:`bot.notify.schedule`) applied to the store.

Every pass looks at each running review and each reviewer with pending items there, asks the
schedule what is due now (their policy, working hours, time zone, snooze), and queues it in the
outbox under the slot's deterministic id — so restarts and several replicas queue it once. The
outbox worker renders the card when it sends, and skips a reminder whose reviewer finished in the
meantime. Escalations go to the reviewer's manager; with no manager, to the review's fallback
reviewers, or to a configured address; each recipient is recorded so that their **Nudge** is
authorized.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.graph import DirectoryApi, GraphError
from bot.notify.delivery import CARD_KIND
from bot.notify.language import MailboxLanguages
from bot.notify.policy import ScheduleSettings
from bot.notify.schedule import Due, due_notifications
from bot.notify.worktime import WorkingHours, hours_from_mailbox
from bot.store import AuditEvent, InstanceRecord, Store

__all__ = ["ReminderScheduler", "enqueue_reminder"]

log = logging.getLogger(__name__)

_HOURS_TTL_S = 6 * 3600


async def enqueue_reminder(
    store: Store, *, tenant_id: str, reviewer_oid: str, instance_id: str, key: str, reason: str
) -> bool:
    """Queue a reminder card (the review's items, "6 of 18 left, due tomorrow") under ``key``."""
    return await store.enqueue_outbox(
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


@dataclass(frozen=True)
class _Recipient:
    oid: str
    source: str  # "manager", "fallback_reviewer", "configured"


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
        languages: MailboxLanguages | None = None,
    ) -> None:
        self._store = store
        self._directory = directory
        self._clock = clock
        self._schedule = schedule
        self._tenant_id = tenant_id
        self._escalation_fallback = escalation_fallback
        self._digest = digest
        self._wake = wake
        self._hours: dict[str, tuple[float, WorkingHours]] = {}
        # Where mailbox languages are kept: the readings made here for working hours feed it.
        self._languages = languages

    @property
    def schedule(self) -> ScheduleSettings:
        return self._schedule

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

    async def run_once(self) -> list[Due]:
        """Queue everything due now; return what this pass queued."""
        now = self._clock.now()
        queued: list[Due] = []
        for instance in await self._store.list_instances(status="InProgress"):
            if instance.end_at is None or instance.end_at <= now:
                continue
            policy = self._schedule.policy_for(instance.definition_id, instance.display_name)
            pending = await self._pending_by_reviewer(instance.instance_id)
            for reviewer, count in sorted(pending.items()):
                hours = await self.hours_for(reviewer)
                dues = due_notifications(
                    now=now,
                    instance_start=instance.start_at or now,
                    instance_end=instance.end_at,
                    assigned_at=await self.assigned_at(instance, reviewer),
                    reviewer_oid=reviewer,
                    instance_id=instance.instance_id,
                    pending=count,
                    policy=policy,
                    hours=hours,
                    snoozed_until=await self._store.get_snooze(
                        reviewer_oid=reviewer, instance_id=instance.instance_id
                    ),
                )
                for due in dues:
                    if await self._queue(due, instance):
                        queued.append(due)
        if queued and self._wake is not None:
            self._wake()
        return queued

    async def _pending_by_reviewer(self, instance_id: str) -> Counter[str]:
        rows = await self._store.list_assignments(instance_id=instance_id)
        items = {i.item_id: i for i in await self._store.list_items(instance_id=instance_id)}
        pending: Counter[str] = Counter()
        for reviewer, _instance, item_id in rows:
            item = items.get(item_id)
            if item is not None and item.decision == "NotReviewed":
                pending[reviewer] += 1
        return pending

    async def _queue(self, due: Due, instance: InstanceRecord) -> bool:
        if due.kind == "reminder":
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
        return await self._escalate(due, instance)

    async def _escalate(self, due: Due, instance: InstanceRecord) -> bool:
        if not await self._store.mark_reminder_sent(
            reminder_id=due.id,
            recipient_oid=due.reviewer_oid,
            instance_id=due.instance_id,
            kind="escalation",
        ):
            return False
        recipients = await self._escalation_recipients(due.reviewer_oid, instance)
        reviewer_name = await self._display_name(due.reviewer_oid)
        if self._languages is not None and recipients:
            # A manager may never have been a reviewer: learn their language before their card.
            await self._languages.refresh([r.oid for r in recipients])
        for recipient in recipients:
            await self._store.record_escalation(
                instance_id=due.instance_id,
                reviewer_oid=due.reviewer_oid,
                recipient_oid=recipient.oid,
            )
            await self._store.enqueue_outbox(
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
            )
        await self._store.append_audit(
            event=AuditEvent(
                action="escalation_queued" if recipients else "escalation_undeliverable",
                actor="scheduler",
                instance_id=due.instance_id,
                result="queued" if recipients else "no recipient",
                detail={
                    "reviewer": due.reviewer_oid,
                    "recipients": [r.oid for r in recipients],
                    "sources": sorted({r.source for r in recipients}),
                    "pending": due.pending,
                    "point": due.point,
                },
            )
        )
        return True

    async def _escalation_recipients(
        self, reviewer_oid: str, instance: InstanceRecord
    ) -> list[_Recipient]:
        manager_id: str | None = None
        guest_self_review = False
        if self._directory is not None:
            try:
                user = await self._directory.get_user(reviewer_oid)
                guest_self_review = user.is_guest
                if not guest_self_review:
                    manager = await self._directory.get_manager(reviewer_oid, select=("id",))
                    manager_id = manager.id if manager else None
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
