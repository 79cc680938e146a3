"""Typed views of the Graph objects the bot reads.

Each model is a frozen dataclass built by ``from_graph(dict)``: it tolerates missing and unknown
fields, keeps enum-like values as plain strings (Graph returns statuses its docs do not list, e.g.
``Applied``), and keeps the whole JSON object in ``raw`` for anything not modelled.

Parsing is defensive: a field of an unexpected type (a number where Graph documents a string, a
string where an object belongs) is treated as missing and logged once per field and type, so a
changed or broken answer degrades one field instead of failing a whole discovery cycle.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    "guest_address",
    "parse_graph_datetime",
    "parse_sign_in",
    "principal_kind",
    "resource_kind",
]

log = logging.getLogger(__name__)

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
    """Definition/instance/stage statuses.

    The docs list ``Initializing``, ``NotStarted``, ``Starting``, ``InProgress``, ``Completing``,
    ``Completed``, ``AutoReviewing`` and ``AutoReviewed``; Graph also answers ``Applying`` and
    ``Applied`` (after ``applyDecisions``). Only ``InProgress`` is open for decisions; anything
    else, including a status nobody documented, is not (:meth:`normalize` logs the latter once).
    """

    NOT_STARTED = "NotStarted"
    INITIALIZING = "Initializing"
    STARTING = "Starting"
    IN_PROGRESS = "InProgress"
    COMPLETING = "Completing"
    COMPLETED = "Completed"
    AUTO_REVIEWING = "AutoReviewing"
    AUTO_REVIEWED = "AutoReviewed"
    APPLYING = "Applying"
    APPLIED = "Applied"
    #: Statuses in which reviewers can still decide.
    OPEN = frozenset({IN_PROGRESS})
    #: Before decisions open.
    NOT_YET_OPEN = frozenset({NOT_STARTED, INITIALIZING, STARTING})
    #: After decisions closed, while Graph is still finishing the review on its own (the bot
    #: keeps following these instances so cards show where they ended up).
    SETTLING = frozenset({COMPLETING, AUTO_REVIEWING, APPLYING})
    #: Ended; only an admin's ``applyDecisions`` moves these on (to ``Applying``/``Applied``).
    ENDED = frozenset({COMPLETED, AUTO_REVIEWED, APPLIED})
    DOCUMENTED = OPEN | NOT_YET_OPEN | SETTLING | ENDED

    @classmethod
    def normalize(cls, value: str) -> str:
        """The documented spelling of ``value`` (compared case-insensitively); an unknown status
        is kept as sent and logged once."""
        known = _STATUS_BY_LOWER.get(value.strip().lower())
        if known is not None:
            return known
        if value:
            _warn_once(
                ("status", value),
                "access review status %r is not documented: treated as not open for decisions",
                value,
            )
        return value

    @classmethod
    def is_open(cls, value: str) -> bool:
        """Whether reviewers can decide in this status."""
        return cls.normalize(value) in cls.OPEN


_STATUS_BY_LOWER = {status.lower(): status for status in ReviewStatus.DOCUMENTED}
_WARNED: set[tuple[str, ...]] = set()


def _warn_once(key: tuple[str, ...], message: str, *args: object) -> None:
    """Log ``message`` the first time ``key`` is seen in this process (a bad field of every item
    of a 100k-item poll is one line, not 100k)."""
    if key in _WARNED:
        return
    if len(_WARNED) < 1000:
        _WARNED.add(key)
    log.warning(message, *args)


def _unexpected(key: str, value: Any, expected: str) -> None:
    _warn_once(
        ("type", key, type(value).__name__),
        "Graph sent %s as %s where %s belongs: treated as missing",
        key,
        type(value).__name__,
        expected,
    )


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
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    _unexpected(key, value, "a string")
    return ""


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    _unexpected(key, value, "a string")
    return None


def _map(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if isinstance(value, Mapping):
        return value
    if value is not None:
        _unexpected(key, value, "an object")
    return {}


def _list(data: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = data.get(key)
    if isinstance(value, list):
        return value
    if value is not None:
        _unexpected(key, value, "a list")
    return []


# Graph's lastUserSignInDateTime is US-formatted .NET text: "2/11/2022 5:31:37 PM +00:00".
_US_SIGN_IN = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{1,4}) (\d{1,2}):(\d{2}):(\d{2}) ([AP]M)(?: ([+-]\d{2}):(\d{2}))?$",
    re.IGNORECASE,
)
# .NET's DateTime.MinValue ("1/1/0001 12:00:00 AM", "0001-01-01T00:00:00Z") stands for "never".
_NEVER_BEFORE_YEAR = 1900


def parse_sign_in(value: Any) -> tuple[datetime | None, bool]:
    """``principal.lastUserSignInDateTime`` → (when, never signed in).

    ``""`` and ``null`` mean the user never signed in, as does .NET's minimum date; Graph's
    US-formatted text and ISO 8601 both parse. Anything else (another type, text that is no date)
    is logged once and treated as unknown: ``(None, False)``.
    """
    if value is None:
        return None, True
    if not isinstance(value, str):
        _unexpected("lastUserSignInDateTime", value, "a string")
        return None, False
    text = value.strip()
    if not text:
        return None, True
    parsed: datetime | None = None
    if match := _US_SIGN_IN.match(text):
        month, day, year, hour, minute, second, half, off_h, off_m = match.groups()
        try:
            local = datetime(
                int(year),
                int(month),
                int(day),
                int(hour) % 12 + (12 if half.upper() == "PM" else 0),
                int(minute),
                int(second),
            )
        except ValueError:
            local = None
        if local is not None:
            offset = timedelta(0)
            if off_h is not None:
                sign = -1 if off_h.startswith("-") else 1
                offset = sign * timedelta(hours=abs(int(off_h)), minutes=int(off_m))
            try:
                parsed = (local - offset).replace(tzinfo=UTC)
            except OverflowError:  # DateTime.MinValue with a positive offset
                parsed = local.replace(tzinfo=UTC)
    else:
        parsed = parse_graph_datetime(text)
    if parsed is None:
        _warn_once(
            ("sign-in", "format"),
            "lastUserSignInDateTime %r is not a date: treated as unknown",
            text[:40],
        )
        return None, False
    if parsed.year < _NEVER_BEFORE_YEAR:
        return None, True
    return parsed, False


def guest_address(user_principal_name: str) -> str | None:
    """The external address of a B2B guest from its ``#EXT#`` user principal name.

    ``adele_fabrikam.com#EXT#@contoso.onmicrosoft.com`` → ``adele@fabrikam.com`` (Entra writes the
    invited address with its ``@`` as ``_``); None when the name is not in that form.
    """
    marker = user_principal_name.upper().find("#EXT#")
    if marker <= 0:
        return None
    local, sep, domain = user_principal_name[:marker].rpartition("_")
    if not sep or not local or "." not in domain:
        return None
    return f"{local}@{domain}"


_RESOURCE_KINDS = {
    "group": "group",
    "serviceprincipal": "servicePrincipal",
    "application": "servicePrincipal",
    "directoryrole": "directoryRole",
    "azurerole": "azureRole",
    "accesspackageassignmentpolicy": "accessPackageAssignmentPolicy",
}
# What the @odata.type of a resource or the path of a resourceLink says, when ``type`` does not.
_RESOURCE_HINTS = (
    ("azurerole", "azureRole"),
    ("accesspackageassignmentpolicy", "accessPackageAssignmentPolicy"),
    ("serviceprincipal", "servicePrincipal"),
    ("/applications/", "servicePrincipal"),
    ("directoryrole", "directoryRole"),
    ("rolemanagement/directory", "directoryRole"),
    ("/groups/", "group"),
)


def resource_kind(type_: str, odata_type: str = "", link: str = "") -> str:
    """One spelling of a decision resource's kind, whatever casing Graph used: ``group``,
    ``servicePrincipal``, ``directoryRole``, ``azureRole``, ``accessPackageAssignmentPolicy``;
    ``type`` as sent (or ``""``) when it is none of them."""
    known = _RESOURCE_KINDS.get(type_.strip().lower())
    if known is not None:
        return known
    hints = f"{odata_type} {link}".lower()
    for hint, kind in _RESOURCE_HINTS:
        if hint in hints:
            return kind
    return type_.strip()


def principal_kind(identity: Identity) -> str:
    """``user`` or ``servicePrincipal`` for a decision's principal (``""`` when neither)."""
    odata = identity.odata_type.lower()
    if odata.endswith("serviceprincipalidentity"):
        return "servicePrincipal"
    if odata.endswith("useridentity"):
        return "user"
    lowered = identity.type.strip().lower()
    if lowered in ("user", ""):
        return "user" if identity.id else ""
    if lowered == "serviceprincipal":
        return "servicePrincipal"
    return ""


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

    @property
    def kind(self) -> str:
        """``user``, ``servicePrincipal`` or ``""`` (see :func:`principal_kind`)."""
        return principal_kind(self)

    @property
    def is_guest(self) -> bool:
        """A B2B guest: its user principal name is the ``#EXT#`` form."""
        return "#EXT#" in self.user_principal_name.upper()

    @property
    def address(self) -> str:
        """What to show as the principal's address: a guest's real one, else the UPN."""
        return guest_address(self.user_principal_name) or self.user_principal_name


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
            status=ReviewStatus.normalize(_str(data, "status")),
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
            status=ReviewStatus.normalize(_str(data, "status")),
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
            status=ReviewStatus.normalize(_str(data, "status")),
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

    @property
    def kind(self) -> str:
        """The resource's kind in one spelling, whatever casing Graph sent (:func:`resource_kind`)."""
        return resource_kind(self.type, self.odata_type)


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
    # ... and parsed: when (UTC), or whether Graph says "never" ("" or null; see parse_sign_in).
    principal_signed_in_at: datetime | None = None
    principal_never_signed_in: bool = False
    principal_app_id: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any], *, keep_raw: bool = True) -> AccessReviewDecision:
        """``keep_raw=False`` drops the JSON once it is modelled (big listings)."""
        principal = _map(data, "principal")
        signed_in_at, never = (
            parse_sign_in(principal["lastUserSignInDateTime"])
            if "lastUserSignInDateTime" in principal
            else (None, False)
        )
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
            principal_signed_in_at=signed_in_at,
            principal_never_signed_in=never,
            principal_app_id=_str(principal, "appId"),
            raw=data if keep_raw else {},
        )

    @property
    def is_pending(self) -> bool:
        return self.decision == Decision.NOT_REVIEWED

    @property
    def resource_kind(self) -> str:
        """The resource's kind from its ``type``, ``@odata.type`` or ``resourceLink``."""
        resource = self.resource
        return resource_kind(
            resource.type if resource else "",
            resource.odata_type if resource else "",
            self.resource_link,
        )


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
