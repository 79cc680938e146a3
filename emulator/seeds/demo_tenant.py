"""The hand-made ``demo`` tenant: a dozen people and three guests, every reviewer kind, every
resource kind, one-time and recurring reviews (see :func:`demo`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from emulator.clock import Clock
from emulator.lifecycle import (
    add_months,
    occurrence_decision_id,
    occurrence_instance_id,
    recommendation_for,
)
from emulator.seeds.common import (
    DEFAULT_BOT_APP_ID,
    DEMO_DOMAIN,
    DEMO_TENANT_ID,
    demo_id,
    group_scope,
    instance_scope,
    monthly,
    one_time,
    teams_catalog,
)
from emulator.tenant import (
    Application,
    Decision,
    Definition,
    Group,
    Instance,
    MailboxSettings,
    ReviewerScope,
    ReviewResource,
    ReviewSettings,
    ServicePrincipal,
    StageSettings,
    Tenant,
    User,
)

__all__ = ["DEMO_EXPECTED_ASSIGNMENTS", "demo", "demo_decision_id", "demo_instance_id"]

# ---------------------------------------------------------------------------------- demo design
# (key, display name, job title, department, manager key, time zone, days since sign-in, roles)
_DEMO_PEOPLE: tuple[
    tuple[str, str, str, str, str | None, str, int | None, tuple[str, ...]], ...
] = (
    (
        "megan",
        "Megan Bowen",
        "Identity Governance Lead",
        "IT",
        None,
        "Pacific Standard Time",
        0,
        ("Identity Governance Administrator",),
    ),
    (
        "alex",
        "Alex Wilber",
        "Marketing Manager",
        "Marketing",
        "megan",
        "Eastern Standard Time",
        1,
        (),
    ),
    ("adele", "Adele Vance", "Retail Manager", "Retail", "alex", "Eastern Standard Time", 2, ()),
    (
        "lee",
        "Lee Gu",
        "Director of Engineering",
        "Engineering",
        "alex",
        "Pacific Standard Time",
        5,
        (),
    ),
    (
        "diego",
        "Diego Siciliani",
        "HR Manager",
        "HR",
        "megan",
        "W. Europe Standard Time",
        3,
        ("User Administrator",),
    ),
    ("isaiah", "Isaiah Langer", "Sales Rep", "Sales", "diego", "Central Standard Time", 45, ()),
    ("grady", "Grady Archie", "Senior Designer", "R&D", "diego", "GMT Standard Time", 1, ()),
    (
        "nestor",
        "Nestor Wilke",
        "Operations Director",
        "Operations",
        None,
        "AUS Eastern Standard Time",
        10,
        (),
    ),
    ("patti", "Patti Fernandez", "President", "Finance", "megan", "Pacific Standard Time", 0, ()),
    (
        "lidia",
        "Lidia Holloway",
        "Product Manager",
        "Engineering",
        "megan",
        "W. Europe Standard Time",
        4,
        (),
    ),
    (
        "johanna",
        "Johanna Lorenz",
        "Senior Auditor",
        "Compliance",
        "megan",
        "W. Europe Standard Time",
        2,
        (),
    ),
    (
        "henrietta",
        "Henrietta Mueller",
        "Audit Intern",
        "Compliance",
        "johanna",
        "W. Europe Standard Time",
        7,
        (),
    ),
)
# Guests: (key, display name, home domain, days since sign-in or None, sign-in data known).
# Their userPrincipalName is the #EXT# form Entra gives invited guests. Sam never signed in
# (lastUserSignInDateTime ""); for Riley Entra has no sign-in data (null).
_DEMO_GUESTS: tuple[tuple[str, str, str, int | None, bool], ...] = (
    ("jordan", "Jordan Miller (Fabrikam)", "fabrikam.com", 120, True),
    ("sam", "Sam Taylor (Northwind)", "northwind.example", None, True),
    ("riley", "Riley Chen (Tailspin)", "tailspin.example", None, False),
)
#: Recurring demo reviews and the occurrence that is current (or latest) at seeding time.
_DEMO_RECURRING: dict[str, int] = {"azure_contributor": 2, "sales_guests": 1}

#: Who reviews what in the demo tenant at seeding time (the active stage for multi-stage),
#: derived by hand from the design below — reviewer key → review key → principal keys.
_EXPECTED_BY_NAME: dict[str, dict[str, set[str]]] = {
    "patti": {"finance": {"adele", "lee", "jordan"}},  # ./owners of Finance Team
    "alex": {
        "marketing": {"adele"},  # ./manager
        "partner_portal": {"jordan", "sam"},  # specific user
        "engineering": {"lee"},
    },  # stage 1, ./manager
    "diego": {"marketing": {"isaiah"}, "engineering": {"isaiah", "grady"}},
    "megan": {
        "marketing": {"nestor"},  # fallback: Nestor has no manager
        "engineering": {"nestor"},
    },  # stage 1 fallback
    "lee": {"falcon": {"lee"}},  # self-review
    "grady": {
        "falcon": {"grady"},  # self-review
        "azure_contributor": {"lee", "isaiah", "sam", "riley"},
    },  # Security Auditors member
    "henrietta": {"azure_contributor": {"lee", "isaiah", "sam", "riley"}},  # nested Audit Interns
    "lidia": {"expense_portal": {"adele", "diego", "build_agent"}},  # app owner
    "johanna": {"user_admin_role": {"megan", "diego"}},  # specific user
}


def _principal_id(key: str) -> str:
    return demo_id("sp", key) if key == "build_agent" else demo_id("user", key)


def demo_instance_id(review: str) -> str:
    """The id of a demo review's current (or latest) instance: the definition's own id for a
    one-time review, a recurrence's own id for a recurring one."""
    definition_id = demo_id("review", review)
    occurrence = _DEMO_RECURRING.get(review)
    if occurrence is None:
        return definition_id
    return occurrence_instance_id(definition_id, occurrence)


def demo_decision_id(review: str, principal: str) -> str:
    """The id of a principal's decision item in a demo review's current (or latest) instance
    (``principal`` is a demo key, e.g. "adele" or "build_agent")."""
    if review in _DEMO_RECURRING:
        return occurrence_decision_id(demo_instance_id(review), _principal_id(principal))
    return demo_id("decision", f"{review}:{_principal_id(principal)}")


#: reviewer oid → instance id → decision ids, for the running instances at seeding time.
DEMO_EXPECTED_ASSIGNMENTS: Mapping[str, Mapping[str, frozenset[str]]] = {
    demo_id("user", reviewer): {
        demo_instance_id(review): frozenset(demo_decision_id(review, p) for p in principals)
        for review, principals in reviews.items()
    }
    for reviewer, reviews in _EXPECTED_BY_NAME.items()
}


def _sign_in(now: datetime, days_ago: int | None) -> datetime | None:
    if days_ago is None:
        return None
    return (now - timedelta(days=days_ago, hours=3, minutes=17)).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class _PastRecurrence:
    """A recurrence of a demo review: when it started, who was reviewed, and what happened."""

    start: datetime
    principals: tuple[str, ...]
    #: principal key → (decision, reviewer key, justification), recorded two days in.
    decided: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    #: Who called applyDecisions the day after it ended (None: not applied by hand).
    applied_by: str | None = None


def demo(
    clock: Clock, *, bot_app_id: str = DEFAULT_BOT_APP_ID, tenant_id: str = DEMO_TENANT_ID, **_: Any
) -> Tenant:
    """The demo tenant: a dozen people and three guests, every reviewer kind, every resource kind,
    one-time and recurring reviews.

    One-time reviews (their single instance shares the definition's id, as the docs' tutorial
    shows):

    * ``finance`` — Finance Team members, reviewed by the group's owners (``./owners``),
      justification required on approval; closes in 3 days.
    * ``marketing`` — Marketing members, reviewed by each member's manager (``./manager``);
      Nestor has no manager, so the fallback reviewer (Megan) gets his item.
    * ``falcon`` — Project Falcon, self-review (``reviewers: []``); resource type ``Group``.
    * ``expense_portal`` — an application (service principal) review by the app's owners;
      one principal is a service principal (the build agent).
    * ``user_admin_role`` — Entra role (User Administrator) review by a specific user.
    * ``partner_portal`` — an access package assignment policy with guests, by a specific user.
    * ``engineering`` — two stages: stage 1 managers (fallback Megan), stage 2 Johanna, with
      decision history shared with stage 2.

    Recurring reviews (every recurrence has its own instance id):

    * ``azure_contributor`` — monthly: an Azure resource role reviewed by the members of Security
      Auditors (which nests Audit Interns). Two months ago: Completed, never applied; last
      month: Applied (Megan called applyDecisions); this month: InProgress, with Riley (no
      sign-in data) added.
    * ``sales_guests`` — quarterly, default decision Approve, auto-applied: the quarter before
      (Alex approved Jordan) and the last quarter (ended 16 days ago, nobody answered, the
      default applied) are both Applied; the next starts in about two months.

    Roles: Megan is Identity Governance Administrator, Diego User Administrator (he may run
    admin actions on group and app reviews, not on the role review).
    """
    now = clock.now()
    anchor = now.replace(minute=0, second=0, microsecond=0)
    tenant = Tenant(tenant_id=tenant_id, clock=clock, display_name="Contoso")

    def uid(key: str) -> str:
        return demo_id("user", key)

    for key, name, title, dept, manager, tz, days, roles in _DEMO_PEOPLE:
        given, _sep, surname = name.partition(" ")
        upn = f"{given}{surname[:1]}@{DEMO_DOMAIN}".replace(" ", "")
        tenant.add_user(
            User(
                id=uid(key),
                display_name=name,
                user_principal_name=upn,
                mail=upn,
                given_name=given,
                surname=surname,
                job_title=title,
                department=dept,
                manager_id=uid(manager) if manager else None,
                last_sign_in=_sign_in(anchor, days),
                mailbox=MailboxSettings(time_zone=tz),
                directory_roles=frozenset(roles),
                preferred_language="en-US",
            )
        )
    for key, name, domain, days, known in _DEMO_GUESTS:
        local = name.split(" (")[0].lower().replace(" ", ".")
        upn = f"{local}_{domain}#EXT#@{DEMO_DOMAIN}"
        tenant.add_user(
            User(
                id=uid(key),
                display_name=name,
                user_principal_name=upn,
                mail=f"{local}@{domain}",
                user_type="Guest",
                last_sign_in=_sign_in(anchor, days),
                sign_in_known=known,
                mailbox=None,
            )
        )

    def group(
        key: str, name: str, members: list[str], owners: list[str], description: str
    ) -> Group:
        return tenant.add_group(
            Group(
                id=demo_id("group", key),
                display_name=name,
                description=description,
                member_ids=members,
                owner_ids=[uid(o) for o in owners],
                mail_nickname=name.replace(" ", ""),
            )
        )

    group(
        "finance",
        "Finance Team",
        [uid("adele"), uid("lee"), uid("jordan")],
        ["patti"],
        "Access to finance shares and reports",
    )
    group(
        "marketing",
        "Marketing",
        [uid("adele"), uid("isaiah"), uid("nestor")],
        ["alex"],
        "Marketing department",
    )
    group(
        "falcon",
        "Project Falcon",
        [uid("lee"), uid("grady")],
        [],
        "Project Falcon confidential workspace",
    )
    group("interns", "Audit Interns", [uid("henrietta")], ["johanna"], "Audit interns")
    group(
        "auditors",
        "Security Auditors",
        [uid("grady"), demo_id("group", "interns")],
        ["megan"],
        "People who review Azure access",
    )
    group(
        "engineering",
        "Engineering",
        [uid("lee"), uid("isaiah"), uid("grady"), uid("nestor")],
        ["diego"],
        "Engineering source code and build systems",
    )
    group("sales", "Sales Partners", [uid("jordan")], ["alex"], "Guests working with Sales")

    expense_app_id = demo_id("appid", "expense_portal")
    tenant.add_service_principal(
        ServicePrincipal(
            id=demo_id("sp", "expense_portal"),
            app_id=expense_app_id,
            display_name="Expense Portal",
            owner_ids=[uid("lidia")],
        )
    )
    tenant.add_application(
        Application(
            id=demo_id("application", "expense_portal"),
            app_id=expense_app_id,
            display_name="Expense Portal",
            owner_ids=[uid("lidia")],
        )
    )
    tenant.add_service_principal(
        ServicePrincipal(
            id=demo_id("sp", "build_agent"),
            app_id=demo_id("appid", "build_agent"),
            display_name="Contoso Build Agent",
            owner_ids=[uid("diego")],
        )
    )
    teams_catalog(tenant, bot_app_id)

    creator = (uid("megan"), "Megan Bowen", f"MeganB@{DEMO_DOMAIN}")
    fallback_megan = (ReviewerScope(f"/users/{uid('megan')}"),)

    def review(
        key: str,
        name: str,
        *,
        resource: ReviewResource,
        principals: list[str],
        reviewers: tuple[ReviewerScope, ...],
        scope: dict[str, Any],
        start: datetime,
        end: datetime,
        settings: ReviewSettings | None = None,
        fallback: tuple[ReviewerScope, ...] = (),
        stages: tuple[StageSettings, ...] = (),
        description: str = "",
        nested: frozenset[str] = frozenset(),
        every_months: int | None = None,
        past: tuple[_PastRecurrence, ...] = (),
    ) -> None:
        """A one-time review (instance id = definition id), or with ``every_months`` a recurring
        one: the ``past`` recurrences (oldest first) and then the current one, each with its own
        instance id."""
        definition_id = demo_id("review", key)
        settings = settings or ReviewSettings(instance_duration_in_days=(end - start).days)
        first_start = past[0].start if past else start
        definition = Definition(
            id=definition_id,
            display_name=name,
            scope=scope,
            reviewers=reviewers,
            settings=settings,
            created_by=creator,
            created_at=first_start - timedelta(days=1),
            description_for_admins=description,
            description_for_reviewers=description,
            instance_enumeration_scope=None,
            fallback_reviewers=fallback,
            stage_settings=stages,
            recurrence=monthly(first_start, every_months) if every_months else one_time(start, end),
            resource=resource,
            principals=tuple(
                (
                    _principal_id(p),
                    "servicePrincipal" if p == "build_agent" else "user",
                )
                for p in principals
            ),
        )
        duration = end - start
        occurrences = [*past, _PastRecurrence(start=start, principals=tuple(principals))]
        instances: list[Instance] = []
        for occurrence, planned in enumerate(occurrences):
            instance_id = (
                occurrence_instance_id(definition_id, occurrence) if every_months else definition_id
            )
            instance = Instance(
                id=instance_id,
                definition_id=definition_id,
                start=planned.start,
                end=planned.start + duration,
                scope=scope,
                reviewers=reviewers,
                fallback_reviewers=fallback,
                occurrence=occurrence,
            )
            for principal in planned.principals:
                is_sp = principal == "build_agent"
                principal_id = _principal_id(principal)
                user = tenant.users.get(principal_id)
                recommendation = (
                    "NoInfoAvailable"
                    if is_sp
                    else recommendation_for(
                        user.last_sign_in if user else None, min(anchor, instance.end)
                    )
                )
                decision_id = (
                    occurrence_decision_id(instance_id, principal_id)
                    if every_months
                    else demo_id("decision", f"{key}:{principal_id}")
                )
                membership = None
                if resource.type.lower() == "group":
                    membership = "indirect" if principal in nested else "direct"
                item = Decision(
                    id=decision_id,
                    principal_id=principal_id,
                    principal_kind="servicePrincipal" if is_sp else "user",
                    resource=resource,
                    recommendation=recommendation,
                    membership_type=membership,
                )
                if principal in planned.decided:
                    decision, reviewer, justification = planned.decided[principal]
                    reviewer_user = tenant.users[uid(reviewer)]
                    item.decision = decision
                    item.justification = justification
                    item.reviewed_by = (
                        reviewer_user.id,
                        reviewer_user.display_name,
                        reviewer_user.user_principal_name,
                    )
                    item.reviewed_at = planned.start + timedelta(days=2, hours=3)
                instance.decisions[decision_id] = item
            if planned.applied_by is not None:
                # applyDecisions called by an admin the day after the recurrence ended.
                applier = tenant.users[uid(planned.applied_by)]
                instance.apply_requested_at = instance.end + timedelta(days=1)
                instance.apply_requested_by = (
                    applier.id,
                    applier.display_name,
                    applier.user_principal_name,
                )
            instances.append(instance)
        tenant.add_review(definition, instances)

    def group_resource(key: str, type_name: str = "group") -> ReviewResource:
        # The docs' examples spell the type "group"; the enum (and some answers) "Group".
        g = tenant.groups[demo_id("group", key)]
        return ReviewResource(
            id=g.id,
            display_name=g.display_name,
            type=type_name,
            link=f"https://graph.microsoft.com/v1.0/groups/{g.id}",
        )

    running = (anchor - timedelta(days=2), anchor + timedelta(days=12))
    review(
        "finance",
        "Finance Team – quarterly membership review",
        resource=group_resource("finance"),
        principals=["adele", "lee", "jordan"],
        reviewers=(ReviewerScope("./owners"),),
        fallback=fallback_megan,
        scope=group_scope(demo_id("group", "finance")),
        start=anchor - timedelta(days=4),
        end=anchor + timedelta(days=3),
        settings=ReviewSettings(
            justification_required_on_approval=True, instance_duration_in_days=7
        ),
        description="Confirm who still needs access to finance shares and reports.",
    )
    review(
        "marketing",
        "Marketing – manager review of members",
        resource=group_resource("marketing"),
        principals=["adele", "isaiah", "nestor"],
        reviewers=(ReviewerScope("./manager", query_root="decisions"),),
        fallback=fallback_megan,
        scope=group_scope(demo_id("group", "marketing")),
        start=running[0],
        end=running[1],
        description="Managers: confirm your reports still need Marketing access.",
    )
    review(
        "falcon",
        "Project Falcon – self-review",
        resource=group_resource("falcon", "Group"),
        principals=["lee", "grady"],
        reviewers=(),
        fallback=fallback_megan,
        scope=group_scope(demo_id("group", "falcon")),
        start=running[0],
        end=running[1],
        description="Do you still need access to the Project Falcon workspace?",
    )
    sp = tenant.service_principals[demo_id("sp", "expense_portal")]
    review(
        "expense_portal",
        "Expense Portal – application access review",
        resource=ReviewResource(
            id=sp.id,
            display_name=sp.display_name,
            type="ServicePrincipal",
            odata_type="#microsoft.graph.accessReviewInstanceDecisionItemServicePrincipalResource",
            link=f"https://graph.microsoft.com/v1.0/servicePrincipals/{sp.id}",
            extra=(("appId", sp.app_id),),
        ),
        principals=["adele", "diego", "build_agent"],
        reviewers=(ReviewerScope(f"/servicePrincipals/{sp.id}/owners"),),
        fallback=fallback_megan,
        scope=instance_scope(f"/servicePrincipals/{sp.id}/appRoleAssignedTo"),
        start=running[0],
        end=running[1],
        description="Review who can sign in to the Expense Portal.",
    )
    user_admin_template = "fe930be7-5e62-47db-91af-98c3a49a38b1"  # User Administrator role
    review(
        "user_admin_role",
        "User Administrator role – privileged access review",
        resource=ReviewResource(
            id=user_admin_template, display_name="User Administrator", type="DirectoryRole"
        ),
        principals=["megan", "diego"],
        reviewers=(ReviewerScope(f"/users/{uid('johanna')}"),),
        scope=instance_scope(
            "/roleManagement/directory/roleAssignmentScheduleInstances?$expand=principal"
            f"&$filter=(isof(principal,'microsoft.graph.user') and roleDefinitionId eq "
            f"'{user_admin_template}')"
        ),
        start=running[0],
        end=running[1],
        description="Confirm who still needs the User Administrator role.",
    )
    subscription_id = demo_id("azure", "subscription-production")
    contributor = "b24988ac-6180-42a0-ab88-20f7382dd24c"  # Azure built-in Contributor role
    review(
        "azure_contributor",
        "Contoso Production subscription – Contributor review",
        resource=ReviewResource(
            id=contributor,
            display_name="Contributor",
            type="AzureRole",
            odata_type="#microsoft.graph.accessReviewInstanceDecisionItemAzureRoleResource",
            extra=(
                (
                    "scope",
                    {
                        "id": f"/subscriptions/{subscription_id}",
                        "displayName": "Contoso Production",
                        "type": "subscription",
                    },
                ),
            ),
        ),
        principals=["lee", "isaiah", "sam", "riley"],
        reviewers=(ReviewerScope(f"/groups/{demo_id('group', 'auditors')}/transitiveMembers"),),
        fallback=fallback_megan,
        scope=instance_scope(
            f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleAssignments"
        ),
        start=running[0],
        end=running[1],
        description="Contributor access to the production subscription, every month.",
        every_months=1,
        past=(
            # Two months ago: completed, never applied (auto-apply is off).
            _PastRecurrence(
                start=add_months(running[0], -2),
                principals=("lee", "isaiah", "sam"),
                decided={
                    "lee": ("Approve", "grady", "Deploys to production"),
                    "sam": ("Deny", "henrietta", "Contract ended"),
                },
            ),
            # Last month: decided, then applied by Megan with applyDecisions.
            _PastRecurrence(
                start=add_months(running[0], -1),
                principals=("lee", "isaiah", "sam"),
                decided={
                    "lee": ("Approve", "grady", "Deploys to production"),
                    "isaiah": ("Approve", "grady", "On call this quarter"),
                    "sam": ("Deny", "grady", "No longer with Northwind"),
                },
                applied_by="megan",
            ),
        ),
    )
    package_id = demo_id("accesspackage", "partner-portal")
    review(
        "partner_portal",
        "Partner Portal access package – assignment review",
        resource=ReviewResource(
            id=demo_id("accesspackagepolicy", "partner-portal"),
            display_name="Partner Portal – external partners policy",
            type="AccessPackageAssignmentPolicy",
            odata_type="#microsoft.graph."
            "accessReviewInstanceDecisionItemAccessPackageAssignmentPolicyResource",
            extra=(("accessPackageDisplayName", "Partner Portal"), ("accessPackageId", package_id)),
        ),
        principals=["jordan", "sam"],
        reviewers=(ReviewerScope(f"/users/{uid('alex')}"),),
        scope=instance_scope(
            f"/identityGovernance/entitlementManagement/accessPackages/{package_id}/assignments"
        ),
        start=running[0],
        end=running[1],
        description="Do these partners still need the Partner Portal package?",
    )
    review(
        "engineering",
        "Engineering – two-stage access review",
        resource=group_resource("engineering"),
        principals=["lee", "isaiah", "grady", "nestor"],
        reviewers=(),
        fallback=fallback_megan,
        scope=group_scope(demo_id("group", "engineering")),
        start=anchor - timedelta(days=1),
        end=anchor + timedelta(days=6),
        settings=ReviewSettings(
            decision_histories_for_reviewers_enabled=True, instance_duration_in_days=7
        ),
        stages=(
            StageSettings(
                stage_id="1",
                depends_on=(),
                duration_in_days=3,
                reviewers=(ReviewerScope("./manager", query_root="decisions"),),
                fallback_reviewers=fallback_megan,
                decisions_that_will_move_to_next_stage=("NotReviewed", "Approve"),
            ),
            StageSettings(
                stage_id="2",
                depends_on=("1",),
                duration_in_days=4,
                reviewers=(ReviewerScope(f"/users/{uid('johanna')}"),),
            ),
        ),
        description="Stage 1: managers. Stage 2: Compliance confirms.",
    )
    review(
        "sales_guests",
        "Sales Partners – quarterly guest review",
        resource=group_resource("sales"),
        principals=["jordan"],
        reviewers=(ReviewerScope("./owners"),),
        fallback=fallback_megan,
        scope=group_scope(demo_id("group", "sales")),
        start=anchor - timedelta(days=30),
        end=anchor - timedelta(days=16),
        settings=ReviewSettings(
            default_decision_enabled=True,
            default_decision="Approve",
            auto_apply_decisions_enabled=True,
            instance_duration_in_days=14,
        ),
        description="Quarterly review of Sales guests.",
        every_months=3,
        past=(
            # The quarter before: Alex approved Jordan; auto-applied at the end.
            _PastRecurrence(
                start=add_months(anchor - timedelta(days=30), -3),
                principals=("jordan",),
                decided={"jordan": ("Approve", "alex", "Runs the Fabrikam account")},
            ),
        ),
    )
    # Make stage instances' multi-stage reviewers reflect the definition (instance-level
    # reviewers of a multi-stage review are those of stage 1).
    engineering = tenant.instances[demo_id("review", "engineering")]
    engineering.reviewers = engineering.stages[0].settings.reviewers
    tenant.refresh()
    return tenant
