"""The review card, the reminder card and the accept-recommendations preview.

All three are rendered from a :class:`~cards.models.ReviewCardView`. The review card lists the
viewer's items in the given order and pages them: a page holds at most ``page_size`` items and is
cut earlier when the serialized card would exceed :data:`~cards.layout.CARD_BUDGET_BYTES`, so every
page of every review stays under Teams' limit whatever the names and reasons contain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from microsoft_teams.cards import (
    Action,
    ActionSet,
    ActionStyle,
    CardElement,
    Container,
    OpenUrlAction,
    TextColor,
    TextInput,
    TextWeight,
    ToggleInput,
)

from .actions import (
    BACK_KEY,
    JUSTIFICATION_INPUT_ID,
    JUSTIFICATION_MAX_CHARS,
    SELECT_VALUE_OFF,
    SELECT_VALUE_ON,
    CardKind,
    SnoozeChoice,
    Verb,
    decide_data,
    execute,
    refresh_definition,
    select_input_id,
)
from .layout import (
    CARD_BUDGET_BYTES,
    build_card,
    card_size_bytes,
    dump,
    iter_pages,
    notice_container,
    pack,
    text,
)
from .messages import message_runs
from .models import (
    Decision,
    DefaultDecision,
    EarlierDecisionView,
    ItemState,
    ItemView,
    NoticeKind,
    PrincipalKind,
    Recommendation,
    RecommendationReason,
    ReviewCardView,
    ReviewStatus,
    UserType,
)
from .rich import Run, UserText, join_runs, plain, rich, user_text
from .strings import S, Strings

__all__ = [
    "render_accept_preview_card",
    "render_reminder_card",
    "render_review_card",
    "review_page_count",
]

# Longest text from people kept per field, in characters: at or above what Entra and Graph allow
# for the field (display names 256, UPNs 113, descriptionForReviewers 256, a reason 500 on our
# cards), so real values are shown whole. With ASCII-escaped JSON a character can cost up to 12
# bytes (an emoji), so each field also has a JSON byte bound: a page always holds one item of
# pathological text, and ordinary text (1 to 6 bytes a character) never reaches it.
NAME_MAX_CHARS = 256
UPN_MAX_CHARS = 256
RESOURCE_MAX_CHARS = 256
REVIEW_NAME_MAX_CHARS = 256
INSTRUCTIONS_MAX_CHARS = 512
REASON_MAX_CHARS = 500
NAME_MAX_JSON_BYTES = 1536
REASON_MAX_JSON_BYTES = 3072
EARLIER_REASON_MAX_JSON_BYTES = 1024

# Bytes kept free below the budget when packing, for what the overhead estimate cannot see.
_PACKING_SLACK_BYTES = 256
# How much larger than in the one-page card paging may measure the fixed part (the larger of the
# review and reminder headers, "page n of m", the next-page button: about 0.9 KB measured) and
# each item (longer page numbers in its actions, its separator: a few bytes measured); see
# ``single_page_card``.
_SINGLE_PAGE_MARGIN_BYTES = 2048
_ITEM_MARGIN_BYTES = 64

# Bulk selection is offered when a page has at least this many open items.
_BULK_MIN_OPEN_ITEMS = 2

_DECIDED_TEXT = {
    Decision.APPROVE: S.DECIDED_APPROVE,
    Decision.DENY: S.DECIDED_DENY,
    Decision.DONT_KNOW: S.DECIDED_DONT_KNOW,
}
_DECISION_NAME = {
    Decision.APPROVE: S.DECISION_NAME_APPROVE,
    Decision.DENY: S.DECISION_NAME_DENY,
    Decision.DONT_KNOW: S.DECISION_NAME_DONT_KNOW,
}
_EARLIER_TEXT = {
    Decision.APPROVE: S.EARLIER_APPROVE,
    Decision.DENY: S.EARLIER_DENY,
    Decision.DONT_KNOW: S.EARLIER_DONT_KNOW,
}
_DEFAULT_TEXT = {
    DefaultDecision.NONE: S.DEFAULT_NONE,
    DefaultDecision.APPROVE: S.DEFAULT_APPROVE,
    DefaultDecision.DENY: S.DEFAULT_DENY,
    DefaultDecision.RECOMMENDATION: S.DEFAULT_RECOMMENDATION,
}
# Why a review that is not in progress takes no decisions; and whether it has ended (so what
# happened to undecided items can be said).
_STATUS_TEXT = {
    ReviewStatus.ENDED: S.REVIEW_ENDED,
    ReviewStatus.NOT_STARTED: S.REVIEW_NOT_STARTED,
    ReviewStatus.STARTING: S.REVIEW_STARTING,
    ReviewStatus.COMPLETING: S.REVIEW_COMPLETING,
    ReviewStatus.AUTO_REVIEWING: S.REVIEW_AUTO_REVIEWING,
    ReviewStatus.AUTO_REVIEWED: S.REVIEW_AUTO_REVIEWED,
    ReviewStatus.APPLYING: S.REVIEW_APPLYING,
    ReviewStatus.APPLIED: S.REVIEW_APPLIED,
    ReviewStatus.NOT_OPEN: S.REVIEW_NOT_OPEN,
}
_NOT_YET_STARTED = frozenset({ReviewStatus.NOT_STARTED, ReviewStatus.STARTING})
_OUTCOME_KNOWN = frozenset(
    {ReviewStatus.ENDED, ReviewStatus.AUTO_REVIEWED, ReviewStatus.APPLYING, ReviewStatus.APPLIED}
)
_ENDED_DEFAULT_TEXT = {
    DefaultDecision.NONE: S.ENDED_DEFAULT_NONE,
    DefaultDecision.APPROVE: S.ENDED_DEFAULT_APPROVE,
    DefaultDecision.DENY: S.ENDED_DEFAULT_DENY,
    DefaultDecision.RECOMMENDATION: S.ENDED_DEFAULT_RECOMMENDATION,
}


def render_review_card(view: ReviewCardView, *, reuse: bool = False) -> dict[str, Any]:
    """The review card for ``view`` at page ``view.page`` (clamped to the last page).

    ``reuse``: item blocks rendered before for the same inputs are reused (see
    :class:`_BlockCache`), and those rendered now kept. For a click's answer, where most blocks
    were rendered for the card clicked; not for first cards, where every block is new and
    keeping it would only add its cost (the tests render many views both ways and require the
    same card).
    """
    return _ReviewCard(view, CardKind.REVIEW, reuse=reuse).card()


def render_reminder_card(view: ReviewCardView, *, reuse: bool = False) -> dict[str, Any]:
    """The reminder card: what is left ("6 of 18 left, due tomorrow"), the same actions as the
    review card, and ``snooze`` buttons."""
    return _ReviewCard(view, CardKind.REMINDER, reuse=reuse).card()


class _BlockCache:
    """Rendered item blocks, keyed by everything a block is made from.

    A block is a function of its :class:`ItemView` (immutable: a decided item's view stays the
    same until its record changes, and then the view and so the key differ), the page and bulk
    flag its buttons carry, the card-level facts it reads (language, zone, whether the review is
    in progress, instance id, required reason, the review's resource, the way back), and of the
    clock only through the viewer's local date and the whole days since the item's last sign-in.
    Nothing is invalidated: a changed input is another key. Only pending and decided items are
    kept (a saving or failed item's block is rare and reads more of the clock). The JSON text is
    kept and parsed on every use, so no caller can change another's block. Bounded: cleared
    when full (each entry is a few hundred bytes). Dict operations only, so safe from any
    thread; two renderers of one key store equal text.
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._blocks: dict[tuple[Any, ...], str] = {}

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        text = self._blocks.get(key)
        if text is None:
            return None
        block: dict[str, Any] = json.loads(text)
        return block

    def put(self, key: tuple[Any, ...], block: dict[str, Any]) -> None:
        if len(self._blocks) >= self.MAX_ENTRIES:
            self._blocks.clear()
        self._blocks[key] = json.dumps(block)


_BLOCKS = _BlockCache()


def review_page_count(view: ReviewCardView) -> int:
    """How many pages the review (or reminder) card of ``view`` has."""
    return sum(1 for _ in _ReviewCard(view, CardKind.REVIEW).iter_pages())


def render_accept_preview_card(view: ReviewCardView) -> dict[str, Any]:
    """The preview before accepting recommendations: who would be denied, how many approved.

    Confirm sends ``accept_recommendations``; Cancel sends ``refresh`` and so returns to the review
    card. The card's own refresh also leads back to the review card, as the preview is transient.
    """
    return _AcceptPreview(view).card()


@dataclass(frozen=True, slots=True)
class _Counts:
    total: int
    decided: int
    saving: int
    open: int
    recommend_approve: int
    recommend_deny: int
    no_recommendation: int

    @classmethod
    def of(cls, items: tuple[ItemView, ...]) -> _Counts:
        open_items = [item for item in items if item.is_open]
        return cls(
            total=len(items),
            decided=sum(item.state is ItemState.DECIDED for item in items),
            saving=sum(item.state is ItemState.SAVING for item in items),
            open=len(open_items),
            recommend_approve=sum(
                item.recommendation is Recommendation.APPROVE for item in open_items
            ),
            recommend_deny=sum(item.recommendation is Recommendation.DENY for item in open_items),
            no_recommendation=sum(
                item.recommendation is Recommendation.NO_INFO for item in open_items
            ),
        )


class _Common:
    """What the review card and the preview share: strings, escaping, item facts."""

    def __init__(self, view: ReviewCardView) -> None:
        self.view = view
        self.st = Strings(view.context.locale, view.context.time_zone)
        self.now = view.context.now
        self.counts = _Counts.of(view.items)
        self.in_progress = view.status is ReviewStatus.IN_PROGRESS

    def review_name(self) -> UserText:
        return _name(self.view.review_name, REVIEW_NAME_MAX_CHARS)

    def principal_title(self, item: ItemView) -> list[Run]:
        name = [Run(_name(item.principal.display_name, NAME_MAX_CHARS), bold=True)]
        principal = item.principal
        if principal.kind is PrincipalKind.SERVICE_PRINCIPAL:
            kind: S | None = S.APPLICATION
        elif principal.user_type is UserType.GUEST:
            kind = S.GUEST
        elif principal.user_type is UserType.MEMBER:
            kind = S.MEMBER
        else:
            kind = None
        if kind is None:
            return name
        return join_runs([name, plain(self.st.text(kind))], " · ")

    def principal_details(self, item: ItemView) -> list[Run] | None:
        parts: list[list[Run]] = []
        principal = item.principal
        if principal.kind is PrincipalKind.SERVICE_PRINCIPAL and principal.app_id:
            app_id = _name(principal.app_id, UPN_MAX_CHARS)
            parts.append(self.st.runs(S.APP_ID, app_id=app_id))
        elif principal.user_principal_name:
            parts.append([Run(_name(principal.user_principal_name, UPN_MAX_CHARS))])
        # The item's resource is shown when the review is not about that one resource already.
        if item.resource_name and item.resource_name != self.view.resource_name:
            resource = _name(item.resource_name, RESOURCE_MAX_CHARS)
            parts.append(self.st.runs(S.ON_RESOURCE, resource=resource))
        return join_runs(parts, " · ") or None

    def reason(self, item: ItemView) -> str | None:
        reason = item.recommendation_reason
        if reason is None:
            return None
        if reason is RecommendationReason.NO_RECENT_SIGN_IN and item.last_sign_in is not None:
            days = max((self.now - item.last_sign_in).days, 0)
            return self.st.plural(S.REASON_NO_RECENT_SIGN_IN, days)
        if reason is RecommendationReason.RECENT_SIGN_IN and item.last_sign_in is not None:
            days = max((self.now - item.last_sign_in).days, 0)
            if days == 0:
                return self.st.text(S.REASON_SIGNED_IN_TODAY)
            return self.st.text(S.REASON_RECENT_SIGN_IN, ago=self.st.ago(days))
        if reason is RecommendationReason.NEVER_SIGNED_IN:
            return self.st.text(S.REASON_NEVER_SIGNED_IN)
        if reason is RecommendationReason.PEER_OUTLIER:
            return self.st.text(S.REASON_PEER_OUTLIER)
        if reason is RecommendationReason.ACCOUNT_DISABLED:
            return self.st.text(S.REASON_ACCOUNT_DISABLED)
        # A sign-in reason without a sign-in date has nothing to say.
        return None

    def recommendation_line(self, item: ItemView) -> tuple[str, TextColor | None]:
        if item.recommendation is Recommendation.NO_INFO:
            return self.st.text(S.NO_RECOMMENDATION), None
        deny = item.recommendation is Recommendation.DENY
        recommendation = self.st.text(S.RECOMMEND_DENY if deny else S.RECOMMEND_APPROVE)
        reason = self.reason(item)
        # The default colour, with the recommendation in bold: Teams' "warning" yellow is
        # unreadable on its light theme (1.5:1 on white); see cards.layout.text.
        color: TextColor | None = None
        if reason is None:
            return self.st.text(S.RECOMMENDATION_LINE, recommendation=recommendation), color
        line = self.st.text(
            S.RECOMMENDATION_WITH_REASON, recommendation=recommendation, reason=reason
        )
        return line, color

    def refresh_data(self, page: int) -> dict[str, Any]:
        return self.data(
            {"card": CardKind.REVIEW.value, "instanceId": self.view.instance_id, "page": page}
        )

    def data(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` of an action of this card: it remembers the way back to the pending list."""
        if self.view.back_to_list:
            data[BACK_KEY] = CardKind.PENDING_LIST.value
        return data


class _ReviewCard(_Common):
    def __init__(self, view: ReviewCardView, kind: CardKind, *, reuse: bool = False) -> None:
        super().__init__(view)
        self.kind = kind
        self.reuse = reuse
        self._today = self.st.local(self.now).date()

    def block(self, item: ItemView, page: int, *, bulk: bool) -> dict[str, Any]:
        """:meth:`item_block` as JSON, reused from :data:`_BLOCKS` when it was rendered before."""
        if not self.reuse or item.state not in (ItemState.PENDING, ItemState.DECIDED):
            return dump(self.item_block(item, page, bulk=bulk))
        view = self.view
        # A decided item's block has no buttons: the same on every page, with or without bulk.
        actionable = item.state is ItemState.PENDING
        key = (
            item,
            page if actionable else None,
            bulk if actionable else None,
            view.context.locale,
            view.context.time_zone,
            self.in_progress,
            view.instance_id,
            view.justification_required,
            view.resource_name,
            view.back_to_list,
            self._today,
            None if item.last_sign_in is None else (self.now - item.last_sign_in).days,
        )
        found = _BLOCKS.get(key)
        if found is not None:
            return found
        block = dump(self.item_block(item, page, bulk=bulk))
        _BLOCKS.put(key, block)
        return block

    # Paging ------------------------------------------------------------------------------------

    def iter_pages(self) -> Iterator[range]:
        """The item ranges of the pages, computed lazily from the first page on."""
        items = self.view.items
        # Each item is measured as it would look on the largest page number and with its bulk
        # toggle: an upper bound for its size on whatever page it lands.
        worst_page = len(items)
        sizes = (card_size_bytes(self.block(item, worst_page, bulk=True)) for item in items)
        # The review and the reminder card page identically (a click on a reminder may be answered
        # with the review card at the same page), so the larger fixed part of the two counts.
        overhead = max(
            card_size_bytes(
                _ReviewCard(self.view, kind).assemble(
                    page=worst_page,
                    has_next=True,
                    blocks=[],
                    open_on_page=worst_page,
                    first_index=worst_page,
                    check_size=False,
                )
            )
            for kind in (CardKind.REVIEW, CardKind.REMINDER)
        )
        budget = CARD_BUDGET_BYTES - overhead - _PACKING_SLACK_BYTES
        return iter_pages(sizes, budget_bytes=budget, max_per_page=self.view.page_size)

    def card(self) -> dict[str, Any]:
        single = self.single_page_card()
        if single is not None:
            return single
        # Pages are measured only up to the one asked for: the first pages, the common case, stay
        # cheap however long the review is.
        pages: list[range] = []
        for page_range in self.iter_pages():
            pages.append(page_range)
            if len(pages) > self.view.page:
                break
        page = len(pages) - 1
        current = pages[page]
        page_items = [self.view.items[index] for index in current]
        open_on_page = sum(item.is_open for item in page_items)
        bulk = self.in_progress and open_on_page >= _BULK_MIN_OPEN_ITEMS
        blocks = [self.block(item, page, bulk=bulk) for item in page_items]
        return self.assemble(
            page=page,
            has_next=current.stop < len(self.view.items),
            blocks=blocks,
            open_on_page=open_on_page,
            first_index=current.start,
        )

    def single_page_card(self) -> dict[str, Any] | None:
        """The first page, when paging surely cuts it after ``page_size`` items; else None.

        Paging measures each item as its largest version and the fixed part of both card kinds:
        exact, but three assemblies and two renderings of every item it looks at. When the
        card of the first ``page_size`` items is below the budget by more than those estimates
        can exceed it (:data:`_SINGLE_PAGE_MARGIN_BYTES` plus :data:`_ITEM_MARGIN_BYTES` per
        item), paging would cut page 0 there as well (by count, not by size): this is that card,
        at a third of the cost. It answers for a review that fits on one page whatever page is
        asked (paging clamps to the last one), and for page 0 of a longer one. (Tests render
        many views both ways and require the same card.)
        """
        items = self.view.items
        if len(items) > self.view.page_size and self.view.page != 0:
            return None
        page_items = items[: self.view.page_size]
        open_on_page = sum(item.is_open for item in page_items)
        bulk = self.in_progress and open_on_page >= _BULK_MIN_OPEN_ITEMS
        card = self.assemble(
            page=0,
            has_next=len(items) > len(page_items),
            blocks=[self.block(item, 0, bulk=bulk) for item in page_items],
            open_on_page=open_on_page,
            first_index=0,
            check_size=False,
        )
        margin = _SINGLE_PAGE_MARGIN_BYTES + _ITEM_MARGIN_BYTES * len(page_items)
        if card_size_bytes(card) + margin > CARD_BUDGET_BYTES - _PACKING_SLACK_BYTES:
            return None
        return card

    # Card ------------------------------------------------------------------------------------

    def assemble(
        self,
        *,
        page: int,
        has_next: bool,
        blocks: list[dict[str, Any]],
        open_on_page: int,
        first_index: int,
        check_size: bool = True,
    ) -> dict[str, Any]:
        body: list[CardElement | dict[str, Any]] = [*self.header()]
        body.extend(self.shortcut_blocks(page))
        body.extend(self.justification_blocks(open_on_page))
        body.extend(blocks)
        body.extend(self.footer(page, has_next, open_on_page, first_index, len(blocks)))
        body.extend(self.back_blocks())
        return build_card(
            body=body,
            actions=self.card_actions(),
            refresh=refresh_definition(
                self.view.context.user_id,
                self.data(
                    {"card": self.kind.value, "instanceId": self.view.instance_id, "page": page}
                ),
            ),
            lang=self.st.locale,
            fallback_text=self.st.text(
                S.FALLBACK,
                name=self.review_name(),
                decided=self.counts.decided,
                total=self.counts.total,
            ),
            check_size=check_size,
        )

    def header(self) -> list[CardElement]:
        st, view, counts = self.st, self.view, self.counts
        title_key = S.REMINDER_TITLE if self.kind is CardKind.REMINDER else S.REVIEW_TITLE
        elements: list[CardElement] = [
            rich(st.runs(title_key, name=self.review_name()), size="Medium", weight="Bolder")
        ]
        if view.resource_name:
            resource = _name(view.resource_name, RESOURCE_MAX_CHARS)
            elements.append(
                rich(st.runs(S.REVIEW_RESOURCE, resource=resource), subtle=True, spacing="None")
            )
        elements.append(self.due_block())
        # The reminder's headline already says how many are left.
        if self.kind is not CardKind.REMINDER or not self.in_progress:
            progress = st.text(S.PROGRESS, decided=counts.decided, total=counts.total)
            if counts.saving:
                progress = f"{progress} · {st.plural(S.PROGRESS_SAVING, counts.saving)}"
            elements.append(text(progress, spacing="None"))
        if view.notice is not None:
            notice = view.notice
            message = message_runs(
                st, notice.message, detail=notice.detail, at=notice.at, now=self.now
            )
            elements.append(notice_container(notice.kind, message))
        elements.extend(self.status_blocks())
        if view.instructions and self.in_progress:
            instructions = user_text(
                view.instructions,
                max_chars=INSTRUCTIONS_MAX_CHARS,
                max_json_bytes=REASON_MAX_JSON_BYTES,
            )
            elements.append(rich(st.runs(S.INSTRUCTIONS, text=instructions), size="Small"))
        return elements

    def justification_blocks(self, open_on_page: int) -> list[dict[str, Any]]:
        """The reason input, when the review requires one and this page has something to decide."""
        st, view = self.st, self.view
        if not (view.justification_required and self.in_progress and open_on_page):
            return []
        reason_input = dump(
            TextInput(
                id=JUSTIFICATION_INPUT_ID,
                label=st.text(S.JUSTIFICATION_LABEL),
                placeholder=st.text(S.JUSTIFICATION_PLACEHOLDER),
                error_message=st.text(S.JUSTIFICATION_ERROR),
                is_required=True,
                is_multiline=True,
                max_length=JUSTIFICATION_MAX_CHARS,
            )
        )
        # The model types maxLength as a float (500.0); renderers that read it as an unsigned
        # integer get the integer.
        reason_input["maxLength"] = JUSTIFICATION_MAX_CHARS
        return [reason_input]

    def due_block(self) -> CardElement:
        st, view = self.st, self.view
        if view.status in _NOT_YET_STARTED:
            return text(st.due_line(view.due, self.now))
        if not self.in_progress:
            return text(st.text(S.ENDED_ON, date=st.date(view.due)), weight="Bolder")
        days_left = st.days_between(self.now, view.due)
        # Urgency is bold, not red: see cards.layout.text on colours.
        urgent: TextWeight | None = "Bolder" if days_left <= 1 and self.counts.open else None
        if self.kind is CardKind.REMINDER:
            line = st.text(
                S.REMINDER_LEFT,
                left=self.counts.open,
                total=self.counts.total,
                due=st.due_short(view.due, self.now),
            )
            return text(line, weight="Bolder")
        line = st.due_line(view.due, self.now)
        if view.stage is not None:
            stage = st.text(S.STAGE, number=view.stage.number, count=view.stage.count)
            line = f"{line} · {stage}"
        return text(line, weight=urgent)

    def status_blocks(self) -> list[CardElement]:
        st, view, counts = self.st, self.view, self.counts
        if not self.in_progress:
            lines = [st.text(_STATUS_TEXT.get(view.status, S.REVIEW_NOT_OPEN))]
            if counts.open and view.status in _OUTCOME_KNOWN:
                lines.append(st.text(_ENDED_DEFAULT_TEXT[view.default_decision]))
            return [notice_container(NoticeKind.INFO, plain(st.join_sentences(lines)))]
        if counts.total == 0:
            return [text(st.text(S.NO_ITEMS))]
        if counts.open == 0 and counts.saving == 0:
            return [
                text(st.text(S.ALL_DONE), size="Medium", weight="Bolder"),
                text(st.text(S.ALL_DONE_DETAIL), spacing="None"),
            ]
        policy = [st.text(_DEFAULT_TEXT[view.default_decision])]
        policy.append(st.text(S.AUTO_APPLY_ON if view.auto_apply else S.AUTO_APPLY_OFF))
        # Denying by default and applying automatically removes access from everyone nobody
        # looked at: say so in the warning colour.
        risky = view.default_decision is DefaultDecision.DENY and view.auto_apply
        if risky:
            return [text(st.join_sentences(policy), size="Small", weight="Bolder")]
        return [text(st.join_sentences(policy), size="Small", subtle=True)]

    def footer(
        self, page: int, has_next: bool, open_on_page: int, first_index: int, shown: int
    ) -> list[CardElement]:
        st, view = self.st, self.view
        elements: list[CardElement] = []
        if self.in_progress and open_on_page >= _BULK_MIN_OPEN_ITEMS:
            elements.append(text(st.text(S.BULK_HINT), size="Small", separator=True))
            # The item buttons' words (the hint above says they apply to the selection): a
            # row of three that fits each item in every language fits here too.
            bulk_titles: tuple[tuple[Decision, S, ActionStyle | None], ...] = (
                (Decision.APPROVE, S.APPROVE, "positive"),
                (Decision.DENY, S.DENY, "destructive"),
                (Decision.DONT_KNOW, S.DONT_KNOW, None),
            )
            elements.append(
                ActionSet(
                    actions=[
                        execute(
                            st.text(title),
                            Verb.DECIDE_BULK,
                            self.data(
                                {
                                    "instanceId": view.instance_id,
                                    "decision": decision.value,
                                    "page": page,
                                }
                            ),
                            style=style,
                            uses_inputs=True,
                        )
                        for decision, title, style in bulk_titles
                    ]
                )
            )
        if page > 0 or has_next:
            elements.append(
                text(
                    st.text(
                        S.PAGE_INFO,
                        page=page + 1,
                        first=first_index + 1,
                        last=first_index + shown,
                        total=len(view.items),
                    ),
                    size="Small",
                    subtle=True,
                    separator=True,
                )
            )
            navigation: list[Action] = []
            if page > 0:
                navigation.append(execute(st.text(S.PREVIOUS), Verb.PAGE, self.page_data(page - 1)))
            if has_next:
                navigation.append(execute(st.text(S.NEXT), Verb.PAGE, self.page_data(page + 1)))
            elements.append(ActionSet(actions=navigation))
        return elements

    def page_data(self, page: int) -> dict[str, Any]:
        return self.data(
            {"card": self.kind.value, "instanceId": self.view.instance_id, "page": page}
        )

    def shortcut_blocks(self, page: int) -> list[CardElement]:
        """Accept recommendations, and on a reminder the snooze buttons: each set on a row of its
        own near the top, where their longer titles fit and are seen before the list."""
        st, view, counts = self.st, self.view, self.counts
        blocks: list[CardElement] = []
        if not self.in_progress:
            return blocks
        if self.kind is CardKind.REMINDER and counts.open:
            blocks.append(
                ActionSet(
                    actions=[
                        execute(
                            st.text(title),
                            Verb.SNOOZE,
                            {"instanceId": view.instance_id, "until": choice.value},
                        )
                        for choice, title in (
                            (SnoozeChoice.TOMORROW_0900, S.SNOOZE_TOMORROW),
                            (SnoozeChoice.FOUR_HOURS, S.SNOOZE_4H),
                        )
                    ]
                )
            )
        if counts.recommend_approve + counts.recommend_deny > 0:
            # The counts go in a line of text, which wraps; a button title does not, and its
            # words are longer in most languages than in English.
            blocks.append(
                text(
                    st.text(
                        S.RECOMMENDATION_COUNTS,
                        approve=counts.recommend_approve,
                        deny=counts.recommend_deny,
                    ),
                    size="Small",
                )
            )
            accept = execute(
                st.text(S.ACCEPT_RECOMMENDATIONS),
                Verb.ACCEPT_RECOMMENDATIONS_PREVIEW,
                self.data({"instanceId": view.instance_id, "page": page}),
            )
            blocks.append(ActionSet(actions=[accept], spacing="Small"))
        return blocks

    def back_blocks(self) -> list[CardElement]:
        """ "Back to my reviews", on a row of its own: beside "Open My Access" the two would not
        fit a phone in most languages."""
        if not self.view.back_to_list:
            return []
        back = execute(
            self.st.text(S.BACK_TO_LIST), Verb.REFRESH, {"card": CardKind.PENDING_LIST.value}
        )
        return [ActionSet(actions=[back], separator=True)]

    def card_actions(self) -> list[Action]:
        return [OpenUrlAction(title=self.st.text(S.OPEN_MY_ACCESS), url=self.view.my_access_url)]

    # Items -----------------------------------------------------------------------------------

    def item_block(self, item: ItemView, page: int, *, bulk: bool) -> Container:
        st = self.st
        elements: list[CardElement] = [rich(self.principal_title(item))]
        details = self.principal_details(item)
        if details:
            elements.append(rich(details, size="Small", subtle=True, spacing="None"))
        actionable = item.is_open and self.in_progress
        if actionable or item.state is ItemState.SAVING:
            line, color = self.recommendation_line(item)
            elements.append(text(line, size="Small", color=color, spacing="None"))
            if item.principal.kind is PrincipalKind.USER:
                elements.append(
                    text(self.last_sign_in(item), size="Small", subtle=True, spacing="None")
                )
        elements.extend(self.earlier_blocks(item.earlier_decisions))
        elements.extend(self.state_blocks(item))
        if actionable:
            if bulk:
                elements.append(
                    ToggleInput(
                        id=select_input_id(item.item_id),
                        title=st.text(S.SELECT),
                        value=SELECT_VALUE_OFF,
                        value_on=SELECT_VALUE_ON,
                        value_off=SELECT_VALUE_OFF,
                    )
                )
            elements.append(self.decide_actions(item, page))
        return Container(items=elements, separator=True, spacing="Medium")

    def last_sign_in(self, item: ItemView) -> str:
        if item.last_sign_in is None:
            return self.st.text(S.LAST_SIGN_IN_NEVER)
        with_year = self.st.local(item.last_sign_in).year != self.st.local(self.now).year
        return self.st.text(
            S.LAST_SIGN_IN, when=self.st.date(item.last_sign_in, with_year=with_year)
        )

    def earlier_blocks(self, earlier: tuple[EarlierDecisionView, ...]) -> list[CardElement]:
        st = self.st
        blocks: list[CardElement] = []
        for decision in earlier:
            if decision.decision is None:
                line = st.text(S.EARLIER_NOT_REVIEWED, stage=decision.stage_number)
            else:
                who: str = (
                    _name(decision.decided_by, NAME_MAX_CHARS)
                    if decision.decided_by
                    else st.text(S.DECIDED_BY_UNKNOWN)
                )
                runs = st.runs(
                    _EARLIER_TEXT[decision.decision], stage=decision.stage_number, who=who
                )
                if decision.justification:
                    reason = user_text(
                        decision.justification,
                        max_chars=REASON_MAX_CHARS,
                        max_json_bytes=EARLIER_REASON_MAX_JSON_BYTES,
                    )
                    runs = join_runs([runs, st.runs(S.EARLIER_REASON, text=reason)], " — ")
                blocks.append(rich(runs, size="Small", subtle=True, spacing="None"))
                continue
            blocks.append(text(line, size="Small", subtle=True, spacing="None"))
        return blocks

    def state_blocks(self, item: ItemView) -> list[CardElement]:
        st = self.st
        if item.state is ItemState.DECIDED and item.decision is not None:
            if item.decided_by_viewer:
                who: str = st.text(S.DECIDED_BY_YOU)
            elif item.decided_by:
                who = _name(item.decided_by, NAME_MAX_CHARS)
            else:
                who = st.text(S.DECIDED_BY_UNKNOWN)
            line = st.runs(_DECIDED_TEXT[item.decision], who=who)
            if item.decided_at is not None:
                line = st.runs(S.WITH_TIME, text=line, when=st.when(item.decided_at, self.now))
            blocks: list[CardElement] = [rich(line, weight="Bolder", spacing="Small")]
            if item.justification:
                reason = user_text(
                    item.justification,
                    max_chars=REASON_MAX_CHARS,
                    max_json_bytes=REASON_MAX_JSON_BYTES,
                )
                blocks.append(
                    rich(
                        st.runs(S.DECISION_REASON, text=reason),
                        size="Small",
                        subtle=True,
                        spacing="None",
                    )
                )
            return blocks
        if item.state is ItemState.SAVING and item.decision is not None:
            saving = st.text(S.SAVING_ITEM, decision=st.text(_DECISION_NAME[item.decision]))
            return [text(saving, weight="Bolder", color="Accent", spacing="Small")]
        if item.state is ItemState.FAILED and self.in_progress:
            failure = (
                message_runs(st, item.error, now=self.now)
                if item.error is not None
                else plain(st.text(S.MSG_DECISION_FAILED))
            )
            return [rich(st.runs(S.FAILED_ITEM, message=failure), weight="Bolder", spacing="Small")]
        if item.is_open and not self.in_progress:
            return [text(st.text(S.NOT_DECIDED), subtle=True, spacing="Small")]
        return []

    def decide_actions(self, item: ItemView, page: int) -> ActionSet:
        st, view = self.st, self.view
        buttons: tuple[tuple[Decision, S, ActionStyle | None], ...] = (
            (Decision.APPROVE, S.APPROVE, "positive"),
            (Decision.DENY, S.DENY, "destructive"),
            (Decision.DONT_KNOW, S.DONT_KNOW, None),
        )
        return ActionSet(
            actions=[
                execute(
                    st.text(title),
                    Verb.DECIDE,
                    self.data(
                        decide_data(view.instance_id, item.item_id, decision, item.stage_id, page)
                    ),
                    style=style,
                    # With a required reason the decide buttons collect and validate the inputs;
                    # otherwise they send nothing but their data.
                    uses_inputs=view.justification_required,
                )
                for decision, title, style in buttons
            ]
        )


# Deny list entries on the preview; more are summarised as "…and N more".
_PREVIEW_MAX_LISTED = 60


class _AcceptPreview(_Common):
    def card(self) -> dict[str, Any]:
        st, view, counts = self.st, self.view, self.counts
        page = view.page
        body: list[CardElement | dict[str, Any]] = [
            rich(st.runs(S.PREVIEW_TITLE, name=self.review_name()), size="Medium", weight="Bolder")
        ]
        actions: list[Action] = []
        cancel = execute(st.text(S.PREVIEW_CANCEL), Verb.REFRESH, self.refresh_data(page))
        if not self.in_progress or counts.recommend_approve + counts.recommend_deny == 0:
            body.append(text(st.text(S.PREVIEW_NOTHING)))
            actions.append(cancel)
            return self.finish(body, actions, page)
        deny_items = [
            item
            for item in view.items
            if item.is_open and item.recommendation is Recommendation.DENY
        ]
        if deny_items:
            body.append(text(st.plural(S.PREVIEW_DENY_INTRO, len(deny_items))))
            entries = [dump(self.deny_entry(item)) for item in deny_items]
            fixed = card_size_bytes(self.finish(body, [cancel, cancel], page, check_size=False))
            budget = CARD_BUDGET_BYTES - fixed - 2 * _PACKING_SLACK_BYTES
            listed = pack(
                [card_size_bytes(e) for e in entries],
                budget_bytes=budget,
                max_per_page=_PREVIEW_MAX_LISTED,
            )[0]
            body.extend(entries[index] for index in listed)
            if len(listed) < len(entries):
                more = st.plural(S.PREVIEW_MORE, len(entries) - len(listed))
                body.append(text(more, size="Small", subtle=True))
        else:
            body.append(text(st.text(S.PREVIEW_NO_DENY)))
        if counts.recommend_approve:
            body.append(
                text(st.plural(S.PREVIEW_APPROVE_COUNT, counts.recommend_approve), separator=True)
            )
        if counts.no_recommendation:
            body.append(
                text(
                    st.plural(S.PREVIEW_UNCHANGED_COUNT, counts.no_recommendation),
                    size="Small",
                    subtle=True,
                )
            )
        actions.append(
            execute(
                st.text(S.PREVIEW_CONFIRM),
                Verb.ACCEPT_RECOMMENDATIONS,
                self.data({"instanceId": view.instance_id, "page": page}),
                style="destructive" if deny_items else "positive",
            )
        )
        actions.append(cancel)
        return self.finish(body, actions, page)

    def deny_entry(self, item: ItemView) -> CardElement:
        line = join_runs([plain("•"), self.principal_title(item)], " ")
        details = self.principal_details(item)
        if details:
            line = join_runs([line, details], " · ")
        reason = self.reason(item)
        if reason:
            line = join_runs([line, plain(reason)], " — ")
        return rich(line, size="Small", spacing="None")

    def finish(
        self,
        body: list[CardElement | dict[str, Any]],
        actions: list[Action],
        page: int,
        *,
        check_size: bool = True,
    ) -> dict[str, Any]:
        return build_card(
            body=body,
            actions=actions,
            refresh=refresh_definition(self.view.context.user_id, self.refresh_data(page)),
            lang=self.st.locale,
            fallback_text=self.st.text(S.PREVIEW_TITLE, name=self.review_name()),
            check_size=check_size,
        )


def _name(value: str, max_chars: int) -> UserText:
    """A name, UPN or id from the directory, exact up to the field's bound."""
    return user_text(value, max_chars=max_chars, max_json_bytes=NAME_MAX_JSON_BYTES)
