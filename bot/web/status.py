"""The status page: what a review owner wants to see instead of logs.

Server-rendered HTML from the store (no build step, no script needed; it reloads itself every
few seconds): reviews in progress with their ids, progress and a link to each one's audit export;
reviewers with pending work; messages sent; recent decisions and failures. People are shown by
name, with their object id on hover and in a detail line. Open in demo mode; with real credentials
it needs the admin token (``ADMIN_TOKEN``) as a bearer token or as the password of HTTP basic auth
(remind-now, which changes state, only as a bearer token: :mod:`bot.web.admin_auth`).

The page is a list of sections (:data:`SECTIONS`), each an async function from the page's shared
data (:class:`StatusData`) to one HTML fragment; a new block is one more function in that list.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from urllib.parse import urlencode

from aiohttp import web

from bot.admin import ReviewSummary, review_summaries
from bot.graph import DirectoryApi, GraphError, TokenAcquisitionError
from bot.notify.delivery import CARD_KIND
from bot.notify.notifier import FAILED_CARD_RECHECK_S
from bot.notify.views import status_label
from bot.store import AuditEvent, InstanceRecord, ItemRecord, Store
from bot.web.admin_auth import may_change, may_read
from bot.web.keys import CLOCK, DIRECTORY_API, MICROSOFT, SETTINGS, STORE
from bot.web.middleware import expect_handler

__all__ = [
    "NAME_CACHE",
    "SECTIONS",
    "NameCache",
    "StatusData",
    "add_status_page",
    "failed_cards_block",
    "status_routes",
]

log = logging.getLogger(__name__)

status_routes = web.RouteTableDef()

# How many rows the long tables show.
REVIEWERS_SHOWN = 25
DECISIONS_SHOWN = 15


@dataclass
class Names:
    """Display names of the people and apps the page mentions, by Entra object id.

    From what the store already has: the reviewers' conversation references (Teams sends the
    user's name with every activity), the principals of the items under review, and the names
    Graph gave with decisions made elsewhere. An id with no known name is shown as the id.
    """

    by_id: dict[str, str] = field(default_factory=dict)

    def add(self, object_id: object, name: object) -> None:
        if isinstance(object_id, str) and object_id and isinstance(name, str) and name.strip():
            self.by_id.setdefault(object_id, name.strip())

    def add_items(self, items: Iterable[ItemRecord]) -> None:
        for item in items:
            principal = item.data.get("principal")
            if isinstance(principal, Mapping):
                self.add(principal.get("id"), principal.get("displayName"))
            if item.reviewed_by:
                self.add(item.reviewed_by, item.data.get("reviewedByName"))

    def person(self, object_id: str) -> str:
        """The name, with the id on hover; the bare id when no name is known."""
        name = self.by_id.get(object_id)
        if not name:
            return f"<code>{escape(object_id)}</code>"
        return f"<span title='{escape(object_id)}'>{escape(name)}</span>"

    def person_with_id(self, object_id: str) -> str:
        """The name and, in a small detail line, the id."""
        name = self.by_id.get(object_id)
        if not name:
            return f"<code>{escape(object_id)}</code>"
        return f"{escape(name)}<br><small class='id'>{escape(object_id)}</small>"


class NameCache:
    """Names of reviewers the store has none for, looked up in Graph once per process.

    Most reviewers' names come with their Teams activities; one the bot reached only through
    Graph (the app installed for them) has none until they write. The page asks Graph for those
    in one ``$batch`` and remembers the answer (also "unknown"), so a page that reloads every few
    seconds does not ask again. A failed look-up leaves the ids shown and is tried next time.
    """

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    async def fill(self, names: Names, object_ids: Iterable[str], directory: DirectoryApi) -> None:
        missing = [oid for oid in object_ids if oid not in names.by_id and oid not in self._names]
        if missing:
            try:
                users = await directory.get_users(missing)
            except (GraphError, TokenAcquisitionError) as exc:
                log.debug("reviewer names not looked up: %s", exc)
                users = {}
            for oid, user in users.items():
                self._names[oid] = user.display_name if user is not None else ""
        for oid in object_ids:
            names.add(oid, self._names.get(oid))


NAME_CACHE = web.AppKey("status_name_cache", NameCache)


def add_status_page(app: web.Application) -> None:
    """Register the status page and admin routes on ``app``, with the page's name cache."""
    app[NAME_CACHE] = NameCache()
    app.add_routes(status_routes)


@dataclass
class StatusData:
    """What the sections render from: read once per page."""

    now: datetime
    reviews: list[ReviewSummary]
    names: Names
    items: dict[tuple[str, str], ItemRecord]
    review_names: dict[str, str]
    store: Store

    @property
    def pending_items(self) -> int:
        return sum(review.pending for review in self.reviews)

    @property
    def pending_by_reviewer(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for review in self.reviews:
            total.update(review.pending_by_reviewer)
        return total


async def _status_data(request: web.Request) -> StatusData:
    store = request.app[STORE]
    reviews = await review_summaries(store, status="InProgress")
    names = Names()
    items: dict[tuple[str, str], ItemRecord] = {}
    for review in reviews:
        for item in await store.list_items(instance_id=review.instance_id):
            items[(review.instance_id, item.item_id)] = item
    names.add_items(items.values())
    side = request.app.get(MICROSOFT)
    tenant_id = side.tenant_id if side is not None else request.app[SETTINGS].app_tenant_id
    reviewers = sorted({oid for review in reviews for oid in review.pending_by_reviewer})
    if reviewers:
        references = await store.get_conversation_references(
            tenant_id=tenant_id, user_oids=reviewers
        )
        for oid, reference in references.items():
            user = reference.get("user")
            if isinstance(user, Mapping):
                names.add(oid, user.get("name"))
        directory = request.app.get(DIRECTORY_API)
        cache = request.app.get(NAME_CACHE)
        if directory is not None and cache is not None:
            await cache.fill(names, reviewers, directory)
    return StatusData(
        now=request.app[CLOCK].now(),
        reviews=reviews,
        names=names,
        items=items,
        review_names={review.instance_id: review.name for review in reviews},
        store=store,
    )


async def _not_in_progress(store: Store, *, limit: int = 25) -> list[InstanceRecord]:
    """Reviews that are not open for decisions, latest end first (Completing, Applied, …)."""
    others = [i for i in await store.list_instances() if i.status != "InProgress"]
    others.sort(key=lambda i: (i.end_at is None, i.end_at), reverse=True)
    return others[:limit]


def _when(value: datetime | None) -> str:
    return value.strftime("%a %d %b %H:%M UTC") if value else "—"


def audit_link(instance_id: str, fmt: str = "csv") -> str:
    """The admin route that exports one review's audit trail."""
    return "/admin/audit?" + urlencode({"instance": instance_id, "format": fmt})


Section = Callable[[StatusData], Awaitable[str]]


async def _summary_section(data: StatusData) -> str:
    store = data.store
    sent = await store.list_audit(actions=["notified"], limit=100_000)
    queued = await store.count_outbox(status="pending") + await store.count_outbox(
        status="in_flight"
    )
    assignments = sum(data.pending_by_reviewer.values())
    return (
        "<p class='stats'>"
        f"<span id='reviews' title='access review instances in progress'>"
        f"{len(data.reviews)} reviews in progress</span>"
        f"<span id='pending' title='items of those reviews nobody has decided yet'>"
        f"{data.pending_items} items to decide</span>"
        f"<span id='assignments' title='an item with several reviewers counts once for each'>"
        f"{assignments} reviewer assignments open</span>"
        f"<span id='sent' title='review cards the Bot Connector accepted'>"
        f"{len(sent)} review messages sent</span>"
        f"<span id='queued' title='cards and decision writes waiting in the outbox'>"
        f"{queued} messages queued</span>"
        f"<span>updated {_when(data.now)}</span></p>"
    )


async def _reviews_section(data: StatusData) -> str:
    rows = "".join(
        f"<tr><td>{escape(r.name)}<br><small class='id'>instance <code>{escape(r.instance_id)}"
        f"</code> · definition <code>{escape(r.definition_id)}</code></small></td>"
        f"<td>{escape(r.stage) or '—'}</td><td>{_when(r.due)}</td>"
        f"<td><progress max='{max(r.total, 1)}' value='{r.decided}'></progress> "
        f"<span class='count'>{r.decided} of {r.total} items decided</span></td>"
        f"<td>{r.reviewers_pending}</td>"
        f"<td><a href='{escape(audit_link(r.instance_id))}'>CSV</a> · "
        f"<a href='{escape(audit_link(r.instance_id, 'json'))}'>JSON</a></td></tr>"
        for r in data.reviews
    )
    return (
        "<h2>Reviews in progress</h2>"
        "<table id='review-table'><tr><th>Review</th><th>Stage</th><th>Due</th>"
        "<th>Items decided</th><th>Reviewers with items left</th><th>Audit trail</th></tr>"
        f"{rows or '<tr><td colspan=6>No review in progress.</td></tr>'}</table>"
    )


async def _other_reviews_section(data: StatusData) -> str:
    """Reviews not open for decisions (Completing, Completed, Applied, …), latest end first."""
    others = await _not_in_progress(data.store)
    if not others:
        return ""
    rows = "".join(
        f"<tr><td>{escape(i.display_name)}<br><small class='id'>instance "
        f"<code>{escape(i.instance_id)}</code></small></td><td>{_when(i.end_at)}</td>"
        f"<td class='status'>{escape(status_label(i.status))}</td>"
        f"<td><a href='{escape(audit_link(i.instance_id))}'>CSV</a></td></tr>"
        for i in others
    )
    return (
        '<h2>Other reviews</h2><table id="other-reviews"><tr><th>Review</th><th>Ends</th>'
        f"<th>Status</th><th>Audit trail</th></tr>{rows}</table>"
    )


async def _reviewers_section(data: StatusData) -> str:
    rows = "".join(
        f"<tr><td>{data.names.person_with_id(oid)}</td><td>{count}</td></tr>"
        for oid, count in data.pending_by_reviewer.most_common(REVIEWERS_SHOWN)
    )
    return (
        "<h2>Reviewers with pending work</h2>"
        "<table id='reviewers'><tr><th>Reviewer</th><th>Items left to decide "
        "(over all their reviews)</th></tr>"
        f"{rows or '<tr><td colspan=2>Nobody has pending work.</td></tr>'}</table>"
    )


def _item_label(data: StatusData, event: AuditEvent) -> str:
    if not event.item_id:
        return "—"
    item = data.items.get((event.instance_id or "", event.item_id))
    principal = item.data.get("principal") if item is not None else None
    name = principal.get("displayName") if isinstance(principal, Mapping) else None
    if not name:
        return f"<code>{escape(event.item_id)}</code>"
    return f"<span title='item {escape(event.item_id)}'>{escape(str(name))}</span>"


async def _decisions_section(data: StatusData) -> str:
    events = await data.store.list_audit(
        actions=["decision", "item_decided_elsewhere"], newest_first=True, limit=DECISIONS_SHOWN
    )
    for event in events:
        if event.item_id and (event.instance_id or "", event.item_id) not in data.items:
            item = await data.store.get_item(
                instance_id=event.instance_id or "", item_id=event.item_id
            )
            if item is not None:
                data.items[(item.instance_id, item.item_id)] = item
                data.names.add_items([item])
        data.names.add(event.actor, event.detail.get("by"))
    rows = "".join(_decision_row(data, event) for event in events)
    return (
        "<h2>Recent decisions</h2>"
        "<table id='decisions'><tr><th>When</th><th>Who</th><th>Decision</th>"
        "<th>About</th><th>Review</th><th>Result</th></tr>"
        f"{rows or '<tr><td colspan=6>No decision yet.</td></tr>'}</table>"
    )


def _decision_row(data: StatusData, event: AuditEvent) -> str:
    what = escape(str(event.detail.get("decision") or event.result))
    review = data.review_names.get(event.instance_id or "", event.instance_id or "")
    return (
        f"<tr><td>{_when(event.at)}</td><td>{data.names.person(event.actor)}</td>"
        f"<td class='decision-{what.lower()}'>{what}</td><td>{_item_label(data, event)}</td>"
        f"<td>{escape(review)}</td><td>{escape(event.result)}</td></tr>"
    )


async def _failures_section(data: StatusData) -> str:
    return await failed_cards_block(data.store, person=data.names.person)


SECTIONS: list[Section] = [
    _summary_section,
    _reviews_section,
    _other_reviews_section,
    _reviewers_section,
    _decisions_section,
    _failures_section,
]
"""The page's blocks, top to bottom."""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222} h1{font-size:1.4rem}
table{border-collapse:collapse;margin-bottom:1.5rem;min-width:40rem}
td,th{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:left;vertical-align:top}
progress{width:12rem} .stats span{margin-right:2rem} .decision-deny{color:#a4262c}
.decision-approve{color:#107c10} small.id{color:#555} code{font-size:.85em}
"""


@status_routes.get("/", expect_handler=expect_handler)
async def status_page(request: web.Request) -> web.StreamResponse:
    if not may_read(request):
        return web.Response(
            status=401,
            text="Status page: admin token required.",
            headers={"WWW-Authenticate": 'Basic realm="Access Review Bot"'},
        )
    data = await _status_data(request)
    body = "\n".join([await section(data) for section in SECTIONS])
    html = (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='5'>"
        "<title>Access Review Bot — status</title>"
        f"<style>{_STYLE}</style></head><body>\n<h1>Access Review Bot</h1>\n"
        f"{body}\n</body></html>"
    )
    return web.Response(text=html, content_type="text/html")


# -- cards not delivered: a block of its own (its own query and markup), placed by the page ---
FAILED_CARDS_SHOWN = 25


async def failed_cards_block(
    store: Store,
    *,
    person: Callable[[str], str] | None = None,
    limit: int = FAILED_CARDS_SHOWN,
) -> str:
    """The cards that failed for good: who, which review, why, when (empty if there are none).

    Only permanent answers fail a card (blocked, app not installed or not in the catalog, the
    chat gone twice, …: see bot.notify.delivery); discovery queues a failed first card again.
    ``person`` renders a reviewer's object id as HTML (a name, say); default: the bare id.
    """
    show = person or (lambda object_id: f"<code>{escape(object_id)}</code>")
    failed = await store.list_outbox(status="failed", kinds=[CARD_KIND], limit=limit)
    if not failed:
        return ""
    names: dict[str, str] = {}
    for instance_id in {str(m.payload.get("instanceId") or "") for m in failed} - {""}:
        instance = await store.get_instance(instance_id=instance_id)
        names[instance_id] = instance.display_name if instance is not None else instance_id
    rows = []
    for message in failed:
        result = message.result or {}
        instance_id = str(message.payload.get("instanceId") or "")
        failed_at = _parse_when(result.get("failedAt")) or message.updated_at
        rows.append(
            "<tr>"
            f"<td>{show(str(message.payload.get('reviewerOid') or ''))}</td>"
            f"<td>{escape(names.get(instance_id, '—'))}</td>"
            f"<td>{escape(str(message.payload.get('card') or 'review'))}</td>"
            f"<td>{escape(str(result.get('reason') or 'failed'))}"
            f"<br><small>{escape((message.last_error or '')[:160])}</small></td>"
            f"<td>{_when(failed_at)}</td>"
            "</tr>"
        )
    hours = FAILED_CARD_RECHECK_S / 3600
    return (
        '<section id="failed-cards"><h2>Cards not delivered</h2>'
        f"<p>A review card is sent again when the reviewer reinstalls the app, and tried again "
        f"every {hours:g} h while the review runs.</p>"
        "<table><tr><th>Reviewer</th><th>Review</th><th>Card</th><th>Why</th><th>When</th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def _parse_when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@status_routes.post("/admin/remind", expect_handler=expect_handler)
async def admin_remind(request: web.Request) -> web.Response:
    """Remind everyone pending in ``?instance=ID`` (admin token required): once per reviewer within
    the manual-reminder window, in their working hours after any snooze — or at once with
    ``&now=true``. 202 when something was queued, 200 when everyone had been reminded already."""
    from bot.admin import remind_now, valid_instance_id
    from bot.web.keys import MICROSOFT, OUTBOX, REMINDERS

    refused = may_change(request)
    if refused is not None:
        return refused.response()
    instance_id = request.query.get("instance", "")
    if not valid_instance_id(instance_id):
        return web.json_response({"error": "name the review: ?instance=ID"}, status=400)
    now_flag = request.query.get("now", "false").strip().lower()
    if now_flag not in ("true", "false", "1", "0", "yes", "no"):
        return web.json_response({"error": "now must be true or false"}, status=400)
    # Who the audit names: the admin, or the command line asking the running demo for them.
    by = request.query.get("by", "admin")
    if by not in ("admin", "cli"):
        return web.json_response({"error": "by must be admin or cli"}, status=400)
    side = request.app.get(MICROSOFT)
    tenant_id = side.tenant_id if side is not None else request.app[SETTINGS].app_tenant_id
    scheduler, outbox = request.app.get(REMINDERS), request.app.get(OUTBOX)

    def wake() -> None:
        if scheduler is not None:
            scheduler.wake()
        if outbox is not None:
            outbox.wake()

    try:
        result = await remind_now(
            request.app[STORE],
            clock=request.app[CLOCK],
            tenant_id=tenant_id,
            instance_id=instance_id,
            by=by,
            now=now_flag in ("true", "1", "yes"),
            window_h=request.app[SETTINGS].manual_reminder_window_h,
            wake=wake,
        )
    except LookupError as exc:
        return web.json_response({"error": str(exc)}, status=404)
    return web.json_response(result.as_json(), status=202 if result.queued else 200)


@status_routes.get("/admin/audit", expect_handler=expect_handler)
async def admin_audit(request: web.Request) -> web.Response:
    """The audit trail of ``?instance=ID`` as ``?format=csv`` (default) or ``json``."""
    from bot.admin import UnknownInstance, export_audit, valid_instance_id

    if not may_read(request):
        return web.json_response({"error": "admin token required"}, status=401)
    instance_id = request.query.get("instance", "")
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "json"):
        return web.json_response({"error": "format must be csv or json"}, status=400)
    # The id goes into the file name of Content-Disposition: only an id's shape is let through.
    if not valid_instance_id(instance_id):
        return web.json_response(
            {"error": "instance must be a review instance id (letters, digits, '-', '_', '.')"},
            status=400,
        )
    try:
        text = await export_audit(
            request.app[STORE], instance_id=instance_id, fmt="json" if fmt == "json" else "csv"
        )
    except UnknownInstance as exc:
        return web.json_response({"error": str(exc)}, status=404)
    return web.Response(
        text=text,
        content_type="application/json" if fmt == "json" else "text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{instance_id}.{fmt}"'},
    )
