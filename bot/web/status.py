"""The status page: what a review owner wants to see instead of logs.

Server-rendered HTML from the store (no build step, no script needed; it reloads itself every
few seconds): reviews in progress with progress bars, reviewers with pending work, messages sent,
recent decisions and failures. Open in demo mode; with real credentials it needs the admin token
(``ADMIN_TOKEN``) as a bearer token or as the password of HTTP basic auth.
"""

from __future__ import annotations

import hmac
from base64 import b64decode
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from html import escape

from aiohttp import web

from bot.notify.views import status_label
from bot.store import AuditEvent, InstanceRecord, Store
from bot.web.keys import CLOCK, SETTINGS, STORE

__all__ = ["status_routes"]

status_routes = web.RouteTableDef()


@dataclass(frozen=True)
class ReviewRow:
    instance_id: str
    name: str
    due: datetime | None
    decided: int
    total: int
    reviewers_pending: int


def _authorized(request: web.Request) -> bool:
    settings = request.app[SETTINGS]
    if settings.demo_mode:
        return True
    token = settings.admin_token
    if not token:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(value.strip().encode(), token.encode())
    if scheme.lower() == "basic":
        try:
            _user, _, password = b64decode(value.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password.encode(), token.encode())
    return False


async def _reviews(store: Store) -> tuple[list[ReviewRow], Counter[str]]:
    rows: list[ReviewRow] = []
    pending_by_reviewer: Counter[str] = Counter()
    for instance in await store.list_instances(status="InProgress"):
        items = {i.item_id: i for i in await store.list_items(instance_id=instance.instance_id)}
        decided = sum(1 for i in items.values() if i.decision not in ("NotReviewed", "Removed"))
        total = sum(1 for i in items.values() if i.decision != "Removed")
        pending_reviewers: set[str] = set()
        by_reviewer: defaultdict[str, int] = defaultdict(int)
        for reviewer, _instance, item_id in await store.list_assignments(
            instance_id=instance.instance_id
        ):
            item = items.get(item_id)
            if item is not None and item.decision == "NotReviewed":
                by_reviewer[reviewer] += 1
                pending_reviewers.add(reviewer)
        pending_by_reviewer.update(by_reviewer)
        rows.append(
            ReviewRow(
                instance_id=instance.instance_id,
                name=instance.display_name,
                due=instance.end_at,
                decided=decided,
                total=total,
                reviewers_pending=len(pending_reviewers),
            )
        )
    rows.sort(key=lambda r: (r.due is None, r.due))
    return rows, pending_by_reviewer


async def _not_in_progress(store: Store, *, limit: int = 25) -> list[InstanceRecord]:
    """Reviews that are not open for decisions, latest end first (Completing, Applied, …)."""
    others = [i for i in await store.list_instances() if i.status != "InProgress"]
    others.sort(key=lambda i: (i.end_at is None, i.end_at), reverse=True)
    return others[:limit]


def _when(value: datetime | None) -> str:
    return value.strftime("%a %d %b %H:%M UTC") if value else "—"


def _event_line(event: AuditEvent) -> str:
    detail = event.detail
    what = escape(str(detail.get("decision") or event.result))
    who = escape(event.actor)
    item = escape(event.item_id or "")
    return (
        f"<tr><td>{_when(event.at)}</td><td>{who}</td><td class='decision-{what.lower()}'>{what}"
        f"</td><td><code>{item}</code></td><td>{escape(event.result)}</td></tr>"
    )


@status_routes.get("/")
async def status_page(request: web.Request) -> web.StreamResponse:
    if not _authorized(request):
        return web.Response(
            status=401,
            text="Status page: admin token required.",
            headers={"WWW-Authenticate": 'Basic realm="Access Review Bot"'},
        )
    store = request.app[STORE]
    now = request.app[CLOCK].now()
    reviews, pending_by_reviewer = await _reviews(store)
    others = await _not_in_progress(store)
    sent = await store.list_audit(actions=["notified"], limit=100_000)
    failed = await store.list_audit(actions=["notify_failed"], newest_first=True, limit=10)
    decisions = await store.list_audit(
        actions=["decision", "item_decided_elsewhere"], newest_first=True, limit=15
    )
    queued = await store.count_outbox(status="pending") + await store.count_outbox(
        status="in_flight"
    )

    review_rows = (
        "".join(
            f"<tr><td>{escape(r.name)}</td><td>{_when(r.due)}</td>"
            f"<td><progress max='{max(r.total, 1)}' value='{r.decided}'></progress> "
            f"<span class='count'>{r.decided} of {r.total} decided</span></td>"
            f"<td>{r.reviewers_pending}</td></tr>"
            for r in reviews
        )
        or "<tr><td colspan='4'>No review in progress.</td></tr>"
    )
    other_rows = "".join(
        f"<tr><td>{escape(i.display_name)}</td><td>{_when(i.end_at)}</td>"
        f"<td class='status'>{escape(status_label(i.status))}</td></tr>"
        for i in others
    )
    reviewer_rows = (
        "".join(
            f"<tr><td><code>{escape(oid)}</code></td><td>{count}</td></tr>"
            for oid, count in pending_by_reviewer.most_common(25)
        )
        or "<tr><td colspan='2'>Nobody has pending work.</td></tr>"
    )
    decision_rows = (
        "".join(_event_line(e) for e in decisions)
        or "<tr><td colspan='5'>No decision yet.</td></tr>"
    )
    failure_rows = "".join(
        f"<li>{_when(e.at)} — <code>{escape(str(e.detail.get('recipient', '')))}</code>: "
        f"{escape(str(e.detail.get('error', ''))[:160])}</li>"
        for e in failed
    )
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>Access Review Bot — status</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}} h1{{font-size:1.4rem}}
table{{border-collapse:collapse;margin-bottom:1.5rem;min-width:40rem}}
td,th{{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:left}}
progress{{width:12rem}} .stats span{{margin-right:2rem}} .decision-deny{{color:#a4262c}}
.decision-approve{{color:#107c10}}
</style></head><body>
<h1>Access Review Bot</h1>
<p class="stats"><span id="reviews">{len(reviews)} reviews in progress</span>
<span id="pending">{sum(pending_by_reviewer.values())} decisions pending</span>
<span id="sent">{len(sent)} review messages sent</span>
<span id="queued">{queued} messages queued</span>
<span>updated {_when(now)}</span></p>
<h2>Reviews in progress</h2>
<table id="review-table"><tr><th>Review</th><th>Due</th><th>Progress</th><th>Reviewers with work</th></tr>
{review_rows}</table>
{
        '<h2>Other reviews</h2><table id="other-reviews"><tr><th>Review</th><th>Ends</th>'
        + "<th>Status</th></tr>"
        + other_rows
        + "</table>"
        if other_rows
        else ""
    }
<h2>Reviewers with pending work</h2>
<table><tr><th>Reviewer</th><th>Pending</th></tr>{reviewer_rows}</table>
<h2>Recent decisions</h2>
<table id="decisions"><tr><th>When</th><th>Who</th><th>Decision</th><th>Item</th><th>Result</th></tr>
{decision_rows}</table>
{"<h2>Delivery failures</h2><ul>" + failure_rows + "</ul>" if failure_rows else ""}
</body></html>"""
    return web.Response(text=html, content_type="text/html")


@status_routes.post("/admin/remind")
async def admin_remind(request: web.Request) -> web.Response:
    """Queue a reminder now for everyone pending in ``?instance=ID`` (admin token required)."""
    from bot.admin import remind_now
    from bot.web.keys import MICROSOFT

    if not _authorized(request):
        return web.json_response({"error": "admin token required"}, status=401)
    instance_id = request.query.get("instance", "")
    if not instance_id or len(instance_id) > 64:
        return web.json_response({"error": "name the review: ?instance=ID"}, status=400)
    side = request.app.get(MICROSOFT)
    tenant_id = side.tenant_id if side is not None else request.app[SETTINGS].app_tenant_id
    try:
        reminded = await remind_now(
            request.app[STORE],
            clock=request.app[CLOCK],
            tenant_id=tenant_id,
            instance_id=instance_id,
            by="admin",
        )
    except LookupError as exc:
        return web.json_response({"error": str(exc)}, status=404)
    return web.json_response({"queued": len(reminded)}, status=202)


@status_routes.get("/admin/audit")
async def admin_audit(request: web.Request) -> web.Response:
    """The audit trail of ``?instance=ID`` as ``?format=csv`` (default) or ``json``."""
    from bot.admin import export_audit

    if not _authorized(request):
        return web.json_response({"error": "admin token required"}, status=401)
    instance_id = request.query.get("instance", "")
    fmt = request.query.get("format", "csv")
    if not instance_id or len(instance_id) > 64 or fmt not in ("csv", "json"):
        return web.json_response({"error": "use ?instance=ID&format=csv|json"}, status=400)
    text = await export_audit(
        request.app[STORE], instance_id=instance_id, fmt="json" if fmt == "json" else "csv"
    )
    return web.Response(
        text=text,
        content_type="application/json" if fmt == "json" else "text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{instance_id}.{fmt}"'},
    )
