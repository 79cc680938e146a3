"""Admin operations shared by the command line and the admin HTTP routes.

- :func:`remind_now`: queue a reminder, now, for everyone with pending items in one review;
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.clock import Clock
from bot.notify.reminders import enqueue_reminder
from bot.store import AuditEvent, InstanceRecord, ItemRecord, Store

__all__ = [
    "AUDIT_COLUMNS",
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
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class UnknownInstance(LookupError):
    """The store has no review instance with that id."""


def valid_instance_id(value: str) -> bool:
    """True when ``value`` has the shape of an access review instance id."""
    return bool(_INSTANCE_ID.match(value)) and ".." not in value


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


async def remind_now(
    store: Store, *, clock: Clock, tenant_id: str, instance_id: str, by: str
) -> list[str]:
    """Queue one reminder per reviewer with pending items in the instance; return who."""
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
    stamp = clock.now().strftime("%Y%m%dT%H%M%S")
    reminded: list[str] = []
    for reviewer in sorted(pending):
        if await enqueue_reminder(
            store,
            tenant_id=tenant_id,
            reviewer_oid=reviewer,
            instance_id=instance_id,
            key=f"manual|{reviewer}|{instance_id}|{stamp}",
            reason="manual",
        ):
            reminded.append(reviewer)
    await store.append_audit(
        event=AuditEvent(
            action="manual_reminder",
            actor=by,
            instance_id=instance_id,
            detail={"reviewers": reminded, "count": len(reminded)},
        )
    )
    return reminded


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
