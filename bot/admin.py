"""Admin operations shared by the command line and the admin HTTP routes.

- :func:`remind_now`: remind everyone with pending items in one review — once per reviewer within
  the manual-reminder window, in their working hours unless the admin says ``now``;
- :func:`export_audit`: the audit trail of one review as CSV or JSON — every notification,
  reminder, escalation, nudge, snooze and decision, with time, actor/recipient, kind and outcome;
- :func:`review_summaries`: every review the bot knows with its ids, status, stage, due date and
  counts — what ``python app.py reviews`` prints and the status page shows, from one computation so
  the two always agree.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.clock import Clock
from bot.notify.reminders import (
    REQUEST_KIND,
    ReminderMode,
    enqueue_reminder,
    request_reminder,
)
from bot.store import AuditEvent, InstanceRecord, ItemRecord, OutboxMessage, Store

__all__ = [
    "AUDIT_COLUMNS",
    "ManualReminder",
    "RemindNowResult",
    "ReviewSummary",
    "UnknownInstance",
    "export_audit",
    "formula_safe",
    "remind_now",
    "review_summaries",
    "valid_instance_id",
]

# What an instance id may look like wherever one comes from outside (a query string, the command
# line): Graph's are GUIDs. It also ends up in a file name (Content-Disposition), so nothing that
# could close the quoted name, climb a folder or mean something to a shell is let through.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class UnknownInstance(LookupError):
    """The store has no review instance with that id."""


def valid_instance_id(value: str) -> bool:
    """True when ``value`` has the shape of an access review instance id."""
    # fullmatch: "$" would let a trailing newline through, into a header.
    return bool(_INSTANCE_ID.fullmatch(value)) and ".." not in value


AUDIT_COLUMNS = (
    "id",
    "at",
    "action",
    "actor",
    "recipient",
    "item_id",
    "result",
    "request_id",
    "detail",
)

#: Where an earlier manual reminder is: ``waiting`` (for the reviewer's working hours or the end
#: of their snooze), ``queued`` (to be sent), ``sent``, ``covered`` (a scheduled reminder went
#: out at the same moment instead), ``skipped`` (nothing pending any more, review over),
#: ``failed``, or ``in_progress`` (another request is queuing it this very moment).
ReminderState = Literal["waiting", "queued", "sent", "covered", "skipped", "failed", "in_progress"]


@dataclass(frozen=True)
class ManualReminder:
    """What remind-now did for one reviewer: queued one now, or found one inside the window.

    For ``status == "already_reminded"`` the other fields describe that earlier reminder.
    """

    reviewer_oid: str
    status: Literal["queued", "already_reminded"]
    mode: ReminderMode | None
    requested_at: datetime | None
    requested_by: str
    state: ReminderState = "queued"
    send_at: datetime | None = None  # when a waiting reminder may go out
    sent_at: datetime | None = None
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "reviewer": self.reviewer_oid,
            "status": self.status,
            "mode": self.mode,
            "requestedAt": _iso(self.requested_at),
            "requestedBy": self.requested_by,
            "state": self.state,
        }
        if self.send_at is not None:
            data["sendAt"] = _iso(self.send_at)
        if self.sent_at is not None:
            data["sentAt"] = _iso(self.sent_at)
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class RemindNowResult:
    instance_id: str
    mode: ReminderMode
    window_h: float
    reviewers: tuple[ManualReminder, ...]

    @property
    def queued(self) -> list[str]:
        """Reviewers for whom this request queued a reminder."""
        return [r.reviewer_oid for r in self.reviewers if r.status == "queued"]

    @property
    def already_reminded(self) -> list[ManualReminder]:
        """Reviewers left alone: a manual reminder reached them inside the window."""
        return [r for r in self.reviewers if r.status == "already_reminded"]

    def as_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance_id,
            "mode": self.mode,
            "windowHours": self.window_h,
            "queued": len(self.queued),
            "alreadyReminded": len(self.already_reminded),
            "reviewers": [r.as_json() for r in self.reviewers],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def manual_window_key(reviewer_oid: str, instance_id: str) -> str:
    """The one-time key that makes a manual reminder one per reviewer and review per window."""
    return f"manual-reminder|{reviewer_oid}|{instance_id}"


async def remind_now(
    store: Store,
    *,
    clock: Clock,
    tenant_id: str,
    instance_id: str,
    by: str,
    now: bool = False,
    window_h: float = 12.0,
    wake: Callable[[], None] | None = None,
) -> RemindNowResult:
    """Remind every reviewer with pending items in the instance, once per ``window_h`` hours.

    A reviewer already reminded by hand inside the window (by any route, command or replica: the
    window is a one-time key in the store) is left alone and described instead: when the earlier
    reminder was asked for, by whom, and whether and when it was sent. Otherwise, with ``now``
    the reminder card is queued at once, whatever the reviewer's hours or snooze; without it a
    request is queued that the reminder pass settles in the reviewer's working hours after any
    snooze (:mod:`bot.notify.reminders`). ``wake`` is called when something was queued.
    """
    instance = await store.get_instance(instance_id=instance_id)
    if instance is None:
        raise LookupError(f"no review instance {instance_id!r} is known to the bot")
    if instance.status != "InProgress":
        raise LookupError(f"review instance {instance_id!r} is {instance.status}, not in progress")
    items = {i.item_id: i for i in await store.list_items(instance_id=instance_id)}
    pending: Counter[str] = Counter()
    for reviewer, _instance, item_id in await store.list_assignments(instance_id=instance_id):
        item = items.get(item_id)
        if item is not None and item.decision == "NotReviewed":
            pending[reviewer] += 1
    mode: ReminderMode = "now" if now else "working_hours"
    at = clock.now()
    stamp = at.strftime("%Y%m%dT%H%M%S%fZ")
    window = timedelta(hours=window_h)
    outcomes: list[ManualReminder] = []
    requests: dict[str, str] = {}
    earlier: dict[str, tuple[AuditEvent, str]] | None = None
    for reviewer in sorted(pending):
        if not await store.remember_once(
            key=manual_window_key(reviewer, instance_id), ttl_s=window.total_seconds()
        ):
            if earlier is None:
                earlier = await _earlier_requests(store, instance_id, since=at - window)
            outcomes.append(
                await _describe_earlier(store, reviewer, instance_id, earlier.get(reviewer), at)
            )
            continue
        card_key = f"manual|{reviewer}|{instance_id}|{stamp}"
        if now:
            await enqueue_reminder(
                store,
                tenant_id=tenant_id,
                reviewer_oid=reviewer,
                instance_id=instance_id,
                key=card_key,
                reason="manual",
            )
            requests[reviewer] = card_key
        else:
            request_key = f"manual-request|{reviewer}|{instance_id}|{stamp}"
            await request_reminder(
                store,
                tenant_id=tenant_id,
                reviewer_oid=reviewer,
                instance_id=instance_id,
                key=request_key,
                card_key=card_key,
                reason="manual",
                by=by,
                requested_at=at,
            )
            requests[reviewer] = request_key
        outcomes.append(
            ManualReminder(
                reviewer_oid=reviewer, status="queued", mode=mode, requested_at=at, requested_by=by
            )
        )
    result = RemindNowResult(
        instance_id=instance_id, mode=mode, window_h=window_h, reviewers=tuple(outcomes)
    )
    await store.append_audit(
        event=AuditEvent(
            action="manual_reminder",
            actor=by,
            instance_id=instance_id,
            result="queued" if result.queued else "already reminded",
            detail={
                "mode": mode,
                "reviewers": result.queued,
                "count": len(result.queued),
                "requests": requests,
                "alreadyReminded": [r.reviewer_oid for r in result.already_reminded],
                "windowHours": window_h,
            },
        )
    )
    if result.queued and wake is not None:
        wake()
    return result


async def _earlier_requests(
    store: Store, instance_id: str, *, since: datetime
) -> dict[str, tuple[AuditEvent, str]]:
    """The latest manual request per reviewer since ``since``: its audit line and outbox key."""
    found: dict[str, tuple[AuditEvent, str]] = {}
    events = await store.list_audit(
        instance_id=instance_id, actions=["manual_reminder"], newest_first=True, limit=1000
    )
    for event in events:
        if event.at is not None and event.at < since:
            break
        requests = event.detail.get("requests")
        if not isinstance(requests, dict):
            continue
        for reviewer, key in requests.items():
            found.setdefault(str(reviewer), (event, str(key)))
    return found


async def _describe_earlier(
    store: Store,
    reviewer: str,
    instance_id: str,
    earlier: tuple[AuditEvent, str] | None,
    now: datetime,
) -> ManualReminder:
    """What happened to the manual reminder that holds the window for ``reviewer``."""
    if earlier is None:
        # The window is taken but its request is not recorded yet: another request is between
        # the two steps right now.
        return ManualReminder(
            reviewer_oid=reviewer,
            status="already_reminded",
            mode=None,
            requested_at=None,
            requested_by="",
            state="in_progress",
            note="another request is queuing a reminder for this reviewer right now",
        )
    event, key = earlier
    raw_mode = event.detail.get("mode")
    mode: ReminderMode | None = raw_mode if raw_mode in ("now", "working_hours") else None
    base = ManualReminder(
        reviewer_oid=reviewer,
        status="already_reminded",
        mode=mode,
        requested_at=event.at,
        requested_by=event.actor,
    )
    row = await store.get_outbox(key=key)
    if row is not None and row.kind == REQUEST_KIND:
        if row.status in ("pending", "in_flight"):
            waiting = row.status == "pending" and row.not_before > now
            return replace(
                base,
                state="waiting" if waiting else "queued",
                send_at=row.not_before if waiting else None,
                note=(row.last_error or "") if waiting else "",
            )
        if row.status == "failed":
            return replace(base, state="failed", note=row.last_error or "")
        result = row.result or {}
        outcome = result.get("outcome")
        if outcome != "queued":
            state: ReminderState = "covered" if outcome == "covered" else "skipped"
            return replace(base, state=state, note=str(result.get("reason") or ""))
        row = await store.get_outbox(key=str(result.get("cardKey") or ""))
    return await _card_state(store, base, row, reviewer, instance_id)


async def _card_state(
    store: Store,
    base: ManualReminder,
    row: OutboxMessage | None,
    reviewer: str,
    instance_id: str,
) -> ManualReminder:
    if row is None or row.status in ("pending", "in_flight"):
        return replace(base, state="queued")
    if row.status == "failed":
        return replace(base, state="failed", note=row.last_error or "")
    result = row.result or {}
    activity_id = result.get("activityId")
    if not activity_id:
        return replace(base, state="skipped", note=str(result.get("reason") or ""))
    sent = await store.get_sent_message(
        reviewer_oid=reviewer, instance_id=instance_id, kind="reminder"
    )
    sent_at = sent.sent_at if sent is not None and sent.activity_id == activity_id else None
    return replace(base, state="sent", sent_at=sent_at)


def _recipient(event: AuditEvent) -> str:
    detail = event.detail
    for key in ("recipient", "reviewer"):
        if detail.get(key):
            return str(detail[key])
    recipients = detail.get("recipients")
    return ";".join(map(str, recipients)) if isinstance(recipients, list) else ""


# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection"); tab
# and carriage return too, as some spreadsheets strip them and read what follows.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: object) -> object:
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula.

    Only non-empty text that starts with a formula character changes: an empty cell stays empty
    (``""[:1] in "=+-@"`` is true, which once put a ``'`` into every empty cell).
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


async def export_audit(store: Store, *, instance_id: str, fmt: Literal["csv", "json"]) -> str:
    """The whole audit trail of one review, oldest first.

    Raises :class:`UnknownInstance` when the store knows no such review: an empty export for a
    mistyped id would look like a review where nothing happened.
    """
    if await store.get_instance(instance_id=instance_id) is None:
        raise UnknownInstance(f"no review instance {instance_id!r} is known to the bot")
    events: list[AuditEvent] = []
    after = 0
    while True:
        page = await store.list_audit(instance_id=instance_id, after_id=after, limit=5000)
        events.extend(page)
        if len(page) < 5000:
            break
        after = int(page[-1].id or after)
    rows = [
        {
            "id": event.id,
            "at": event.at.isoformat() if event.at else "",
            "action": event.action,
            "actor": event.actor,
            "recipient": _recipient(event),
            "item_id": event.item_id or "",
            "result": event.result,
            "request_id": event.request_id or "",
            "detail": json.dumps(dict(event.detail), sort_keys=True, default=str),
        }
        for event in events
    ]
    if fmt == "json":
        return json.dumps(
            [{**row, "detail": json.loads(str(row["detail"]))} for row in rows],
            indent=2,
            default=str,
        )
    buffer = io.StringIO()
    # RFC 4180's CRLF: the writer quotes a cell holding any character of the line terminator,
    # so a lone CR in a value (a reason pasted from elsewhere) cannot split a row.
    writer = csv.DictWriter(buffer, fieldnames=AUDIT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        # Neutralise spreadsheet formulas in user-influenced cells (CSV injection).
        writer.writerow({k: formula_safe(v) for k, v in row.items()})
    return buffer.getvalue()


# -- review summaries -----------------------------------------------------------------------------

# Decisions that are not a decision: still to do, or the item left the review.
_UNDECIDED = "NotReviewed"
_REMOVED = "Removed"


@dataclass(frozen=True)
class ReviewSummary:
    """One review instance as the admin sees it.

    ``total`` counts the items of the review (removed ones excluded), ``decided`` those with a
    decision, ``pending`` the rest. ``pending_by_reviewer`` counts, per reviewer, the pending
    items assigned to them: an item with two reviewers counts once for each, so its sum can be
    larger than ``pending``.
    """

    instance_id: str
    definition_id: str
    name: str
    status: str
    stage: str
    start: datetime | None
    due: datetime | None
    decided: int
    total: int
    pending_by_reviewer: Mapping[str, int]

    @property
    def pending(self) -> int:
        return self.total - self.decided

    @property
    def reviewers_pending(self) -> int:
        return len(self.pending_by_reviewer)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition_id": self.definition_id,
            "instance_id": self.instance_id,
            "status": self.status,
            "stage": self.stage,
            "start": self.start.isoformat() if self.start else None,
            "due": self.due.isoformat() if self.due else None,
            "decided": self.decided,
            "total": self.total,
            "reviewers_pending": self.reviewers_pending,
            "pending_by_reviewer": dict(self.pending_by_reviewer),
        }


def _stage_label(instance: InstanceRecord) -> str:
    if not instance.stage_id or not instance.data.get("multiStage"):
        return ""
    count = int(instance.data.get("stageCount") or 1)
    try:
        number = min(max(int(instance.stage_id), 1), count)
    except ValueError:
        number = 1
    return f"{number} of {count}"


def _summary(
    instance: InstanceRecord, items: list[ItemRecord], rows: list[tuple[str, str, str]]
) -> ReviewSummary:
    by_id = {item.item_id: item for item in items if item.decision != _REMOVED}
    pending: Counter[str] = Counter()
    for reviewer, _instance, item_id in rows:
        item = by_id.get(item_id)
        if item is not None and item.decision == _UNDECIDED:
            pending[reviewer] += 1
    return ReviewSummary(
        instance_id=instance.instance_id,
        definition_id=instance.definition_id,
        name=instance.display_name,
        status=instance.status,
        stage=_stage_label(instance),
        start=instance.start_at,
        due=instance.end_at,
        decided=sum(1 for item in by_id.values() if item.decision != _UNDECIDED),
        total=len(by_id),
        pending_by_reviewer=dict(sorted(pending.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


async def review_summaries(store: Store, *, status: str | None = None) -> list[ReviewSummary]:
    """Every review instance the store knows (or those with ``status``): open ones first, each
    group by due date."""
    summaries = [
        _summary(
            instance,
            await store.list_items(instance_id=instance.instance_id),
            await store.list_assignments(instance_id=instance.instance_id),
        )
        for instance in await store.list_instances(status=status)
    ]
    far = datetime.max.replace(tzinfo=None)
    summaries.sort(
        key=lambda s: (
            s.status != "InProgress",
            s.due.replace(tzinfo=None) if s.due else far,
            s.name,
            s.instance_id,
        )
    )
    return summaries
