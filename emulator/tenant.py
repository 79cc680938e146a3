"""The emulator's in-memory Entra ID tenant: directory objects, access reviews and Teams apps.

The tenant is the single source of truth behind the Graph routes (``emulator.graph``). It holds
plain data and the rules Microsoft applies to it (reviewer resolution, who may decide, the
time-driven lifecycle of instances and stages); the wire shapes live in ``emulator.graph``.

Time: everything that depends on time reads the injected :class:`~emulator.clock.Clock`.
:meth:`Tenant.refresh` applies due transitions (stage ends, default decisions, auto-apply); the
Graph app calls it at the start of each request, and tests may call it directly.
"""

from __future__ import annotations

import base64
import itertools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from emulator.clock import Clock

__all__ = [
    "AAD_ACCESS_REVIEWS",
    "DECISION_VALUES",
    "ZERO_GUID",
    "Application",
    "Decision",
    "Definition",
    "Group",
    "Installation",
    "Instance",
    "MailboxSettings",
    "ReviewResource",
    "ReviewSettings",
    "ReviewerScope",
    "ServicePrincipal",
    "Stage",
    "StageOutcome",
    "StageSettings",
    "TeamsApp",
    "Tenant",
    "TenantError",
    "User",
]

log = logging.getLogger(__name__)

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
    finalized: bool = False
    applied: bool = False
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


_USERS_QUERY = re.compile(r"^/(?:v1\.0/|beta/)?users/([^/?]+)$")
_GROUP_QUERY = re.compile(
    r"^/(?:v1\.0/|beta/)?groups/([^/?]+)/(transitiveMembers|members|owners)(?:/microsoft\.graph\.user)?/?(?:\?.*)?$"
)
_SP_OWNERS_QUERY = re.compile(
    r"^/(?:v1\.0/|beta/)?(servicePrincipals|applications)/([^/?]+)/owners/?(?:\?.*)?$"
)


class Tenant:
    """One emulated Entra ID tenant. Not thread-safe: use it from the event loop."""

    def __init__(self, *, tenant_id: str, clock: Clock, display_name: str = "Contoso") -> None:
        self.tenant_id = tenant_id
        self.display_name = display_name
        self.clock = clock
        self.users: dict[str, User] = {}
        self._users_by_upn: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.service_principals: dict[str, ServicePrincipal] = {}
        self.applications: dict[str, Application] = {}
        self.definitions: dict[str, Definition] = {}
        self.instances: dict[str, Instance] = {}
        self.teams_apps: dict[str, TeamsApp] = {}
        self.installations: dict[str, dict[str, Installation]] = {}  # user id → id → install
        self.sent_reminders: list[tuple[str, datetime]] = []
        # Bumped on every directory change so cached reviewer resolutions stay right.
        self._directory_version = 0
        self._assignment_cache: dict[tuple[str, int], tuple[int, dict[str, list[str]]]] = {}
        self._transitive_cache: dict[str, tuple[int, frozenset[str]]] = {}
        self._next_transition_at: datetime | None = None
        self._install_counter = itertools.count(1)

    # ------------------------------------------------------------------ directory mutation
    def directory_changed(self) -> None:
        """Invalidate cached reviewer resolutions (call after editing directory objects)."""
        self._directory_version += 1

    def add_user(self, user: User) -> User:
        """Add (or replace) a user."""
        self.users[user.id] = user
        self._users_by_upn[user.user_principal_name.lower()] = user
        self.directory_changed()
        return user

    def add_group(self, group: Group) -> Group:
        """Add (or replace) a group."""
        self.groups[group.id] = group
        self.directory_changed()
        return group

    def add_service_principal(self, sp: ServicePrincipal) -> ServicePrincipal:
        """Add (or replace) a service principal."""
        self.service_principals[sp.id] = sp
        self.directory_changed()
        return sp

    def add_application(self, app: Application) -> Application:
        """Add (or replace) an app registration."""
        self.applications[app.id] = app
        self.directory_changed()
        return app

    def add_teams_app(self, app: TeamsApp) -> TeamsApp:
        """Add an app to the Teams catalog."""
        self.teams_apps[app.id] = app
        return app

    def find_user(self, id_or_upn: str) -> User | None:
        """Look a user up by object id or UPN (case-insensitive), as ``/users/{id}`` does."""
        return self.users.get(id_or_upn) or self._users_by_upn.get(id_or_upn.lower())

    def user_summary(self, id_or_upn: str) -> dict[str, Any] | None:
        """``{"id", "userPrincipalName", "displayName", "accountEnabled"}`` or None (the
        Identity's user lookup)."""
        user = self.find_user(id_or_upn)
        if user is None:
            return None
        return {
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "displayName": user.display_name,
            "accountEnabled": user.account_enabled,
        }

    def directory_object(self, object_id: str) -> User | Group | ServicePrincipal | None:
        """Any directory object by id."""
        return (
            self.users.get(object_id)
            or self.groups.get(object_id)
            or self.service_principals.get(object_id)
        )

    def transitive_members(self, group_id: str) -> frozenset[str]:
        """Ids of every non-group member of a group, through nested groups (cycle-safe)."""
        cached = self._transitive_cache.get(group_id)
        if cached is not None and cached[0] == self._directory_version:
            return cached[1]
        seen_groups: set[str] = set()
        members: set[str] = set()
        stack = [group_id]
        while stack:
            gid = stack.pop()
            if gid in seen_groups:
                continue
            seen_groups.add(gid)
            group = self.groups.get(gid)
            if group is None:
                continue
            for member_id in group.member_ids:
                if member_id in self.groups:
                    stack.append(member_id)
                else:
                    members.add(member_id)
        result = frozenset(members)
        self._transitive_cache[group_id] = (self._directory_version, result)
        return result

    def transitive_member_objects(self, group_id: str) -> list[str]:
        """Ids of all transitive members including nested groups themselves (Graph's
        ``transitiveMembers`` lists groups too)."""
        seen: set[str] = set()
        ordered: list[str] = []
        stack = list(reversed(self.groups[group_id].member_ids)) if group_id in self.groups else []
        while stack:
            member_id = stack.pop()
            if member_id in seen:
                continue
            seen.add(member_id)
            ordered.append(member_id)
            nested = self.groups.get(member_id)
            if nested is not None:
                stack.extend(reversed(nested.member_ids))
        return ordered

    # ------------------------------------------------------------------ Teams installs
    def installations_for(self, user_id: str) -> dict[str, Installation]:
        """The user's personal-scope installations by installation id."""
        return self.installations.setdefault(user_id, {})

    def install_app(self, user_id: str, teams_app_id: str, chat_id: str) -> Installation:
        """Install a catalog app for a user (409 if already installed, like Graph)."""
        installs = self.installations_for(user_id)
        for existing in installs.values():
            if existing.teams_app_id == teams_app_id:
                raise TenantError(409, "Conflict", "App is already installed for this user.")
        # Graph's installation ids are base64 of "{userId}##{teamsAppId}" (URL-safe here,
        # plus a counter so a reinstall after removal gets a new id).
        raw = f"{user_id}##{teams_app_id}##{next(self._install_counter)}"
        install_id = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        install = Installation(
            id=install_id, user_id=user_id, teams_app_id=teams_app_id, chat_id=chat_id
        )
        installs[install_id] = install
        return install

    # ------------------------------------------------------------------ reviews: creation
    def add_review(self, definition: Definition, instances: Iterable[Instance]) -> Definition:
        """Add a definition and its instances (a review created "later" in tests or the demo).

        Multi-stage instances get their stages built from ``definition.stage_settings``.
        """
        self.definitions[definition.id] = definition
        for instance in instances:
            if definition.stage_settings and not instance.stages:
                self._build_stages(definition, instance)
            self.instances[instance.id] = instance
            definition.instance_ids.append(instance.id)
        self._next_transition_at = None  # recompute on next refresh
        self.refresh()
        return definition

    def add_decision(self, instance_id: str, decision: Decision) -> Decision:
        """Add a decision item to an existing instance (e.g. a new member joined the group)."""
        instance = self._instance_by_id(instance_id)
        instance.decisions[decision.id] = decision
        self._assignment_cache.clear()
        return decision

    def _build_stages(self, definition: Definition, instance: Instance) -> None:
        elapsed_days = 0
        for index, settings in enumerate(definition.stage_settings):
            start = instance.start + timedelta(days=elapsed_days)
            elapsed_days += settings.duration_in_days
            # endDateTime is cumulative from the instance start (stages run in sequence).
            end = instance.start + timedelta(days=elapsed_days)
            stage_id = (
                f"{instance.id[:-4]}{index + 1:04x}"
                if len(instance.id) == 36
                else f"{instance.id}-stage{index + 1}"
            )
            instance.stages.append(
                Stage(id=stage_id, index=index, settings=settings, start=start, end=end)
            )
        instance.end = instance.stages[-1].end

    # ------------------------------------------------------------------ lookups
    def definition(self, definition_id: str) -> Definition:
        """A definition or 404."""
        found = self.definitions.get(definition_id)
        if found is None:
            raise TenantError(
                404, "NotFound", f"Access review schedule definition '{definition_id}' not found."
            )
        return found

    def instance(self, definition_id: str, instance_id: str) -> Instance:
        """An instance of a definition or 404."""
        self.definition(definition_id)
        found = self.instances.get(instance_id)
        if found is None or found.definition_id != definition_id:
            raise TenantError(404, "NotFound", f"Access review instance '{instance_id}' not found.")
        return found

    def stage(self, instance: Instance, stage_id: str) -> Stage:
        """A started stage of an instance or 404."""
        for stage in self.visible_stages(instance):
            if stage.id == stage_id:
                return stage
        raise TenantError(404, "NotFound", f"Access review stage '{stage_id}' not found.")

    def decision(
        self, instance: Instance, decision_id: str, stage: Stage | None = None
    ) -> Decision:
        """A decision of an instance (or of a stage) or 404."""
        found = instance.decisions.get(decision_id)
        if found is None or (stage is not None and found.stage_index < stage.index):
            raise TenantError(
                404, "NotFound", f"Access review decision item '{decision_id}' not found."
            )
        return found

    # ------------------------------------------------------------------ time
    def now(self) -> datetime:
        """The tenant clock's time."""
        return self.clock.now()

    def instance_status(self, instance: Instance, now: datetime | None = None) -> str:
        """NotStarted → InProgress → Completed, following the clock (or an early stop)."""
        now = now or self.now()
        if now < instance.start:
            return "NotStarted"
        if now >= instance.actual_end():
            return "Completed"
        return "InProgress"

    def stage_status(self, stage: Stage, now: datetime | None = None) -> str:
        """A stage's status following the clock."""
        now = now or self.now()
        if now < stage.start:
            return "NotStarted"
        if now >= stage.actual_end():
            return "Completed"
        return "InProgress"

    def definition_status(self, definition: Definition, now: datetime | None = None) -> str:
        """InProgress while any instance runs; Completed when all ended; else NotStarted."""
        statuses = {
            self.instance_status(self.instances[iid], now) for iid in definition.instance_ids
        }
        if "InProgress" in statuses:
            return "InProgress"
        if statuses and statuses == {"Completed"}:
            return "Completed"
        return "NotStarted"

    def visible_stages(self, instance: Instance, now: datetime | None = None) -> list[Stage]:
        """Stages that exist: the first always, later ones once they have started (Graph
        creates a stage only when the previous one ends)."""
        now = now or self.now()
        return [s for s in instance.stages if s.index == 0 or s.start <= now]

    def active_stage(self, instance: Instance, now: datetime | None = None) -> Stage | None:
        """The running stage of a multi-stage instance, if any."""
        now = now or self.now()
        for stage in instance.stages:
            if self.stage_status(stage, now) == "InProgress":
                return stage
        return None

    def refresh(self) -> None:
        """Apply every transition that is due at the clock's current time.

        Cheap when nothing is due: it remembers the earliest future transition.
        """
        now = self.now()
        if self._next_transition_at is not None and now < self._next_transition_at:
            return
        next_at: datetime | None = None
        for instance in self.instances.values():
            if instance.finalized:
                continue
            for stage in instance.stages:
                if stage.finalized:
                    continue
                if now >= stage.actual_end():
                    self._finish_stage(instance, stage)
                else:
                    next_at = (
                        stage.actual_end() if next_at is None else min(next_at, stage.actual_end())
                    )
                    break
            if now >= instance.actual_end():
                self._finish_instance(instance)
            else:
                end = instance.actual_end()
                next_at = end if next_at is None else min(next_at, end)
        self._next_transition_at = next_at

    def _finish_stage(self, instance: Instance, stage: Stage) -> None:
        stage.finalized = True
        ended_at = stage.actual_end()
        if stage.index + 1 >= len(instance.stages):
            return  # the last stage's end is the instance's end
        moving = set(stage.settings.decisions_that_will_move_to_next_stage)
        next_stage = instance.stages[stage.index + 1]
        # The next stage starts when this one ends (earlier if this one was stopped).
        next_stage.start = ended_at
        moved = 0
        for item in instance.decisions.values():
            if item.stage_index != stage.index:
                continue
            outcome = item.decision
            recommendation_moves = "Recommendation" in moving and item.recommendation in {
                "Approve",
                "Deny",
            }
            if outcome in moving or (outcome == "NotReviewed" and recommendation_moves):
                if item.history is None:
                    item.history = []
                item.history.append(
                    StageOutcome(
                        stage.index,
                        item.decision,
                        item.justification,
                        item.reviewed_by,
                        item.reviewed_at,
                    )
                )
                item.decision = "NotReviewed"
                item.justification = ""
                item.reviewed_by = None
                item.reviewed_at = None
                item.stage_index = stage.index + 1
                moved += 1
        self._assignment_cache.clear()
        log.info(
            "instance %s stage %s ended; %d item(s) moved to stage %s",
            instance.id,
            stage.settings.stage_id,
            moved,
            next_stage.settings.stage_id,
        )

    def _finish_instance(self, instance: Instance) -> None:
        instance.finalized = True
        for stage in instance.stages:
            stage.finalized = True
        definition = self.definitions[instance.definition_id]
        settings = definition.settings
        ended_at = instance.actual_end()
        last_index = len(instance.stages) - 1 if instance.stages else 0
        if settings.default_decision_enabled and settings.default_decision != "None":
            for item in instance.decisions.values():
                if item.decision != "NotReviewed" or item.stage_index != last_index:
                    continue
                if settings.default_decision == "Recommendation":
                    if item.recommendation not in {"Approve", "Deny"}:
                        continue
                    item.decision = item.recommendation
                else:
                    item.decision = settings.default_decision
                item.reviewed_by = SYSTEM_ACTOR
                item.reviewed_at = ended_at
        if settings.auto_apply_decisions_enabled:
            self._apply(instance, SYSTEM_ACTOR, ended_at)
        log.info("instance %s ended at %s", instance.id, ended_at.isoformat())

    def _apply(self, instance: Instance, actor: Actor, at: datetime) -> None:
        instance.applied = True
        for item in instance.decisions.values():
            if item.apply_result != "New" or item.decision not in {"Approve", "Deny"}:
                continue
            item.applied_by = actor
            item.applied_at = at
            item.apply_result = "AppliedSuccessfully"
            resource = item.resource
            if item.decision == "Deny" and resource is not None:
                group = self.groups.get(resource.id)
                if group is not None:
                    if item.principal_id in group.member_ids:
                        group.member_ids.remove(item.principal_id)
                        self.directory_changed()
                    else:
                        # Access through a nested group cannot be removed from this group.
                        item.apply_result = "AppliedSuccessfullyButObjectNotFound"

    # ------------------------------------------------------------------ reviewer resolution
    def _resolve_scopes(self, scopes: Iterable[ReviewerScope], decision: Decision) -> set[str]:
        reviewers: set[str] = set()
        for scope in scopes:
            reviewers |= self._resolve_scope(scope, decision)
        return {r for r in reviewers if r in self.users}

    def _resolve_scope(self, scope: ReviewerScope, decision: Decision) -> set[str]:
        query = scope.query.strip()
        if query == "./manager":
            principal = self.users.get(decision.principal_id)
            return {principal.manager_id} if principal and principal.manager_id else set()
        if query == "./owners":
            return set(self._resource_owners(decision.resource))
        if match := _USERS_QUERY.match(query):
            user = self.find_user(match.group(1))
            return {user.id} if user else set()
        if match := _GROUP_QUERY.match(query):
            group_id, relation = match.group(1), match.group(2)
            group = self.groups.get(group_id)
            if group is None:
                return set()
            if relation == "owners":
                ids = set(group.owner_ids)
            elif relation == "members":
                ids = set(group.member_ids)
            else:
                ids = set(self.transitive_members(group_id))
            if "userType eq 'Member'" in query:
                ids = {i for i in ids if (u := self.users.get(i)) and u.user_type == "Member"}
            return ids
        if match := _SP_OWNERS_QUERY.match(query):
            kind, object_id = match.group(1), match.group(2)
            owner_source = (
                self.service_principals.get(object_id)
                if kind == "servicePrincipals"
                else self.applications.get(object_id)
            )
            return set(owner_source.owner_ids) if owner_source else set()
        log.warning("unsupported reviewer query %r; it resolves to nobody", query)
        return set()

    def _resource_owners(self, resource: ReviewResource | None) -> list[str]:
        if resource is None:
            return []
        if (group := self.groups.get(resource.id)) is not None:
            return group.owner_ids
        if (sp := self.service_principals.get(resource.id)) is not None:
            return sp.owner_ids
        if (app := self.applications.get(resource.id)) is not None:
            return app.owner_ids
        return []

    def _scopes_for(
        self, instance: Instance, stage_index: int | None
    ) -> tuple[tuple[ReviewerScope, ...], tuple[ReviewerScope, ...]]:
        if instance.stages and stage_index is not None:
            settings = instance.stages[stage_index].settings
            return settings.reviewers, settings.fallback_reviewers or instance.fallback_reviewers
        return instance.reviewers, instance.fallback_reviewers

    def reviewers_of(
        self, instance: Instance, decision: Decision, stage_index: int | None = None
    ) -> frozenset[str]:
        """User ids who review ``decision`` (in ``stage_index`` for multi-stage instances).

        ``reviewers: []`` means self-review by the principal; fallback reviewers apply when the
        primary scopes resolve to nobody (no manager, no owner, empty group).
        """
        if instance.stages and stage_index is None:
            stage_index = decision.stage_index
        primary, fallback = self._scopes_for(instance, stage_index)
        if not primary:
            if decision.principal_kind == "user" and decision.principal_id in self.users:
                return frozenset({decision.principal_id})
            resolved: set[str] = set()
        else:
            resolved = self._resolve_scopes(primary, decision)
        if not resolved:
            resolved = self._resolve_scopes(fallback, decision)
        return frozenset(resolved)

    def assignments(
        self, instance: Instance, stage_index: int | None = None
    ) -> dict[str, list[str]]:
        """Reviewer id → decision ids they review, for the instance or one stage (cached).

        For a multi-stage instance without ``stage_index``, the stage each item is in counts.
        """
        key = (instance.id, -1 if stage_index is None else stage_index)
        cached = self._assignment_cache.get(key)
        if cached is not None and cached[0] == self._directory_version:
            return cached[1]
        result: dict[str, list[str]] = {}
        # Most reviews share one reviewer set for many items (specific users, group members):
        # resolve each distinct (principal-independent) case once.
        for item in instance.decisions.values():
            if stage_index is not None and item.stage_index < stage_index:
                continue
            for reviewer_id in self.reviewers_of(instance, item, stage_index):
                result.setdefault(reviewer_id, []).append(item.id)
        self._assignment_cache[key] = (self._directory_version, result)
        return result

    def reviewer_decision_ids(
        self, instance: Instance, user_id: str, stage_index: int | None = None
    ) -> list[str]:
        """Decision ids ``user_id`` reviews in the instance (or stage)."""
        return self.assignments(instance, stage_index).get(user_id, [])

    def is_reviewer_of_instance(self, instance: Instance, user_id: str) -> bool:
        """Whether the user reviews at least one item of the instance."""
        return bool(self.reviewer_decision_ids(instance, user_id))

    def contacted_reviewers(self, instance: Instance) -> list[tuple[User, datetime]]:
        """The people Graph would contact: every resolved reviewer of the current stage."""
        stage = self.active_stage(instance)
        stage_index = stage.index if stage else None
        if instance.stages and stage is None:
            stage_index = max((s.index for s in self.visible_stages(instance)), default=0)
        contacted_at = (
            instance.stages[stage_index].start
            if instance.stages and stage_index is not None
            else instance.start
        )
        ids = sorted(self.assignments(instance, stage_index))
        return [(self.users[i], contacted_at) for i in ids if i in self.users]

    # ------------------------------------------------------------------ writes
    def _actor(self, user_id: str, upn: str | None = None) -> Actor:
        user = self.find_user(user_id)
        if user is None:
            return (user_id, "", upn or "")
        return (user.id, user.display_name, user.user_principal_name)

    def _writable_stage_index(self, instance: Instance, stage: Stage | None) -> int | None:
        if not instance.stages:
            if stage is not None:
                raise TenantError(404, "NotFound", "This review has no stages.")
            return None
        active = self.active_stage(instance)
        if active is None:
            raise TenantError(400, "BadRequest", "No stage of this review is in progress.")
        if stage is not None and stage.id != active.id:
            raise TenantError(
                400,
                "BadRequest",
                f"Stage '{stage.id}' is not the active stage; decisions can only be "
                "recorded in the active stage.",
            )
        return active.index

    def _check_in_progress(self, instance: Instance) -> None:
        self.refresh()
        status = self.instance_status(instance)
        if status != "InProgress":
            # Emulator choice: Graph does not document the exact error for writes to an
            # ended review; 400 BadRequest with a clear message.
            raise TenantError(
                400,
                "BadRequest",
                f"The access review instance is {status}; decisions can only be "
                "recorded while it is InProgress.",
            )

    def _validate_decision(self, instance: Instance, decision: str, justification: str) -> None:
        if decision not in DECISION_VALUES:
            raise TenantError(
                400,
                "BadRequest",
                f"Invalid decision '{decision}'. Expected one of: Approve, Deny, "
                "NotReviewed, DontKnow.",
            )
        settings = self.definitions[instance.definition_id].settings
        # The setting is "justification required on approval": only Approve needs it.
        if (
            settings.justification_required_on_approval
            and decision == "Approve"
            and not justification.strip()
        ):
            raise TenantError(
                400, "BadRequest", "Justification is required to approve in this access review."
            )

    def _set(self, item: Decision, decision: str, justification: str, actor: Actor) -> None:
        if item.apply_result != "New":
            raise TenantError(400, "BadRequest", "Applied decisions cannot be changed.")
        item.decision = decision
        item.justification = justification
        if decision == "NotReviewed":
            item.reviewed_by = None
            item.reviewed_at = None
        else:
            item.reviewed_by = actor
            item.reviewed_at = self.now()

    def record_decision(
        self,
        instance_id: str,
        decision_id: str,
        decision: str,
        by_user_oid: str,
        justification: str = "",
        *,
        stage_id: str | None = None,
        by_upn: str | None = None,
    ) -> Decision:
        """Record one decision as reviewer ``by_user_oid`` (Graph PATCH, or "as if in My Access").

        Enforces what Graph enforces: the instance is running, the caller reviews the item in
        the active stage, the decision value, and the justification when required.
        """
        instance = self._instance_by_id(instance_id)
        self._check_in_progress(instance)
        stage = self.stage(instance, stage_id) if stage_id is not None else None
        stage_index = self._writable_stage_index(instance, stage)
        item = self.decision(instance, decision_id, stage)
        if stage_index is not None and item.stage_index != stage_index:
            raise TenantError(
                403, "Forbidden", "This decision item is not part of the active stage."
            )
        if by_user_oid not in self.reviewers_of(instance, item, stage_index):
            raise TenantError(
                403,
                "Forbidden",
                "The caller is not a reviewer of this access review decision item.",
            )
        self._validate_decision(instance, decision, justification)
        self._set(item, decision, justification, self._actor(by_user_oid, by_upn))
        return item

    def _instance_by_id(self, instance_id: str) -> Instance:
        instance = self.instances.get(instance_id)
        if instance is None:
            raise TenantError(404, "NotFound", f"Access review instance '{instance_id}' not found.")
        return instance

    def _caller_items(self, instance: Instance, user_id: str) -> Iterator[Decision]:
        stage_index = self._writable_stage_index(instance, None)
        for decision_id in self.reviewer_decision_ids(instance, user_id, stage_index):
            item = instance.decisions[decision_id]
            if stage_index is None or item.stage_index == stage_index:
                yield item

    def batch_record_decisions(
        self,
        instance_id: str,
        by_user_oid: str,
        decision: str,
        justification: str = "",
        *,
        principal_id: str | None = None,
        resource_id: str | None = None,
        by_upn: str | None = None,
    ) -> int:
        """``batchRecordDecisions``: decide every item of the caller (optionally one principal or
        resource). Returns how many items changed."""
        instance = self._instance_by_id(instance_id)
        self._check_in_progress(instance)
        self._validate_decision(instance, decision, justification)
        actor = self._actor(by_user_oid, by_upn)
        changed = 0
        for item in list(self._caller_items(instance, by_user_oid)):
            if principal_id is not None and item.principal_id != principal_id:
                continue
            if resource_id is not None and (
                item.resource is None or item.resource.id != resource_id
            ):
                continue
            if item.apply_result != "New":
                continue
            self._set(item, decision, justification, actor)
            changed += 1
        return changed

    def accept_recommendations(
        self, instance_id: str, by_user_oid: str, by_upn: str | None = None
    ) -> int:
        """``acceptRecommendations``: the caller's undecided items take their recommendation."""
        instance = self._instance_by_id(instance_id)
        self._check_in_progress(instance)
        actor = self._actor(by_user_oid, by_upn)
        changed = 0
        for item in list(self._caller_items(instance, by_user_oid)):
            if item.decision == "NotReviewed" and item.recommendation in {"Approve", "Deny"}:
                self._set(item, item.recommendation, "", actor)
                changed += 1
        return changed

    def stop_instance(self, instance_id: str) -> None:
        """``stop``: end the instance now (default decisions and auto-apply then run)."""
        instance = self._instance_by_id(instance_id)
        self._check_in_progress(instance)
        now = self.now()
        instance.stopped_at = now
        for stage in instance.stages:
            if stage.stopped_at is None and stage.end > now:
                stage.stopped_at = now
        self._next_transition_at = None
        self.refresh()

    def stop_stage(self, instance_id: str, stage_id: str) -> None:
        """Stop the active stage early; the next stage (if any) starts now."""
        instance = self._instance_by_id(instance_id)
        self._check_in_progress(instance)
        stage = self.stage(instance, stage_id)
        if self.stage_status(stage) != "InProgress":
            raise TenantError(400, "BadRequest", "Only an active stage can be stopped.")
        stage.stopped_at = self.now()
        if stage.index == len(instance.stages) - 1:
            instance.stopped_at = stage.stopped_at
        self._next_transition_at = None
        self.refresh()

    def apply_decisions(self, instance_id: str, by_user_oid: str | None) -> None:
        """``applyDecisions``: only for a Completed instance."""
        instance = self._instance_by_id(instance_id)
        self.refresh()
        if self.instance_status(instance) != "Completed":
            raise TenantError(
                400, "BadRequest", "Decisions can be applied only when the instance is Completed."
            )
        actor = self._actor(by_user_oid) if by_user_oid else SYSTEM_ACTOR
        self._apply(instance, actor, self.now())

    def reset_decisions(self, instance_id: str) -> None:
        """``resetDecisions``: every item of the running instance back to NotReviewed."""
        instance = self._instance_by_id(instance_id)
        self._check_in_progress(instance)
        active = self.active_stage(instance)
        for item in instance.decisions.values():
            if active is not None and item.stage_index != active.index:
                continue
            item.decision = "NotReviewed"
            item.justification = ""
            item.reviewed_by = None
            item.reviewed_at = None

    def send_reminder(self, instance_id: str) -> None:
        """``sendReminder``: recorded (the emulator sends no email)."""
        instance = self._instance_by_id(instance_id)
        self._check_in_progress(instance)
        now = self.now()
        instance.reminders_sent_at.append(now)
        self.sent_reminders.append((instance_id, now))

    # ------------------------------------------------------------------ convenience
    def pending_count(self) -> int:
        """How many decisions are NotReviewed in running instances (for tests and benches)."""
        now = self.now()
        return sum(
            1
            for instance in self.instances.values()
            if self.instance_status(instance, now) == "InProgress"
            for item in instance.decisions.values()
            if item.decision == "NotReviewed"
        )

    def stats(self) -> Mapping[str, int]:
        """Object counts."""
        return {
            "users": len(self.users),
            "groups": len(self.groups),
            "servicePrincipals": len(self.service_principals),
            "definitions": len(self.definitions),
            "instances": len(self.instances),
            "decisions": sum(len(i.decisions) for i in self.instances.values()),
        }
