"""Admin operations shared by the command line and the admin HTTP routes.

- :func:`remind_now`: queue a reminder, now, for everyone with pending items in one review;
- :func:`export_audit`: the audit trail of one review as CSV or JSON — every notification,
  reminder, escalation, nudge, snooze and decision, with time, actor/recipient, kind and outcome.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Literal

from bot.clock import Clock
from bot.notify.reminders import enqueue_reminder
from bot.store import AuditEvent, Store

__all__ = ["AUDIT_COLUMNS", "export_audit", "remind_now"]

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


async def export_audit(store: Store, *, instance_id: str, fmt: Literal["csv", "json"]) -> str:
    """The whole audit trail of one review, oldest first."""
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
    writer = csv.DictWriter(buffer, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # Neutralise spreadsheet formulas in user-influenced cells (CSV injection).
        writer.writerow(
            {k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@" else v) for k, v in row.items()}
        )
    return buffer.getvalue()
