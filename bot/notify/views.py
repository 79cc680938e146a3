"""Store records → card view models. The cards show what the store knows, nothing else."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.store import InstanceRecord, ItemRecord, Store
from cards import (
    CardContext,
    Decision,
    DefaultDecision,
    EarlierDecisionView,
    EscalationCardView,
    ItemState,
    ItemView,
    MessageKey,
    Notice,
    PendingListView,
    PendingReviewView,
    PrincipalKind,
    PrincipalView,
    Recommendation,
    RecommendationReason,
    ReviewCardView,
    ReviewStatus,
    StageView,
    UserType,
)
from cards.strings import S, Strings

__all__ = [
    "ReviewerContext",
    "build_review_card_view",
    "card_status",
    "context_from_reference",
    "escalation_view",
    "parse_sign_in",
    "pending_list_view",
    "review_card_view",
    "reviewer_context",
    "status_label",
]

_DECISIONS = {d.value: d for d in Decision}
_RECOMMENDATIONS = {r.value: r for r in Recommendation}
_GRAPH_SIGN_IN = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) ([AP]M) ([+-]\d{2}):(\d{2})$"
)
# Recommendations look back 30 days by default (Graph's recommendationLookBackDuration).
_LOOK_BACK = timedelta(days=30)
# Graph's instance statuses (bot.graph.models.ReviewStatus) as the cards and status page say them.
_CARD_STATUS = {
    "InProgress": ReviewStatus.IN_PROGRESS,
    "NotStarted": ReviewStatus.NOT_STARTED,
    "Initializing": ReviewStatus.STARTING,
    "Starting": ReviewStatus.STARTING,
    "Completing": ReviewStatus.COMPLETING,
    "Completed": ReviewStatus.ENDED,
    "AutoReviewing": ReviewStatus.AUTO_REVIEWING,
    "AutoReviewed": ReviewStatus.AUTO_REVIEWED,
    "Applying": ReviewStatus.APPLYING,
    "Applied": ReviewStatus.APPLIED,
    "Deleted": ReviewStatus.ENDED,
}
_STATUS_LABEL = {
    "NotStarted": S.STATUS_NOT_STARTED,
    "Initializing": S.STATUS_STARTING,
    "Starting": S.STATUS_STARTING,
    "InProgress": S.STATUS_IN_PROGRESS,
    "Completing": S.STATUS_COMPLETING,
    "Completed": S.STATUS_COMPLETED,
    "AutoReviewing": S.STATUS_AUTO_REVIEWING,
    "AutoReviewed": S.STATUS_AUTO_REVIEWED,
    "Applying": S.STATUS_APPLYING,
    "Applied": S.STATUS_APPLIED,
    "Deleted": S.STATUS_DELETED,
}


def card_status(graph_status: str, *, past_end: bool = False) -> ReviewStatus:
    """What the card says for an instance in ``graph_status`` (past its end date while Graph
    still said ``InProgress``: ended). A status nobody documented is "not open for decisions"."""
    status = _CARD_STATUS.get(graph_status, ReviewStatus.NOT_OPEN)
    if status is ReviewStatus.IN_PROGRESS and past_end:
        return ReviewStatus.ENDED
    return status


def status_label(graph_status: str, *, locale: str = "en") -> str:
    """A short label for an instance status ("Completing — no more decisions", "Applied")."""
    strings = Strings(locale)
    key = _STATUS_LABEL.get(graph_status)
    if key is None:
        return strings.text(S.STATUS_NOT_OPEN, status=graph_status[:40] or "?")
    return strings.text(key)


def parse_sign_in(value: Any) -> datetime | None:
    """Graph's ``lastUserSignInDateTime`` ("2/11/2022 5:31:37 PM +00:00") or ISO 8601."""
    if not isinstance(value, str) or not value:
        return None
    if match := _GRAPH_SIGN_IN.match(value.strip()):
        month, day, year, hour, minute, second, half, off_h, off_m = match.groups()
        hour_24 = int(hour) % 12 + (12 if half == "PM" else 0)
        offset = timedelta(hours=int(off_h), minutes=int(off_m) * (1 if off_h[0] == "+" else -1))
        local = datetime(int(year), int(month), int(day), hour_24, int(minute), int(second))
        return (local - offset).replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ReviewerContext:
    """Who views a card: Entra object id, Teams id (for refresh), time zone, locale.

    The locale and zone are chosen by :mod:`bot.notify.language` (the client's in a turn, the
    person's own or the tenant default otherwise); the defaults here are for callers that show
    nothing dated or worded (a count, a list of ids).
    """

    def __init__(
        self, *, reviewer_oid: str, teams_user_id: str, time_zone: str = "UTC", locale: str = "en"
    ) -> None:
        self.reviewer_oid = reviewer_oid
        self.teams_user_id = teams_user_id
        self.time_zone = time_zone
        self.locale = locale

    def card_context(self, now: datetime) -> CardContext:
        return CardContext(
            user_id=self.teams_user_id, now=now, time_zone=self.time_zone, locale=self.locale
        )


async def reviewer_context(
    store: Store, *, tenant_id: str, reviewer_oid: str, locale: str = "en", time_zone: str = "UTC"
) -> ReviewerContext:
    """The Teams id from the stored conversation reference, else the Entra id form Teams accepts."""
    reference = await store.get_conversation_reference(tenant_id=tenant_id, user_oid=reviewer_oid)
    return context_from_reference(
        reference, reviewer_oid=reviewer_oid, locale=locale, time_zone=time_zone
    )


def context_from_reference(
    reference: Mapping[str, Any] | None,
    *,
    reviewer_oid: str,
    locale: str = "en",
    time_zone: str = "UTC",
) -> ReviewerContext:
    """:func:`reviewer_context` from a reference already read."""
    user = reference.get("user") if reference else None
    teams_id = str(user.get("id")) if isinstance(user, Mapping) and user.get("id") else ""
    return ReviewerContext(
        reviewer_oid=reviewer_oid,
        teams_user_id=teams_id or f"8:orgid:{reviewer_oid}",
        time_zone=time_zone,
        locale=locale,
    )


def _default_decision(settings: Mapping[str, Any]) -> DefaultDecision:
    if not settings.get("defaultDecisionEnabled"):
        return DefaultDecision.NONE
    value = str(settings.get("defaultDecision") or "")
    return {d.value.lower(): d for d in DefaultDecision}.get(value.lower(), DefaultDecision.NONE)


def _reason(
    recommendation: Recommendation,
    last_sign_in: datetime | None,
    now: datetime,
    *,
    never_signed_in: bool = True,
) -> RecommendationReason | None:
    if recommendation is Recommendation.NO_INFO:
        return None
    if last_sign_in is None:
        # "Never signed in" only when Graph said so ("" or null), not when it said nothing usable.
        return (
            RecommendationReason.NEVER_SIGNED_IN
            if recommendation is Recommendation.DENY and never_signed_in
            else None
        )
    if now - last_sign_in > _LOOK_BACK:
        return RecommendationReason.NO_RECENT_SIGN_IN
    return RecommendationReason.RECENT_SIGN_IN


def _principal(data: Mapping[str, Any]) -> PrincipalView:
    principal = data.get("principal") if isinstance(data.get("principal"), Mapping) else {}
    assert isinstance(principal, Mapping)
    is_sp = str(principal.get("type") or "").lower() == "serviceprincipal"
    return PrincipalView(
        display_name=str(principal.get("displayName") or principal.get("id") or "?"),
        kind=PrincipalKind.SERVICE_PRINCIPAL if is_sp else PrincipalKind.USER,
        # A guest's real address rather than its #EXT# user principal name.
        user_principal_name=str(
            principal.get("address") or principal.get("userPrincipalName") or ""
        )
        or None,
        app_id=str(principal.get("appId") or "") or None,
        user_type=None
        if is_sp
        else (UserType.GUEST if principal.get("isGuest") else UserType.MEMBER),
    )


def item_view(item: ItemRecord, *, viewer_oid: str, now: datetime, share_earlier: bool) -> ItemView:
    """One stored item as the viewer should see it."""
    data = item.data
    resource = data.get("resource") if isinstance(data.get("resource"), Mapping) else {}
    assert isinstance(resource, Mapping)
    recommendation = _RECOMMENDATIONS.get(item.recommendation, Recommendation.NO_INFO)
    last_sign_in = parse_sign_in(data.get("lastSignIn"))
    saving = data.get("saving")
    failed = data.get("writeError")
    state = ItemState.PENDING
    decision: Decision | None = None
    if item.decision in _DECISIONS:
        state, decision = ItemState.DECIDED, _DECISIONS[item.decision]
    elif isinstance(saving, str) and saving in _DECISIONS:
        state, decision = ItemState.SAVING, _DECISIONS[saving]
    elif failed:
        state = ItemState.FAILED
    earlier: tuple[EarlierDecisionView, ...] = ()
    if share_earlier:
        earlier = tuple(
            EarlierDecisionView(
                stage_number=n,
                decision=_DECISIONS.get(str(stage.get("decision"))),
                decided_by=str(stage.get("reviewedByName") or "") or None,
                justification=str(stage.get("justification") or "") or None,
            )
            for n, stage in enumerate(data.get("earlierStages") or [], start=1)
            if isinstance(stage, Mapping)
        )
    return ItemView(
        item_id=item.item_id,
        principal=_principal(data),
        resource_name=str(resource.get("displayName") or "") or None,
        recommendation=recommendation,
        recommendation_reason=_reason(
            recommendation,
            last_sign_in,
            now,
            never_signed_in=bool(data.get("neverSignedIn", True)),
        ),
        last_sign_in=last_sign_in,
        state=state,
        decision=decision,
        decided_by=str(data.get("reviewedByName") or "") or None
        if state is ItemState.DECIDED
        else None,
        decided_by_viewer=state is ItemState.DECIDED and item.reviewed_by == viewer_oid,
        decided_at=item.reviewed_at if state is ItemState.DECIDED else None,
        justification=item.justification if state is ItemState.DECIDED else None,
        error=MessageKey.DECISION_FAILED if state is ItemState.FAILED else None,
        stage_id=item.stage_id,
        earlier_decisions=earlier,
    )


class _ItemViews:
    """Item views already made, per record object, viewer and whether earlier stages show.

    The store hands out one record object per stored content (``SqlStore._cached_item``), so
    the views of a card's unchanged items are made once rather than on every click. A record
    is frozen and its ``data`` read-only by contract, and the entry holds the record, so its id
    names it for as long as the entry lives. The only input besides these is the clock, read
    by a sign-in reason (recent or not, by the look-back window); a kept view whose reason the
    clock has changed since is made again. Bounded: cleared when full.
    """

    MAX_ENTRIES = 20_000

    def __init__(self) -> None:
        self._views: dict[tuple[int, str, bool], tuple[ItemRecord, ItemView]] = {}

    def view(
        self, item: ItemRecord, *, viewer_oid: str, now: datetime, share_earlier: bool
    ) -> ItemView:
        key = (id(item), viewer_oid, share_earlier)
        found = self._views.get(key)
        if found is not None and found[0] is item:
            view = found[1]
            if view.last_sign_in is None or view.recommendation_reason not in _CLOCK_REASONS:
                return view
            recent = now - view.last_sign_in <= _LOOK_BACK
            if recent is (view.recommendation_reason is RecommendationReason.RECENT_SIGN_IN):
                return view
        view = item_view(item, viewer_oid=viewer_oid, now=now, share_earlier=share_earlier)
        if len(self._views) >= self.MAX_ENTRIES:
            self._views.clear()
        self._views[key] = (item, view)
        return view


_CLOCK_REASONS = frozenset(
    {RecommendationReason.RECENT_SIGN_IN, RecommendationReason.NO_RECENT_SIGN_IN}
)
_ITEM_VIEWS = _ItemViews()


def _stage(instance: InstanceRecord) -> StageView | None:
    if not instance.stage_id or not instance.data.get("multiStage"):
        return None
    count = int(instance.data.get("stageCount") or 1)
    try:
        number = int(instance.stage_id)
    except ValueError:
        number = 1
    return StageView(stage_id=instance.stage_id, number=min(max(number, 1), count), count=count)


async def review_card_view(
    store: Store,
    *,
    viewer: ReviewerContext,
    instance_id: str,
    now: datetime,
    page: int = 0,
    notice: Notice | None = None,
) -> ReviewCardView | None:
    """The review card of ``viewer`` for ``instance_id``, or None if they have nothing in it."""
    instance = await store.get_instance(instance_id=instance_id)
    if instance is None:
        return None
    rows = await store.list_assignments(instance_id=instance_id, reviewer_oid=viewer.reviewer_oid)
    if not rows:
        return None
    items = await store.list_items(instance_id=instance_id, item_ids=[i for _r, _inst, i in rows])
    return build_review_card_view(instance, items, viewer=viewer, now=now, page=page, notice=notice)


def build_review_card_view(
    instance: InstanceRecord,
    items: Sequence[ItemRecord],
    *,
    viewer: ReviewerContext,
    now: datetime,
    page: int = 0,
    notice: Notice | None = None,
) -> ReviewCardView | None:
    """:func:`review_card_view` from records already read: the viewer's ``items`` of
    ``instance`` (None if there are none)."""
    if not items:
        return None
    instance_id = instance.instance_id
    settings = (
        instance.data.get("settings") if isinstance(instance.data.get("settings"), Mapping) else {}
    )
    assert isinstance(settings, Mapping)
    share_earlier = bool(settings.get("decisionHistoriesForReviewersEnabled"))
    views = tuple(
        _ITEM_VIEWS.view(item, viewer_oid=viewer.reviewer_oid, now=now, share_earlier=share_earlier)
        for item in sorted(
            items,
            key=lambda i: (str(i.data.get("principal", {}).get("displayName", "")), i.item_id),
        )
    )
    status = card_status(
        instance.status, past_end=instance.end_at is not None and instance.end_at <= now
    )
    return ReviewCardView(
        context=viewer.card_context(now),
        instance_id=instance_id,
        review_name=instance.display_name,
        due=instance.end_at or now,
        items=views,
        instructions=str(instance.data.get("descriptionForReviewers") or "") or None,
        status=status,
        justification_required=bool(settings.get("justificationRequiredOnApproval")),
        default_decision=_default_decision(settings),
        auto_apply=bool(settings.get("autoApplyDecisionsEnabled")),
        stage=_stage(instance),
        page=page,
        notice=notice,
    )


async def pending_list_view(
    store: Store, *, viewer: ReviewerContext, now: datetime
) -> PendingListView:
    """The viewer's in-progress reviews with counts."""
    by_instance: dict[str, list[str]] = {}
    for _reviewer, instance_id, item_id in await store.list_assignments(
        reviewer_oid=viewer.reviewer_oid
    ):
        by_instance.setdefault(instance_id, []).append(item_id)
    reviews: list[PendingReviewView] = []
    for instance_id, item_ids in sorted(by_instance.items()):
        instance = await store.get_instance(instance_id=instance_id)
        if instance is None or instance.status != "InProgress":
            continue
        items = await store.list_items(instance_id=instance_id, item_ids=item_ids)
        pending = sum(1 for i in items if i.decision == "NotReviewed")
        if pending == 0:
            continue
        reviews.append(
            PendingReviewView(
                instance_id=instance_id,
                review_name=instance.display_name,
                pending_count=pending,
                total_count=len(items),
                due=instance.end_at or now,
            )
        )
    reviews.sort(key=lambda r: r.due)
    return PendingListView(context=viewer.card_context(now), reviews=tuple(reviews))


async def escalation_view(
    store: Store,
    *,
    viewer: ReviewerContext,
    instance_id: str,
    subject_oid: str,
    subject_name: str = "",
    now: datetime,
    nudged_at: datetime | None = None,
) -> EscalationCardView | None:
    """The manager's card about one reviewer's pending work in one review (None if unknown)."""
    instance = await store.get_instance(instance_id=instance_id)
    if instance is None or not subject_oid:
        return None
    if not subject_name:
        sent = await store.get_sent_message(
            reviewer_oid=viewer.reviewer_oid, instance_id=instance_id, kind="escalation"
        )
        subjects = sent.data.get("subjects") if sent else None
        subject_name = str(subjects.get(subject_oid) or "") if isinstance(subjects, Mapping) else ""
    rows = await store.list_assignments(instance_id=instance_id, reviewer_oid=subject_oid)
    items = await store.list_items(instance_id=instance_id, item_ids=[i for _r, _n, i in rows])
    return EscalationCardView(
        context=viewer.card_context(now),
        instance_id=instance_id,
        review_name=instance.display_name,
        reviewer_id=subject_oid,
        # Without a name the card says "a reviewer" in the manager's language.
        reviewer_name=subject_name,
        pending_count=sum(1 for i in items if i.decision == "NotReviewed"),
        total_count=len(items),
        due=instance.end_at or now,
        nudged_at=nudged_at,
    )
