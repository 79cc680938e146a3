"""The big ``generated`` tenant: reviews, reviewers and pending decisions in any number, for
benchmarks and scale tests (see :func:`generate`)."""

from __future__ import annotations

import random
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
    GENERATED_TENANT_ID,
    group_scope,
    monthly,
    one_time,
    teams_catalog,
)
from emulator.tenant import (
    Decision,
    Definition,
    Group,
    Instance,
    MailboxSettings,
    ReviewerScope,
    ReviewResource,
    ReviewSettings,
    Tenant,
    User,
)

__all__ = ["generate"]

_TIME_ZONES = (
    "Pacific Standard Time",
    "Eastern Standard Time",
    "GMT Standard Time",
    "W. Europe Standard Time",
    "India Standard Time",
    "Tokyo Standard Time",
    "AUS Eastern Standard Time",
    "UTC",
)
_FIRST = (
    "Alex",
    "Sam",
    "Jordan",
    "Taylor",
    "Morgan",
    "Casey",
    "Riley",
    "Jamie",
    "Avery",
    "Quinn",
    "Priya",
    "Wei",
    "Sofia",
    "Mateo",
    "Amara",
    "Lukas",
    "Yuki",
    "Omar",
    "Ines",
    "Noah",
)
_LAST = (
    "Smith",
    "Garcia",
    "Chen",
    "Patel",
    "Müller",
    "Kowalski",
    "Okafor",
    "Silva",
    "Kim",
    "Novak",
    "Haddad",
    "Larsen",
    "Rossi",
    "Tanaka",
    "Dubois",
    "Costa",
    "Ivanova",
    "Brown",
    "Nakamura",
    "Jensen",
)


def _cid(kind: int, n: int) -> str:
    """Compact, GUID-shaped, readable ids: kind in the first block, counter in the last."""
    return f"{kind:08x}-0000-4000-8000-{n:012x}"


_K_USER = 0xA001
_K_GROUP = 0xA002
_K_REVIEW = 0xA003
_K_DECISION = 0xA004
_K_REVIEWER_GROUP = 0xA005


def generate(
    clock: Clock,
    *,
    decisions: int = 100_000,
    reviewers: int = 5_000,
    instances: int = 500,
    seed: int = 1,
    bot_app_id: str = DEFAULT_BOT_APP_ID,
    tenant_id: str = GENERATED_TENANT_ID,
    **_: Any,
) -> Tenant:
    """A big tenant: ``instances`` running group reviews holding ``decisions`` pending items in
    total, reviewed by ``reviewers`` reviewer users with a mix of reviewer kinds.

    Deterministic for a given ``seed``. Every current instance is InProgress at the clock's time.
    About 15 % of the reviews recur every two months: their current instance has an id of its
    own and the one before it (Completed, or Applied by an admin) is listed too. About 10 % of
    the principals are guests (``#EXT#`` user principal names); of those who never signed in,
    about half show ``lastUserSignInDateTime`` as ``""`` and half as ``null``; half the reviews
    spell their resource type ``group``, half ``Group``.
    """
    if instances < 1 or reviewers < 1 or decisions < instances:
        raise ValueError("need instances >= 1, reviewers >= 1 and decisions >= instances")
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    # The variations below draw from a generator of their own, so the reviewer kinds, members
    # and dates drawn from ``rng`` stay what they were before the variations existed.
    variety = random.Random(seed * 7_919 + 1)  # noqa: S311 - reproducible test data
    now = clock.now().replace(microsecond=0)
    tenant = Tenant(tenant_id=tenant_id, clock=clock, display_name="Fabrikam (generated)")
    domain = "fabrikam.onmicrosoft.com"

    def make_user(n: int, *, reviewer: bool, manager_id: str | None) -> User:
        first, last = _FIRST[n % len(_FIRST)], _LAST[(n // len(_FIRST)) % len(_LAST)]
        days = rng.choice((0, 1, 2, 5, 9, 14, 21, 40, 75, 120, -1))
        guest = not reviewer and variety.random() < 0.1
        upn = (
            f"{first.lower()}.{n}_partner.example#EXT#@{domain}"
            if guest
            else f"{first.lower()}.{n}@{domain}"
        )
        return tenant.add_user(
            User(
                id=_cid(_K_USER, n),
                display_name=f"{first} {last} {n}" + (" (Partner)" if guest else ""),
                user_principal_name=upn,
                mail=f"{first.lower()}.{n}@{domain}" if reviewer else None,
                user_type="Guest" if guest else "Member",
                manager_id=manager_id,
                last_sign_in=None if days < 0 else now - timedelta(days=days, hours=n % 24),
                sign_in_known=days >= 0 or variety.random() < 0.5,
                mailbox=MailboxSettings(time_zone=_TIME_ZONES[n % len(_TIME_ZONES)])
                if reviewer
                else None,
            )
        )

    reviewer_ids = [make_user(n, reviewer=True, manager_id=None).id for n in range(reviewers)]
    per_instance, remainder = divmod(decisions, instances)
    pool_size = max(per_instance + 1, min(decisions, 20_000))
    principal_ids = [
        make_user(
            reviewers + n, reviewer=False, manager_id=reviewer_ids[rng.randrange(reviewers)]
        ).id
        for n in range(pool_size)
    ]
    # Reviewer groups of five reviewers each (the "members of a group" kind).
    reviewer_groups = []
    for g in range(max(1, reviewers // 50)):
        members = [reviewer_ids[rng.randrange(reviewers)] for _ in range(5)]
        reviewer_groups.append(
            tenant.add_group(
                Group(
                    id=_cid(_K_REVIEWER_GROUP, g),
                    display_name=f"Reviewers {g}",
                    member_ids=list(dict.fromkeys(members)),
                )
            ).id
        )
    teams_catalog(tenant, bot_app_id)

    decision_counter = 0
    creator = (
        reviewer_ids[0],
        tenant.users[reviewer_ids[0]].display_name,
        tenant.users[reviewer_ids[0]].user_principal_name,
    )
    settings = ReviewSettings(instance_duration_in_days=21)
    for i in range(instances):
        count = per_instance + (1 if i < remainder else 0)
        group_id = _cid(_K_GROUP, i)
        owners = [reviewer_ids[rng.randrange(reviewers)] for _ in range(rng.choice((1, 2)))]
        start_offset_days = rng.randrange(10)
        members = rng.sample(principal_ids, count)
        group = tenant.add_group(
            Group(
                id=group_id, display_name=f"Project {i:04d}", member_ids=members, owner_ids=owners
            )
        )
        kind = rng.random()
        fallback: tuple[ReviewerScope, ...] = (
            ReviewerScope(f"/users/{reviewer_ids[rng.randrange(reviewers)]}"),
        )
        reviewer_scopes: tuple[ReviewerScope, ...]
        if kind < 0.5:
            chosen = {reviewer_ids[rng.randrange(reviewers)] for _ in range(rng.choice((1, 2)))}
            reviewer_scopes = tuple(ReviewerScope(f"/users/{r}") for r in sorted(chosen))
        elif kind < 0.7:
            reviewer_scopes = (ReviewerScope("./manager", query_root="decisions"),)
        elif kind < 0.85:
            reviewer_scopes = (ReviewerScope("./owners"),)
        elif kind < 0.95:
            reviewer_scopes = (
                ReviewerScope(
                    f"/groups/{reviewer_groups[rng.randrange(len(reviewer_groups))]}"
                    "/transitiveMembers"
                ),
            )
        else:
            reviewer_scopes = ()
        review_id = _cid(_K_REVIEW, i)
        begin = now - timedelta(days=start_offset_days + 1)
        end = now + timedelta(days=3 + rng.randrange(18))
        scope = group_scope(group_id)
        recurring = variety.random() < 0.15
        resource = ReviewResource(
            id=group.id,
            display_name=group.display_name,
            type="group" if i % 2 == 0 else "Group",
            link=f"https://graph.microsoft.com/v1.0/groups/{group.id}",
        )
        definition = Definition(
            id=review_id,
            display_name=f"Project {i:04d} membership review",
            scope=scope,
            reviewers=reviewer_scopes,
            settings=settings,
            created_by=creator,
            created_at=begin - timedelta(days=1),
            fallback_reviewers=fallback,
            recurrence=monthly(add_months(begin, -2), 2) if recurring else one_time(begin, end),
            resource=resource,
        )
        planned: list[tuple[str, datetime, datetime]] = []
        if recurring:
            past_start = add_months(begin, -2)
            planned.append(
                (occurrence_instance_id(review_id, 0), past_start, past_start + timedelta(days=21))
            )
            planned.append((occurrence_instance_id(review_id, 1), begin, end))
        else:
            planned.append((review_id, begin, end))
        built: list[Instance] = []
        for occurrence, (instance_id, start, finish) in enumerate(planned):
            current = occurrence == len(planned) - 1
            instance = Instance(
                id=instance_id,
                definition_id=review_id,
                start=start,
                end=finish,
                scope=scope,
                reviewers=reviewer_scopes,
                fallback_reviewers=fallback,
                occurrence=occurrence,
            )
            for principal_id in members:
                if current:
                    decision_id = _cid(_K_DECISION, decision_counter)
                    decision_counter += 1
                else:
                    decision_id = occurrence_decision_id(instance_id, principal_id)
                last = tenant.users[principal_id].last_sign_in
                item = Decision(
                    id=decision_id,
                    principal_id=principal_id,
                    principal_kind="user",
                    resource=resource,
                    recommendation=recommendation_for(last, min(now, finish)),
                    membership_type="direct",
                )
                if not current:
                    # The last recurrence was approved (by the review's creator, an admin):
                    # the same people are members now.
                    item.decision = "Approve"
                    item.reviewed_by = creator
                    item.reviewed_at = start + timedelta(days=3)
                instance.decisions[decision_id] = item
            if not current and variety.random() < 0.5:
                instance.apply_requested_at = finish + timedelta(days=1)
                instance.apply_requested_by = creator
            built.append(instance)
        tenant.add_review(definition, built)
    return tenant
