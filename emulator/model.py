"""The emulator's data model: directory objects, Teams apps and access reviews, as plain data.

The rules Microsoft applies to them (reviewer resolution, who may decide, the time-driven
lifecycle) live in :mod:`emulator.tenant` and :mod:`emulator.lifecycle`; the wire shapes live in
:mod:`emulator.graph`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "AAD_ACCESS_REVIEWS",
    "DECISION_VALUES",
    "RECOMMENDATION_VALUES",
    "SYSTEM_ACTOR",
    "ZERO_GUID",
    "Actor",
    "Application",
    "Decision",
    "Definition",
    "Group",
    "Installation",
    "Instance",
    "MailboxSettings",
    "PrincipalKind",
    "ReviewResource",
    "ReviewSettings",
    "ReviewerScope",
    "ServicePrincipal",
    "Stage",
    "StageOutcome",
    "StageSettings",
    "TeamsApp",
    "TenantError",
    "User",
]

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
#: The display name Graph shows for automatic (default / auto-applied) decisions.
AAD_ACCESS_REVIEWS = "AAD Access Reviews"
DECISION_VALUES = frozenset({"Approve", "Deny", "NotReviewed", "DontKnow"})
RECOMMENDATION_VALUES = frozenset({"Approve", "Deny", "NoInfoAvailable"})

#: Who did something to a decision: (id, displayName, userPrincipalName). The automatic
#: reviewer is (ZERO_GUID, "AAD Access Reviews", "") — the UPN is empty for automatic decisions.
Actor = tuple[str, str, str]
SYSTEM_ACTOR: Actor = (ZERO_GUID, AAD_ACCESS_REVIEWS, "")

PrincipalKind = Literal["user", "servicePrincipal"]


class TenantError(Exception):
    """A rule violation, carrying the Graph status and error code to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------------- directory
@dataclass(slots=True)
class MailboxSettings:
    """The parts of ``mailboxSettings`` the bot reads (time zone and working hours)."""

    time_zone: str = "UTC"
    working_days: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday")
    start_time: str = "08:00:00.0000000"
    end_time: str = "17:00:00.0000000"
    language: str = "en-US"


@dataclass(slots=True)
class User:
    """An Entra ID user (member or guest)."""

    id: str
    display_name: str
    user_principal_name: str
    mail: str | None = None
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    department: str | None = None
    user_type: str = "Member"
    account_enabled: bool = True
    manager_id: str | None = None
    last_sign_in: datetime | None = None
    #: Whether Entra has sign-in data for the user. With ``last_sign_in`` None, a decision's
    #: ``principal.lastUserSignInDateTime`` is ``""`` (never signed in) when this is true and
    #: ``null`` (no data, e.g. sign-in activity not available) when it is false.
    sign_in_known: bool = True
    mailbox: MailboxSettings | None = None
    #: Entra directory role names (e.g. "Identity Governance Administrator").
    directory_roles: frozenset[str] = frozenset()
    preferred_language: str | None = None


@dataclass(slots=True)
class Group:
    """A security or Microsoft 365 group; members may be users, service principals or groups."""

    id: str
    display_name: str
    description: str | None = None
    group_types: tuple[str, ...] = ()
    security_enabled: bool = True
    mail_enabled: bool = False
    mail_nickname: str | None = None
    member_ids: list[str] = field(default_factory=list)
    owner_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ServicePrincipal:
    """An enterprise application (service principal) with its owners."""

    id: str
    app_id: str
    display_name: str
    owner_ids: list[str] = field(default_factory=list)
    service_principal_type: str = "Application"


@dataclass(slots=True)
class Application:
    """An app registration (``/applications/{id}``) with its owners."""

    id: str
    app_id: str
    display_name: str
    owner_ids: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------- Teams
@dataclass(slots=True)
class TeamsApp:
    """An app in the tenant's Teams app catalog."""

    id: str
    external_id: str | None
    display_name: str
    distribution_method: str = "organization"
    definition_id: str = ""
    version: str = "1.0.0"
    description: str = ""
    #: The Entra app id in the manifest's webApplicationInfo / bot id (what "Self" permissions
    #: compare with the caller's app id).
    azure_ad_app_id: str | None = None


@dataclass(slots=True)
class Installation:
    """An app installed in a user's personal scope."""

    id: str
    user_id: str
    teams_app_id: str
    chat_id: str


# ---------------------------------------------------------------------------------- reviews
@dataclass(frozen=True, slots=True)
class ReviewerScope:
    """``accessReviewReviewerScope``: a Graph query naming reviewers."""

    query: str
    query_type: str = "MicrosoftGraph"
    query_root: str | None = None

    def to_graph(self) -> dict[str, Any]:
        """The JSON shape Graph returns."""
        return {"query": self.query, "queryType": self.query_type, "queryRoot": self.query_root}


@dataclass(frozen=True, slots=True)
class ReviewResource:
    """The resource a decision is about (group, app, role, Azure role, access package policy)."""

    id: str
    display_name: str
    type: str  # "group" (as the docs' examples spell it), "ServicePrincipal", "DirectoryRole", ...
    odata_type: str | None = (
        None  # e.g. "#microsoft.graph.accessReviewInstanceDecisionItemAzureRoleResource"
    )
    link: str | None = None  # resourceLink
    extra: tuple[
        tuple[str, Any], ...
    ] = ()  # subtype properties (appId, scope, accessPackageId, ...)

    def to_graph(self) -> dict[str, Any]:
        """The JSON shape of ``resource`` on a decision item."""
        body: dict[str, Any] = {}
        if self.odata_type:
            body["@odata.type"] = self.odata_type
        body.update({"id": self.id, "displayName": self.display_name, "type": self.type})
        body.update(dict(self.extra))
        return body


@dataclass(slots=True)
class ReviewSettings:
    """``accessReviewScheduleSettings`` (fields the emulator acts on, plus what it echoes)."""

    mail_notifications_enabled: bool = True
    reminder_notifications_enabled: bool = True
    justification_required_on_approval: bool = False
    default_decision_enabled: bool = False
    default_decision: str = "None"  # Approve | Deny | Recommendation | None
    instance_duration_in_days: int = 14
    auto_apply_decisions_enabled: bool = False
    recommendations_enabled: bool = True
    recommendation_look_back_duration: str = "P30D"
    decision_histories_for_reviewers_enabled: bool = False


@dataclass(slots=True)
class StageSettings:
    """``accessReviewStageSettings`` of a multi-stage review."""

    stage_id: str
    depends_on: tuple[str, ...]
    duration_in_days: int
    reviewers: tuple[ReviewerScope, ...]
    fallback_reviewers: tuple[ReviewerScope, ...] = ()
    decisions_that_will_move_to_next_stage: tuple[str, ...] = ("NotReviewed", "Approve")
    recommendations_enabled: bool = True


@dataclass(slots=True)
class Stage:
    """One stage of a multi-stage instance. Times are planned; ``stopped_at`` ends it early."""

    id: str
    index: int
    settings: StageSettings
    start: datetime
    end: datetime
    stopped_at: datetime | None = None
    finalized: bool = False

    def actual_end(self) -> datetime:
        """When the stage ends (or ended): early stop or the planned end."""
        return (
            self.stopped_at
            if self.stopped_at is not None and self.stopped_at < self.end
            else self.end
        )


@dataclass(slots=True)
class StageOutcome:
    """A decision as it stood at the end of an earlier stage (multi-stage history)."""

    stage_index: int
    decision: str
    justification: str
    reviewed_by: Actor | None
    reviewed_at: datetime | None


@dataclass(slots=True)
class Decision:
    """``accessReviewInstanceDecisionItem`` (kept lean: 100k of these must be cheap)."""

    id: str
    principal_id: str
    principal_kind: PrincipalKind
    resource: ReviewResource | None
    recommendation: str = "NoInfoAvailable"
    decision: str = "NotReviewed"
    justification: str = ""
    reviewed_by: Actor | None = None
    reviewed_at: datetime | None = None
    applied_by: Actor | None = None
    applied_at: datetime | None = None
    apply_result: str = "New"
    #: "direct" / "indirect" (through a nested group) for group reviews; None if not applicable.
    membership_type: str | None = None
    #: Multi-stage only: the stage the item has reached, and its outcomes in earlier stages.
    stage_index: int = 0
    history: list[StageOutcome] | None = None


@dataclass(slots=True)
class Instance:
    """``accessReviewInstance`` with its decisions and (multi-stage) stages."""

    id: str
    definition_id: str
    start: datetime
    end: datetime
    scope: dict[str, Any]
    reviewers: tuple[ReviewerScope, ...]
    fallback_reviewers: tuple[ReviewerScope, ...]
    decisions: dict[str, Decision] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    stopped_at: datetime | None = None
    #: Every end-of-instance effect (default decisions, applying) has run.
    finalized: bool = False
    applied: bool = False
    #: Default decisions were recorded (AutoReviewing → AutoReviewed).
    defaults_recorded: bool = False
    #: ``applyDecisions`` was called at this time, by this actor (Applying → Applied follows).
    apply_requested_at: datetime | None = None
    apply_requested_by: Actor | None = None
    #: Which recurrence of its definition this instance is (0 = the first).
    occurrence: int = 0
    reminders_sent_at: list[datetime] = field(default_factory=list)

    def actual_end(self) -> datetime:
        """When the instance ends (or ended)."""
        return (
            self.stopped_at
            if self.stopped_at is not None and self.stopped_at < self.end
            else self.end
        )


@dataclass(slots=True)
class Definition:
    """``accessReviewScheduleDefinition``."""

    id: str
    display_name: str
    scope: dict[str, Any]
    reviewers: tuple[ReviewerScope, ...]
    settings: ReviewSettings
    created_by: Actor
    created_at: datetime
    description_for_admins: str = ""
    description_for_reviewers: str = ""
    instance_enumeration_scope: dict[str, Any] | None = None
    fallback_reviewers: tuple[ReviewerScope, ...] = ()
    stage_settings: tuple[StageSettings, ...] = ()
    recurrence: dict[str, Any] | None = None
    instance_ids: list[str] = field(default_factory=list)
    #: What a new recurrence reviews: the resource, and (unless the resource is a group, whose
    #: members are read when the recurrence starts) the principals with their kind.
    resource: ReviewResource | None = None
    principals: tuple[tuple[str, PrincipalKind], ...] = ()
