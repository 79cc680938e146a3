"""View models for the Adaptive Cards.

Every card is rendered from one frozen dataclass. The view models are deliberately independent of
Graph JSON and of the store's rows: the bot maps what it knows onto them, and the card functions
never look anything up. Each view carries a :class:`CardContext` with the clock (``now``), the
reviewer's time zone and locale, so rendering is deterministic.

Times are timezone-aware ``datetime`` objects (any zone; they are converted to the viewer's zone for
display). Text fields hold raw, untrusted text as it comes from the directory or from users; the
card functions escape it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MY_ACCESS_REVIEWS_URL",
    "CardContext",
    "Decision",
    "DefaultDecision",
    "EarlierDecisionView",
    "EscalationCardView",
    "HelpCardView",
    "ItemState",
    "ItemView",
    "MessageCardView",
    "MessageKey",
    "Notice",
    "NoticeKind",
    "PendingListView",
    "PendingReviewView",
    "PrincipalKind",
    "PrincipalView",
    "Recommendation",
    "RecommendationReason",
    "ReviewCardView",
    "ReviewStatus",
    "SignInCardView",
    "SignInReason",
    "StageView",
    "UserType",
]

# The reviewer's list of access reviews in My Access. The portal is a single-page app whose routes
# live in the fragment; `#/access-reviews` opens the "Access reviews" list. Our reference material
# documents no per-review deep link that is stable, so every card links to the list, where the
# review is one click away. The bot may pass a tenant-qualified URL instead
# (`https://myaccess.microsoft.com/@contoso.onmicrosoft.com#/access-reviews`) for guest reviewers
# whose home tenant differs.
MY_ACCESS_REVIEWS_URL = "https://myaccess.microsoft.com/#/access-reviews"

# Items per page of the review card before the size budget is considered. Pages are also cut
# earlier when the serialized card would exceed the budget (see cards/layout.py).
DEFAULT_PAGE_SIZE = 10


class Decision(StrEnum):
    """A reviewer's decision; the values are Graph's `decision` strings."""

    APPROVE = "Approve"
    DENY = "Deny"
    DONT_KNOW = "DontKnow"


class Recommendation(StrEnum):
    """Graph's `recommendation` for a decision item."""

    APPROVE = "Approve"
    DENY = "Deny"
    NO_INFO = "NoInfoAvailable"


class RecommendationReason(StrEnum):
    """Why the recommendation was made; shown beside it.

    `NO_RECENT_SIGN_IN` and `RECENT_SIGN_IN` derive their day count from
    :attr:`ItemView.last_sign_in` and the context's ``now``.
    """

    NO_RECENT_SIGN_IN = "no_recent_sign_in"
    NEVER_SIGNED_IN = "never_signed_in"
    RECENT_SIGN_IN = "recent_sign_in"
    PEER_OUTLIER = "peer_outlier"
    ACCOUNT_DISABLED = "account_disabled"


class PrincipalKind(StrEnum):
    """Who holds the access under review."""

    USER = "user"
    SERVICE_PRINCIPAL = "servicePrincipal"


class UserType(StrEnum):
    """Entra ID `userType` of a user principal."""

    MEMBER = "Member"
    GUEST = "Guest"


class ItemState(StrEnum):
    """Where one decision item stands, as the reviewer should see it."""

    PENDING = "pending"
    """Nobody decided yet: the card offers Approve / Deny / Don't know."""
    SAVING = "saving"
    """A decision was clicked and its write to Graph is in flight ("Saving…")."""
    DECIDED = "decided"
    """Decided (by this reviewer, another reviewer, or in My Access)."""
    FAILED = "failed"
    """The last write failed; the item is offered again with the error beside it."""


class ReviewStatus(StrEnum):
    """The instance's state as far as the reviewer is concerned.

    Only ``IN_PROGRESS`` takes decisions; the others say why not (Graph's instance statuses:
    ``Initializing`` and ``Starting`` are ``STARTING``, ``Completed`` is ``ENDED``, a status the
    bot does not know is ``NOT_OPEN``).
    """

    IN_PROGRESS = "InProgress"
    ENDED = "Ended"
    NOT_STARTED = "NotStarted"
    STARTING = "Starting"
    COMPLETING = "Completing"
    AUTO_REVIEWING = "AutoReviewing"
    AUTO_REVIEWED = "AutoReviewed"
    APPLYING = "Applying"
    APPLIED = "Applied"
    NOT_OPEN = "NotOpen"


class DefaultDecision(StrEnum):
    """What happens to items nobody decides (Graph `settings.defaultDecision`).

    `NONE` stands for `defaultDecisionEnabled = false`: undecided items keep their access.
    """

    NONE = "None"
    APPROVE = "Approve"
    DENY = "Deny"
    RECOMMENDATION = "Recommendation"


class NoticeKind(StrEnum):
    """Tone of a notice or message card; maps to a container style."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


class MessageKey(StrEnum):
    """Fixed, localized messages for outcomes and errors.

    Templates may use ``{detail}`` (escaped user text, e.g. a name) and ``{at}`` (a time, formatted in
    the viewer's zone); the view must then supply them. Raw error text is never shown to users.
    """

    NOT_A_REVIEWER = "not_a_reviewer"
    ALREADY_DECIDED = "already_decided"
    REVIEW_ENDED = "review_ended"
    DECISION_SAVED = "decision_saved"
    DECISION_FAILED = "decision_failed"
    SAVING = "saving"
    JUSTIFICATION_REQUIRED = "justification_required"
    JUSTIFICATION_TOO_LONG = "justification_too_long"  # {detail}: the most characters allowed
    NOTHING_SELECTED = "nothing_selected"
    THROTTLED = "throttled"
    SNOOZED = "snoozed"
    NUDGE_SENT = "nudge_sent"
    RECOMMENDATIONS_ACCEPTED = "recommendations_accepted"
    NO_PENDING_REVIEWS = "no_pending_reviews"
    UNKNOWN_COMMAND = "unknown_command"
    FORBIDDEN = "forbidden"
    GENERIC_ERROR = "generic_error"


class SignInReason(StrEnum):
    """Why the non-SSO sign-in card is shown."""

    SIGN_IN_REQUIRED = "sign_in_required"
    CONSENT_REQUIRED = "consent_required"
    MFA_REQUIRED = "mfa_required"


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class CardContext:
    """Who looks at the card, when, and how dates and text are to be shown.

    :param user_id: the viewer's Teams user id (MRI, ``29:…``) as Teams knows it; goes into
        ``refresh.userIds`` so the card refreshes automatically for them.
    :param now: the current time (aware); all relative dates ("in 3 days") use it.
    :param time_zone: IANA zone name (``Europe/Berlin``); unknown names fall back to UTC.
    :param locale: BCP 47 tag (``de-AT``): the words of its language (any region of a language
        the cards speak), its region's date and number formats; an unsupported tag is US English.
    """

    user_id: str
    now: datetime
    time_zone: str = "UTC"
    locale: str = "en"

    def __post_init__(self) -> None:
        _require_aware("now", self.now)
        if not self.user_id:
            raise ValueError("user_id must not be empty")


@dataclass(frozen=True, slots=True)
class PrincipalView:
    """The user or application whose access is reviewed.

    :param user_principal_name: for users (shown under the name).
    :param app_id: for service principals (shown instead of a UPN).
    :param user_type: member or guest, when known.
    """

    display_name: str
    kind: PrincipalKind = PrincipalKind.USER
    user_principal_name: str | None = None
    app_id: str | None = None
    user_type: UserType | None = None


@dataclass(frozen=True, slots=True)
class EarlierDecisionView:
    """A decision from an earlier stage of a multi-stage review (shown when the review shares them).

    :param decision: ``None`` when the item moved on undecided (``NotReviewed``).
    """

    stage_number: int
    decision: Decision | None
    decided_by: str | None = None
    justification: str | None = None


@dataclass(frozen=True, slots=True)
class ItemView:
    """One decision item of the reviewer.

    :param item_id: Graph decision id; goes into the action data.
    :param resource_name: what the principal has access to (group, app, role, package).
    :param last_sign_in: last interactive sign-in, if known.
    :param state: see :class:`ItemState`.
    :param decision: the outcome (``DECIDED``) or the decision being written (``SAVING``, ``FAILED``).
    :param decided_by: display name of whoever decided (for ``DECIDED``).
    :param decided_by_viewer: the viewer decided it ("Approved by you").
    :param decided_at: when it was decided.
    :param justification: the reason given with the decision, if any.
    :param error: why the last write failed (``FAILED``).
    :param stage_id: the active stage id of a multi-stage review; goes into ``decide`` data.
    :param earlier_decisions: earlier stages' decisions, when the review shares them with reviewers.
    """

    item_id: str
    principal: PrincipalView
    resource_name: str | None = None
    recommendation: Recommendation = Recommendation.NO_INFO
    recommendation_reason: RecommendationReason | None = None
    last_sign_in: datetime | None = None
    state: ItemState = ItemState.PENDING
    decision: Decision | None = None
    decided_by: str | None = None
    decided_by_viewer: bool = False
    decided_at: datetime | None = None
    justification: str | None = None
    error: MessageKey | None = None
    stage_id: str | None = None
    earlier_decisions: tuple[EarlierDecisionView, ...] = ()

    def __post_init__(self) -> None:
        if not self.item_id:
            raise ValueError("item_id must not be empty")
        _require_aware("last_sign_in", self.last_sign_in)
        _require_aware("decided_at", self.decided_at)
        if self.state in (ItemState.DECIDED, ItemState.SAVING) and self.decision is None:
            raise ValueError(f"an item in state {self.state} needs a decision")

    @property
    def is_open(self) -> bool:
        """Whether the reviewer can still act on the item (pending or failed)."""
        return self.state in (ItemState.PENDING, ItemState.FAILED)


@dataclass(frozen=True, slots=True)
class StageView:
    """The active stage of a multi-stage review ("Stage 2 of 3")."""

    stage_id: str
    number: int
    count: int


@dataclass(frozen=True, slots=True)
class Notice:
    """A banner at the top of a card: an outcome or an error of the last action."""

    kind: NoticeKind
    message: MessageKey
    detail: str | None = None
    at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware("at", self.at)


@dataclass(frozen=True, slots=True)
class ReviewCardView:
    """The review card (and, from the same view, the reminder card and the accept preview).

    :param items: all of the viewer's items in this instance, in a stable order; the card pages them.
    :param due: the instance's (or active stage's) end.
    :param resource_name: the reviewed resource when the review is about one.
    :param instructions: the definition's description for reviewers, if any.
    :param status: in progress or ended.
    :param justification_required: the review requires a reason with every decision.
    :param default_decision: what happens to items nobody decides.
    :param auto_apply: results are applied automatically at the end.
    :param stage: the active stage of a multi-stage review.
    :param page: zero-based page to show (clamped to the last page).
    :param page_size: most items per page; a page holds fewer when the size budget requires.
    :param notice: outcome of the last action, shown as a banner.
    :param my_access_url: where "Open My Access" points.
    :param back_to_list: the viewer came from their pending list ("Open"): the card offers
        "Back to my reviews", and every action it sends carries ``"back": "pending_list"`` so the
        card the bot answers with keeps offering it.
    """

    context: CardContext
    instance_id: str
    review_name: str
    due: datetime
    items: tuple[ItemView, ...]
    resource_name: str | None = None
    instructions: str | None = None
    status: ReviewStatus = ReviewStatus.IN_PROGRESS
    justification_required: bool = False
    default_decision: DefaultDecision = DefaultDecision.NONE
    auto_apply: bool = False
    stage: StageView | None = None
    page: int = 0
    page_size: int = DEFAULT_PAGE_SIZE
    notice: Notice | None = None
    my_access_url: str = MY_ACCESS_REVIEWS_URL
    back_to_list: bool = False

    def __post_init__(self) -> None:
        if not self.instance_id:
            raise ValueError("instance_id must not be empty")
        _require_aware("due", self.due)
        if self.page < 0:
            raise ValueError("page must be >= 0")
        if self.page_size < 1:
            raise ValueError("page_size must be >= 1")
        if not self.my_access_url.startswith("https://"):
            raise ValueError("my_access_url must be an https URL")


@dataclass(frozen=True, slots=True)
class EscalationCardView:
    """The manager's escalation card ("Alex has 14 decisions due Friday").

    ``context`` is the manager's; ``reviewer_id`` is the reviewer's Entra object id (goes into the
    ``nudge`` data). ``nudged_at`` set means a nudge was sent and the button is replaced by that fact.
    """

    context: CardContext
    instance_id: str
    review_name: str
    reviewer_id: str
    reviewer_name: str
    pending_count: int
    total_count: int
    due: datetime
    resource_name: str | None = None
    nudged_at: datetime | None = None

    def __post_init__(self) -> None:
        _require_aware("due", self.due)
        _require_aware("nudged_at", self.nudged_at)
        if not self.instance_id or not self.reviewer_id:
            raise ValueError("instance_id and reviewer_id must not be empty")


@dataclass(frozen=True, slots=True)
class PendingReviewView:
    """One line of the pending-list card."""

    instance_id: str
    review_name: str
    pending_count: int
    total_count: int
    due: datetime
    resource_name: str | None = None

    def __post_init__(self) -> None:
        _require_aware("due", self.due)


@dataclass(frozen=True, slots=True)
class PendingListView:
    """The viewer's open reviews with counts ("pending" command)."""

    context: CardContext
    reviews: tuple[PendingReviewView, ...]
    my_access_url: str = MY_ACCESS_REVIEWS_URL


@dataclass(frozen=True, slots=True)
class HelpCardView:
    """The help card ("help" command)."""

    context: CardContext
    my_access_url: str = MY_ACCESS_REVIEWS_URL


@dataclass(frozen=True, slots=True)
class MessageCardView:
    """A card with one plain outcome or error.

    When ``instance_id`` is set the card's refresh returns to that review's card (page ``page``),
    so a stale message turns back into the current state; otherwise it refreshes to the pending list.
    """

    context: CardContext
    message: MessageKey
    kind: NoticeKind = NoticeKind.INFO
    detail: str | None = None
    at: datetime | None = None
    instance_id: str | None = None
    page: int = 0

    def __post_init__(self) -> None:
        _require_aware("at", self.at)


@dataclass(frozen=True, slots=True)
class SignInCardView:
    """The non-SSO sign-in card shown when consent or MFA is needed before a decision can be written.

    :param sign_in_url: https URL that starts the interactive sign-in (built by the bot).
    """

    context: CardContext
    reason: SignInReason
    sign_in_url: str
    instance_id: str | None = None
    page: int = 0

    def __post_init__(self) -> None:
        if not self.sign_in_url.startswith("https://"):
            raise ValueError("sign_in_url must be an https URL")
