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
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.clock import Clock
from bot.notify.reminders import REQUEST_KIND, ReminderMode, reminder_card, reminder_request
from bot.store import AuditEvent, InstanceRecord, ItemRecord, OnceWork, OutboxMessage, Store

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
#: ``failed``, or ``unknown`` (the window is taken but no request line describes it).
ReminderState = Literal["waiting", "queued", "sent", "covered", "skipped", "failed", "unknown"]


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


# How long an override's one-time key is kept: longer than any review runs.
_OVERRIDE_KEY_TTL_S = 400 * 86400.0


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
    snooze (:mod:`bot.notify.reminders`). ``now`` also sends at once an earlier request of the
    window that still waits (one message, not two). ``wake`` is called when something was queued.

    The window keys, the queued messages and the ``manual_reminder`` audit line are written in
    one store transaction: a failure at any point leaves all of them or none, so a retry neither
    finds a window taken with nothing queued nor queues anything twice.
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
    reviewers = sorted(pending)
    work: dict[str, OnceWork] = {}
    for reviewer in reviewers:
        card_key = f"manual|{reviewer}|{instance_id}|{stamp}"
        message = (
            reminder_card(
                tenant_id=tenant_id,
                reviewer_oid=reviewer,
                instance_id=instance_id,
                key=card_key,
                reason="manual",
            )
            if now
            else reminder_request(
                tenant_id=tenant_id,
                reviewer_oid=reviewer,
                instance_id=instance_id,
                key=f"manual-request|{reviewer}|{instance_id}|{stamp}",
                card_key=card_key,
                reason="manual",
                by=by,
                requested_at=at,
            )
        )
        work[reviewer] = OnceWork(
            once_key=manual_window_key(reviewer, instance_id), messages=(message,)
        )
    reviewer_of = {w.once_key: reviewer for reviewer, w in work.items()}

    def audit(taken: Sequence[OnceWork]) -> list[AuditEvent]:
        queued = {reviewer_of[w.once_key]: w.messages[0].key for w in taken}
        return [
            AuditEvent(
                action="manual_reminder",
                actor=by,
                instance_id=instance_id,
                result="queued" if queued else "already reminded",
                detail={
                    "mode": mode,
                    "reviewers": list(queued),
                    "count": len(queued),
                    "requests": queued,
                    "alreadyReminded": [r for r in reviewers if r not in queued],
                    "windowHours": window_h,
                },
            )
        ]

    taken = await store.enqueue_once(
        work=list(work.values()), ttl_s=window.total_seconds(), audit=audit
    )
    queued = {reviewer_of[w.once_key] for w in taken}
    outcomes: list[ManualReminder] = []
    earlier: dict[str, tuple[AuditEvent, str]] | None = None
    for reviewer in reviewers:
        if reviewer in queued:
            outcomes.append(
                ManualReminder(
                    reviewer_oid=reviewer,
                    status="queued",
                    mode=mode,
                    requested_at=at,
                    requested_by=by,
                )
            )
            continue
        if earlier is None:
            earlier = await _earlier_requests(store, instance_id)
        found = earlier.get(reviewer)
        overridden = None
        if now and found is not None:
            overridden = await _send_waiting_now(
                store, found[1], reviewer=reviewer, tenant_id=tenant_id, by=by, at=at
            )
        outcomes.append(
            overridden or await _describe_earlier(store, reviewer, instance_id, found, at)
        )
    result = RemindNowResult(
        instance_id=instance_id, mode=mode, window_h=window_h, reviewers=tuple(outcomes)
    )
    if result.queued and wake is not None:
        wake()
    return result


async def _send_waiting_now(
    store: Store, request_key: str, *, reviewer: str, tenant_id: str, by: str, at: datetime
) -> ManualReminder | None:
    """Send at once the earlier request of the window that still waits (for working hours or
    the end of a snooze): an admin's ``now`` overrides it. One message, not two: the card is
    queued under the key the request would have used, and the request is settled. None when
    there is no such request (it was sent, or a reminder pass is settling it this moment)."""
    row = await store.get_outbox(key=request_key)
    if row is None or row.kind != REQUEST_KIND or row.status != "pending":
        return None
    worker = f"remind-now-{uuid.uuid4().hex[:12]}"
    # Taken from the queue first, so a reminder pass cannot settle it meanwhile.
    claimed = await store.claim_outbox_early(key=request_key, worker=worker, lease_s=60.0)
    if claimed is None:
        return None
    payload = claimed.payload
    instance_id = str(payload.get("instanceId") or "")
    card_key = str(payload.get("cardKey") or request_key)
    waiting = claimed.not_before > at
    detail = {
        "recipient": reviewer,
        "request": request_key,
        "requestedBy": str(payload.get("by") or ""),
        "requestedAt": str(payload.get("requestedAt") or ""),
        "mode": "now",
    }
    if waiting:
        detail |= {"until": claimed.not_before.isoformat(), "waitedFor": claimed.last_error or ""}
    card = reminder_card(
        tenant_id=str(payload.get("tenantId") or tenant_id),
        reviewer_oid=reviewer,
        instance_id=instance_id,
        key=card_key,
        reason=str(payload.get("reason") or "manual"),
    )
    # The card and its audit line together; a crash before the request is settled below leaves
    # the request to a later pass, whose card has this key and so is not sent again.
    await store.enqueue_once(
        work=[OnceWork(once_key=f"manual-override|{request_key}", messages=(card,))],
        ttl_s=_OVERRIDE_KEY_TTL_S,
        audit=lambda taken: (
            [
                AuditEvent(
                    action="reminder_overridden",
                    actor=by,
                    instance_id=instance_id,
                    result="sent now",
                    detail=detail,
                )
            ]
            if taken
            else []
        ),
    )
    await store.complete_outbox(
        message_id=claimed.id,
        worker=worker,
        result={"outcome": "queued", "at": at.isoformat(), "cardKey": card_key, "nowBy": by},
    )
    note = "the earlier request goes out now"
    if waiting:
        note += f" instead of waiting until {claimed.not_before.isoformat()}"
        if claimed.last_error:
            note += f" ({claimed.last_error})"
    return ManualReminder(
        reviewer_oid=reviewer,
        status="queued",
        mode="now",
        requested_at=at,
        requested_by=by,
        note=note,
    )


async def _earlier_requests(store: Store, instance_id: str) -> dict[str, tuple[AuditEvent, str]]:
    """The latest manual request per reviewer: its audit line and outbox key.

    A reviewer's window key and the line naming their request are written in one transaction,
    so the latest line that names them is the request holding their window.
    """
    found: dict[str, tuple[AuditEvent, str]] = {}
    events = await store.list_audit(
        instance_id=instance_id, actions=["manual_reminder"], newest_first=True, limit=1000
    )
    for event in events:
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
        # The window is taken but no request line names the reviewer (one written before the
        # window and its request shared a transaction): nothing more is known of it.
        return ManualReminder(
            reviewer_oid=reviewer,
            status="already_reminded",
            mode=None,
            requested_at=None,
            requested_by="",
            state="unknown",
            note="a manual reminder holds the window, but its request is not in the audit trail",
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
