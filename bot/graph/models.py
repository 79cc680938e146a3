"""Typed views of the Graph objects the bot reads.

Each model is a frozen dataclass built by ``from_graph(dict)``: it tolerates missing and unknown
fields, keeps enum-like values as plain strings (Graph returns statuses its docs do not list, e.g.
``Applied``), and keeps the whole JSON object in ``raw`` for anything not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ZERO_GUID",
    "AccessReviewDecision",
    "AccessReviewDefinition",
    "AccessReviewInstance",
    "AccessReviewStage",
    "ContactedReviewer",
    "Decision",
    "DecisionResource",
    "DirectoryObject",
    "Identity",
    "MailboxSettings",
    "ReviewStatus",
    "ReviewerScope",
    "TeamsApp",
    "TeamsAppInstallation",
    "User",
    "WorkingHours",
    "parse_graph_datetime",
]

#: Graph's "nobody" id in ``reviewedBy``/``appliedBy`` of items nobody touched.
ZERO_GUID = "00000000-0000-0000-0000-000000000000"


class Decision:
    """Known ``decision`` values (others may appear; compare as strings)."""

    NOT_REVIEWED = "NotReviewed"
    APPROVE = "Approve"
    DENY = "Deny"
    DONT_KNOW = "DontKnow"
    WRITABLE = frozenset({APPROVE, DENY, DONT_KNOW, NOT_REVIEWED})


class ReviewStatus:
    """Known definition/instance/stage statuses (Graph also sends undocumented ones)."""

    NOT_STARTED = "NotStarted"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    APPLIED = "Applied"
    #: Statuses in which reviewers can still decide.
    OPEN = frozenset({IN_PROGRESS})


def parse_graph_datetime(value: Any) -> datetime | None:
    """An ISO 8601 Graph timestamp as an aware UTC datetime; ``None`` if absent or unparseable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _map(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(data: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class ReviewerScope:
    """``accessReviewReviewerScope``: who reviews, as a Graph query (``/users/{id}``, ``./manager``)."""

    query: str
    query_type: str = "MicrosoftGraph"
    query_root: str | None = None

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> ReviewerScope:
        return cls(
            query=_str(data, "query"),
            query_type=_str(data, "queryType") or "MicrosoftGraph",
            query_root=_opt_str(data, "queryRoot"),
        )

    @classmethod
    def many(cls, items: Sequence[Any]) -> tuple[ReviewerScope, ...]:
        return tuple(cls.from_graph(i) for i in items if isinstance(i, Mapping))


@dataclass(frozen=True)
class Identity:
    """A ``userIdentity``/``identity``/``servicePrincipalIdentity`` reference."""

    id: str
    display_name: str = ""
    user_principal_name: str = ""
    odata_type: str = ""
    type: str = ""

    @classmethod
    def from_graph(cls, data: Mapping[str, Any] | None) -> Identity:
        data = data or {}
        return cls(
            id=_str(data, "id"),
            display_name=_str(data, "displayName"),
            user_principal_name=_str(data, "userPrincipalName"),
            odata_type=_str(data, "@odata.type"),
            type=_str(data, "type"),
        )

    @property
    def is_nobody(self) -> bool:
        """True for Graph's zero-GUID placeholder (not reviewed / not applied)."""
        return not self.id or self.id == ZERO_GUID


@dataclass(frozen=True)
class AccessReviewDefinition:
    """``accessReviewScheduleDefinition``."""

    id: str
    display_name: str
    status: str
    description_for_reviewers: str = ""
    reviewers: tuple[ReviewerScope, ...] = ()
    fallback_reviewers: tuple[ReviewerScope, ...] = ()
    scope: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    stage_settings: tuple[Mapping[str, Any], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> AccessReviewDefinition:
        return cls(
            id=_str(data, "id"),
            display_name=_str(data, "displayName"),
            status=_str(data, "status"),
            description_for_reviewers=_str(data, "descriptionForReviewers"),
            reviewers=ReviewerScope.many(_list(data, "reviewers")),
            fallback_reviewers=ReviewerScope.many(_list(data, "fallbackReviewers")),
            scope=_map(data, "scope"),
            settings=_map(data, "settings"),
            stage_settings=tuple(s for s in _list(data, "stageSettings") if isinstance(s, Mapping)),
            raw=data,
        )

    @property
    def justification_required(self) -> bool:
        return bool(self.settings.get("justificationRequiredOnApproval"))

    @property
    def recommendations_enabled(self) -> bool:
        return bool(self.settings.get("recommendationsEnabled"))

    @property
    def is_multi_stage(self) -> bool:
        return bool(self.stage_settings)


@dataclass(frozen=True)
class AccessReviewInstance:
    """``accessReviewInstance``; ``definition_id`` is filled in from the URL it was read from."""

    id: str
    definition_id: str
    status: str
    start: datetime | None = None
    end: datetime | None = None
    reviewers: tuple[ReviewerScope, ...] = ()
    fallback_reviewers: tuple[ReviewerScope, ...] = ()
    scope: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(
        cls, data: Mapping[str, Any], *, definition_id: str = ""
    ) -> AccessReviewInstance:
        return cls(
            id=_str(data, "id"),
            definition_id=definition_id,
            status=_str(data, "status"),
            start=parse_graph_datetime(data.get("startDateTime")),
            end=parse_graph_datetime(data.get("endDateTime")),
            reviewers=ReviewerScope.many(_list(data, "reviewers")),
            fallback_reviewers=ReviewerScope.many(_list(data, "fallbackReviewers")),
            scope=_map(data, "scope"),
            raw=data,
        )


@dataclass(frozen=True)
class AccessReviewStage:
    """``accessReviewStage`` of a multi-stage review."""

    id: str
    definition_id: str
    instance_id: str
    status: str
    start: datetime | None = None
    end: datetime | None = None
    reviewers: tuple[ReviewerScope, ...] = ()
    fallback_reviewers: tuple[ReviewerScope, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(
        cls, data: Mapping[str, Any], *, definition_id: str = "", instance_id: str = ""
    ) -> AccessReviewStage:
        return cls(
            id=_str(data, "id"),
            definition_id=definition_id,
            instance_id=instance_id,
            status=_str(data, "status"),
            start=parse_graph_datetime(data.get("startDateTime")),
            end=parse_graph_datetime(data.get("endDateTime")),
            reviewers=ReviewerScope.many(_list(data, "reviewers")),
            fallback_reviewers=ReviewerScope.many(_list(data, "fallbackReviewers")),
            raw=data,
        )


@dataclass(frozen=True)
class DecisionResource:
    """The resource access is reviewed for (group, app, role, access package policy...)."""

    id: str
    display_name: str = ""
    type: str = ""
    odata_type: str = ""

    @classmethod
    def from_graph(cls, data: Mapping[str, Any] | None) -> DecisionResource | None:
        if not data:
            return None
        return cls(
            id=_str(data, "id"),
            display_name=_str(data, "displayName"),
            type=_str(data, "type"),
            odata_type=_str(data, "@odata.type"),
        )


@dataclass(frozen=True)
class AccessReviewDecision:
    """``accessReviewInstanceDecisionItem``: one principal's access to one resource."""

    id: str
    access_review_id: str  # the instance id
    decision: str
    recommendation: str = ""
    justification: str = ""
    apply_result: str = ""
    principal: Identity = field(default_factory=lambda: Identity(id=""))
    principal_link: str = ""
    resource: DecisionResource | None = None
    resource_link: str = ""
    reviewed_by: Identity = field(default_factory=lambda: Identity(id=""))
    reviewed_at: datetime | None = None
    # Graph sends this one as a non-ISO string ("2/11/2022 5:31:37 PM +00:00"); kept verbatim.
    principal_last_sign_in: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> AccessReviewDecision:
        principal = _map(data, "principal")
        return cls(
            id=_str(data, "id"),
            access_review_id=_str(data, "accessReviewId"),
            decision=_str(data, "decision"),
            recommendation=_str(data, "recommendation"),
            justification=_str(data, "justification"),
            apply_result=_str(data, "applyResult"),
            principal=Identity.from_graph(principal),
            principal_link=_str(data, "principalLink"),
            resource=DecisionResource.from_graph(_map(data, "resource")),
            resource_link=_str(data, "resourceLink"),
            reviewed_by=Identity.from_graph(_map(data, "reviewedBy")),
            reviewed_at=parse_graph_datetime(data.get("reviewedDateTime")),
            principal_last_sign_in=_opt_str(principal, "lastUserSignInDateTime"),
            raw=data,
        )

    @property
    def is_pending(self) -> bool:
        return self.decision == Decision.NOT_REVIEWED


@dataclass(frozen=True)
class ContactedReviewer:
    """``accessReviewReviewer`` from ``contactedReviewers``."""

    id: str
    display_name: str = ""
    user_principal_name: str = ""
    contacted_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> ContactedReviewer:
        return cls(
            id=_str(data, "id"),
            display_name=_str(data, "displayName"),
            user_principal_name=_str(data, "userPrincipalName"),
            contacted_at=parse_graph_datetime(data.get("createdDateTime")),
            raw=data,
        )


@dataclass(frozen=True)
class User:
    """A directory ``user``."""

    id: str
    display_name: str = ""
    user_principal_name: str = ""
    mail: str | None = None
    user_type: str = ""
    account_enabled: bool | None = None
    preferred_language: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> User:
        enabled = data.get("accountEnabled")
        return cls(
            id=_str(data, "id"),
            display_name=_str(data, "displayName"),
            user_principal_name=_str(data, "userPrincipalName"),
            mail=_opt_str(data, "mail"),
            user_type=_str(data, "userType"),
            account_enabled=enabled if isinstance(enabled, bool) else None,
            preferred_language=_opt_str(data, "preferredLanguage"),
            raw=data,
        )

    @property
    def is_guest(self) -> bool:
        return self.user_type.lower() == "guest"


@dataclass(frozen=True)
class DirectoryObject:
    """A member/owner of a group or app: a user, group, service principal or device."""

    id: str
    odata_type: str = ""
    display_name: str = ""
    user_principal_name: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> DirectoryObject:
        return cls(
            id=_str(data, "id"),
            odata_type=_str(data, "@odata.type"),
            display_name=_str(data, "displayName"),
            user_principal_name=_str(data, "userPrincipalName"),
            raw=data,
        )

    @property
    def is_user(self) -> bool:
        return self.odata_type.lower() == "#microsoft.graph.user"


@dataclass(frozen=True)
class WorkingHours:
    """``workingHours`` of mailbox settings (times are local to ``time_zone``)."""

    days_of_week: tuple[str, ...] = ()
    start_time: str = ""
    end_time: str = ""
    time_zone: str = ""

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> WorkingHours:
        return cls(
            days_of_week=tuple(str(d) for d in _list(data, "daysOfWeek")),
            start_time=_str(data, "startTime"),
            end_time=_str(data, "endTime"),
            time_zone=_str(_map(data, "timeZone"), "name"),
        )


@dataclass(frozen=True)
class MailboxSettings:
    """The parts of ``mailboxSettings`` reminders care about (time zone, working hours)."""

    time_zone: str = ""
    working_hours: WorkingHours | None = None
    language: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> MailboxSettings:
        hours = _map(data, "workingHours")
        return cls(
            time_zone=_str(data, "timeZone"),
            working_hours=WorkingHours.from_graph(hours) if hours else None,
            language=_str(_map(data, "language"), "locale"),
            raw=data,
        )


@dataclass(frozen=True)
class TeamsApp:
    """A ``teamsApp`` of the app catalog; ``id`` is the catalog id, ``external_id`` the manifest id."""

    id: str
    external_id: str = ""
    display_name: str = ""
    distribution_method: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> TeamsApp:
        return cls(
            id=_str(data, "id"),
            external_id=_str(data, "externalId"),
            display_name=_str(data, "displayName"),
            distribution_method=_str(data, "distributionMethod"),
            raw=data,
        )


@dataclass(frozen=True)
class TeamsAppInstallation:
    """A ``userScopeTeamsAppInstallation`` (``id`` is the installation id)."""

    id: str
    teams_app: TeamsApp | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> TeamsAppInstallation:
        app = _map(data, "teamsApp")
        return cls(
            id=_str(data, "id"),
            teams_app=TeamsApp.from_graph(app) if app else None,
            raw=data,
        )
