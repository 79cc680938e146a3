"""The emulator's in-memory Entra ID tenant: directory objects, access reviews and Teams apps.

The tenant is the single source of truth behind the Graph routes (``emulator.graph``). It holds
the data (:mod:`emulator.model`) and the rules Microsoft applies to it: reviewer resolution, who
may decide, who may run a review's admin actions, and the time-driven lifecycle of instances,
stages and recurrences (:mod:`emulator.lifecycle`); the wire shapes live in ``emulator.graph``.

Time: everything that depends on time reads the injected :class:`~emulator.clock.Clock`.
:meth:`Tenant.refresh` applies due transitions (stage ends, default decisions, applying, the next
recurrence of a recurring review); the Graph app calls it at the start of each request, and tests
may call it directly.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

from emulator.clock import Clock
from emulator.directory import Directory
from emulator.lifecycle import (
    INSTANCE_LEAD,
    applied_at,
    defaults_recorded_at,
    instance_status,
    is_recurring,
    next_occurrence_start,
    occurrence_decision_id,
    occurrence_instance_id,
    recommendation_for,
)
from emulator.model import (
    AAD_ACCESS_REVIEWS,
    DECISION_VALUES,
    RECOMMENDATION_VALUES,
    SYSTEM_ACTOR,
    ZERO_GUID,
    Actor,
    Application,
    Decision,
    Definition,
    Group,
    Installation,
    Instance,
    MailboxSettings,
    PrincipalKind,
    ReviewerScope,
    ReviewResource,
    ReviewSettings,
    ServicePrincipal,
    Stage,
    StageOutcome,
    StageSettings,
    TeamsApp,
    TenantError,
    User,
)

__all__ = [
    "AAD_ACCESS_REVIEWS",
    "DECISION_VALUES",
    "RECOMMENDATION_VALUES",
    "REVIEW_ADMIN_ROLES",
    "ROLE_REVIEW_ADMIN_ROLES",
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

#: Recurrences created in one refresh at most (a clock moved years ahead must not spin).
_MAX_CATCH_UP = 100
#: "Nothing scheduled": refresh need not look again until something changes the schedule.
_NEVER = datetime.max.replace(tzinfo=UTC)

#: Entra roles that may run a review's admin actions (stop, sendReminder, applyDecisions,
#: resetDecisions) as a delegated caller (includes/rbac-for-apis/rbac-access-reviews-apis-write.md):
#: reviews of a group or app, and reviews of a Microsoft Entra role.
REVIEW_ADMIN_ROLES = frozenset(
    {"User Administrator", "Identity Governance Administrator", "Global Administrator"}
)
ROLE_REVIEW_ADMIN_ROLES = frozenset(
    {"Identity Governance Administrator", "Privileged Role Administrator", "Global Administrator"}
)


_USERS_QUERY = re.compile(r"^/(?:v1\.0/|beta/)?users/([^/?]+)$")
_GROUP_QUERY = re.compile(
    r"^/(?:v1\.0/|beta/)?groups/([^/?]+)/(transitiveMembers|members|owners)(?:/microsoft\.graph\.user)?/?(?:\?.*)?$"
)
_SP_OWNERS_QUERY = re.compile(
    r"^/(?:v1\.0/|beta/)?(servicePrincipals|applications)/([^/?]+)/owners/?(?:\?.*)?$"
)


class Tenant(Directory):
    """One emulated Entra ID tenant: its directory (:class:`emulator.directory.Directory`), access
    reviews and Teams apps. Not thread-safe: use it from the event loop."""

    def __init__(self, *, tenant_id: str, clock: Clock, display_name: str = "Contoso") -> None:
        super().__init__()
        self.tenant_id = tenant_id
        self.display_name = display_name
        self.clock = clock
        self.definitions: dict[str, Definition] = {}
        self.instances: dict[str, Instance] = {}
        self.sent_reminders: list[tuple[str, datetime]] = []
        self._assignment_cache: dict[tuple[str, int], tuple[int, dict[str, list[str]]]] = {}
        self._next_transition_at: datetime | None = None

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
        """The instance's status on the clock (:mod:`emulator.lifecycle` has the timeline)."""
        settings = self.definitions[instance.definition_id].settings
        return instance_status(instance, settings, now or self.now())

    def stage_status(self, stage: Stage, now: datetime | None = None) -> str:
        """A stage's status following the clock."""
        now = now or self.now()
        if now < stage.start:
            return "NotStarted"
        if now >= stage.actual_end():
            return "Completed"
        return "InProgress"

    def definition_status(self, definition: Definition, now: datetime | None = None) -> str:
        """InProgress while any instance runs; otherwise the status of the latest recurrence
        (its apply statuses read ``Completed``: they are not in the definition's enum); NotStarted
        before the first one."""
        instances = [self.instances[iid] for iid in definition.instance_ids]
        if not instances:
            return "NotStarted"
        statuses = [self.instance_status(instance, now) for instance in instances]
        if "InProgress" in statuses:
            return "InProgress"
        latest = max(range(len(instances)), key=lambda n: instances[n].start)
        status = statuses[latest]
        return "Completed" if status in {"Applying", "Applied"} else status

    def visible_stages(self, instance: Instance, now: datetime | None = None) -> list[Stage]:
        """Stages that exist: the first always, later ones once they have started (Graph
        creates a stage only when the previous one ends)."""
        now = now or self.now()
        return [s for s in instance.stages if s.index == 0 or s.start <= now]

    def active_stage(self, instance: Instance, now: datetime | None = None) -> Stage | None:
        """The running stage of a multi-stage instance, if any."""
        now = now or self.now()
        if instance.stopped_at is not None and now >= instance.stopped_at:
            return None
        for stage in instance.stages:
            if self.stage_status(stage, now) == "InProgress":
                return stage
        return None

    def refresh(self) -> None:
        """Apply every transition that is due at the clock's current time: stage ends, default
        decisions (entering AutoReviewed), applying (entering Applied) and the creation of the
        next recurrence of a recurring review.

        Cheap when nothing is due: it remembers the earliest future transition.
        """
        now = self.now()
        if self._next_transition_at is not None and now < self._next_transition_at:
            return
        upcoming: list[datetime] = []
        for instance in list(self.instances.values()):
            if instance.finalized:
                continue
            for stage in instance.stages:
                if stage.finalized:
                    continue
                if now >= stage.actual_end():
                    self._finish_stage(instance, stage)
                else:
                    upcoming.append(stage.actual_end())
                    break
            due = self._finish_instance(instance, now)
            if due is not None:
                upcoming.append(due)
        for definition in list(self.definitions.values()):
            due = self._schedule_next(definition, now)
            if due is not None:
                upcoming.append(due)
        self._next_transition_at = min(upcoming, default=_NEVER)

    def _finish_instance(self, instance: Instance, now: datetime) -> datetime | None:
        """Run the end-of-instance effects that are due; when the next one falls due."""
        settings = self.definitions[instance.definition_id].settings
        if now < instance.actual_end():
            return instance.actual_end()
        for stage in instance.stages:
            stage.finalized = True
        defaults_at = defaults_recorded_at(instance, settings)
        if defaults_at is not None and not instance.defaults_recorded:
            if now < defaults_at:
                return defaults_at
            self._record_defaults(instance)
        apply_at = applied_at(instance, settings)
        if apply_at is None:
            # Nothing more happens unless applyDecisions is called (which resets the schedule).
            return None
        if now < apply_at:
            return apply_at
        if not instance.applied:
            self._apply(instance, instance.apply_requested_by or SYSTEM_ACTOR, apply_at)
        instance.finalized = True
        log.info("instance %s applied at %s", instance.id, apply_at.isoformat())
        return None

    def _record_defaults(self, instance: Instance) -> None:
        instance.defaults_recorded = True
        settings = self.definitions[instance.definition_id].settings
        ended_at = instance.actual_end()
        last_index = len(instance.stages) - 1 if instance.stages else 0
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
        log.info("instance %s: default decisions recorded", instance.id)

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

    # ------------------------------------------------------------------ recurrences
    def _schedule_next(self, definition: Definition, now: datetime) -> datetime | None:
        """Create the recurrences that are due (each appears INSTANCE_LEAD before it starts);
        when the next one will be."""
        if not definition.instance_ids or not is_recurring(definition):
            return None
        for _ in range(_MAX_CATCH_UP):
            latest = max(
                (self.instances[iid] for iid in definition.instance_ids), key=lambda i: i.start
            )
            start = next_occurrence_start(definition, latest.start)
            if start is None:
                return None
            if now < start - INSTANCE_LEAD:
                return start - INSTANCE_LEAD
            self._create_occurrence(definition, start)
        return None

    def roll_over(self, definition_id: str) -> Instance:
        """Make a recurring review move on to its next recurrence now (for tests and the demo).

        The running recurrence ends now (Completing, then Completed — and Applying, Applied with
        auto-apply — on the clock); the next one is created at once and starts INSTANCE_LEAD
        later (NotStarted, Initializing, Starting, then InProgress). Later recurrences follow the
        pattern from the new one's start. Returns the new instance.
        """
        definition = self.definition(definition_id)
        if not is_recurring(definition):
            raise TenantError(400, "BadRequest", f"Access review '{definition_id}' does not recur.")
        self.refresh()
        now = self.now()
        for instance_id in definition.instance_ids:
            instance = self.instances[instance_id]
            if self.instance_status(instance, now) == "InProgress":
                self._end_now(instance, now)
        instance = self._create_occurrence(definition, now + INSTANCE_LEAD)
        self._next_transition_at = None
        self.refresh()
        return instance

    def _create_occurrence(self, definition: Definition, start: datetime) -> Instance:
        occurrence = len(definition.instance_ids)
        instance_id = occurrence_instance_id(definition.id, occurrence)
        days = sum(s.duration_in_days for s in definition.stage_settings) or (
            definition.settings.instance_duration_in_days
        )
        reviewers = (
            definition.stage_settings[0].reviewers
            if definition.stage_settings
            else definition.reviewers
        )
        instance = Instance(
            id=instance_id,
            definition_id=definition.id,
            start=start,
            end=start + timedelta(days=days),
            scope=definition.scope,
            reviewers=reviewers,
            fallback_reviewers=definition.fallback_reviewers,
            occurrence=occurrence,
        )
        for principal_id, kind, membership in self._principals_for(definition):
            user = self.users.get(principal_id)
            decision_id = occurrence_decision_id(instance_id, principal_id)
            instance.decisions[decision_id] = Decision(
                id=decision_id,
                principal_id=principal_id,
                principal_kind=kind,
                resource=definition.resource,
                recommendation=recommendation_for(user.last_sign_in if user else None, start),
                membership_type=membership,
            )
        if definition.stage_settings:
            self._build_stages(definition, instance)
        self.instances[instance.id] = instance
        definition.instance_ids.append(instance.id)
        log.info(
            "access review %s: recurrence %d (%s) starts %s with %d item(s)",
            definition.id,
            occurrence,
            instance.id,
            start.isoformat(),
            len(instance.decisions),
        )
        return instance

    def _principals_for(
        self, definition: Definition
    ) -> list[tuple[str, PrincipalKind, str | None]]:
        """Who a new recurrence reviews: a group's members as they are now (so access removed by
        an applied Deny is gone), else the definition's principals."""
        resource = definition.resource
        group = self.groups.get(resource.id) if resource is not None else None
        if resource is None or group is None or resource.type.lower() != "group":
            return [(pid, kind, None) for pid, kind in definition.principals]
        direct = [m for m in group.member_ids if m not in self.groups]
        nested = sorted(self.transitive_members(group.id) - set(direct))
        found: list[tuple[str, PrincipalKind, str | None]] = []
        for principal_id, membership in [(d, "direct") for d in direct] + [
            (n, "indirect") for n in nested
        ]:
            if principal_id in self.users:
                found.append((principal_id, "user", membership))
            elif principal_id in self.service_principals:
                found.append((principal_id, "servicePrincipal", membership))
        return found

    def current_instance(self, definition_id: str) -> Instance | None:
        """The recurrence of a definition that is InProgress now, if any."""
        for instance_id in self.definition(definition_id).instance_ids:
            instance = self.instances[instance_id]
            if self.instance_status(instance) == "InProgress":
                return instance
        return None

    # ------------------------------------------------------------------ who may run admin actions
    def admin_roles_for(self, instance: Instance) -> frozenset[str]:
        """The Entra roles a delegated caller needs for the instance's admin actions: a review of
        Microsoft Entra roles needs the role-review set, any other review the group/app set."""
        definition = self.definitions[instance.definition_id]
        resources = [definition.resource] + [d.resource for d in instance.decisions.values()]
        if any(r is not None and r.type.lower() == "directoryrole" for r in resources):
            return ROLE_REVIEW_ADMIN_ROLES
        return REVIEW_ADMIN_ROLES

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
        """``stop``: end the instance now. It goes through Completing (and AutoReviewing with
        default decisions) to Completed, then Applying and Applied with auto-apply."""
        instance = self._instance_by_id(instance_id)
        self._check_in_progress(instance)
        self._end_now(instance, self.now())
        self._next_transition_at = None
        self.refresh()

    def _end_now(self, instance: Instance, now: datetime) -> None:
        instance.stopped_at = now
        for stage in instance.stages:
            if stage.stopped_at is None and stage.end > now:
                stage.stopped_at = now

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
        """``applyDecisions``: only for a Completed instance ("The status of the
        accessReviewInstance must be Completed"); Applying now, Applied one PHASE later."""
        instance = self._instance_by_id(instance_id)
        self.refresh()
        status = self.instance_status(instance)
        if status != "Completed":
            raise TenantError(
                400,
                "BadRequest",
                f"The access review instance is {status}; decisions can be applied only when "
                "it is Completed.",
            )
        instance.apply_requested_at = self.now()
        instance.apply_requested_by = self._actor(by_user_oid) if by_user_oid else SYSTEM_ACTOR
        self._next_transition_at = None
        self.refresh()

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
