"""Who may decide a decision item: reviewer scopes resolved to people, with a per-cycle cache.

An access review names its reviewers as Graph queries (``accessReviewReviewerScope``). This module
turns them into user object ids for one decision item, the same way Entra does:

| query                                   | reviewers                                      |
| --------------------------------------- | ---------------------------------------------- |
| ``/users/{id}``                         | that user                                      |
| ``/groups/{id}/transitiveMembers``      | the group's users, nested groups included      |
| ``/groups/{id}/members``                | the group's direct user members                |
| ``/groups/{id}/owners``                 | the group's owners                             |
| ``/servicePrincipals/{id}/owners``      | the application's owners                       |
| ``./owners``                            | owners of the decision's resource (group/app)  |
| ``./manager`` (queryRoot ``decisions``) | the principal's manager                        |
| no scopes at all (``reviewers: []``)    | the principal (self-review)                    |

When the primary scopes resolve to nobody (no owner, no manager), the fallback reviewers are used.
Directory look-ups are deduplicated: concurrent requests for the same object share one call, and
answers are kept for the life of the resolver (one discovery cycle).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from bot.graph import DirectoryApi, GraphNotFound
from bot.graph.models import AccessReviewDecision, ReviewerScope

__all__ = ["Resolution", "ReviewerResolver", "scope_kind"]

log = logging.getLogger(__name__)

_VERSION_PREFIX = re.compile(r"^/(?:v1\.0|beta)(?=/)", re.IGNORECASE)
_USER = re.compile(r"^/users/([^/?]+)$", re.IGNORECASE)
_GROUP_MEMBERS = re.compile(
    r"^/groups/([^/?]+)/(transitiveMembers|members)(?:/microsoft\.graph\.user)?/?$", re.IGNORECASE
)
_GROUP_OWNERS = re.compile(r"^/groups/([^/?]+)/owners/?$", re.IGNORECASE)
_APP_OWNERS = re.compile(r"^/(?:servicePrincipals|applications)/([^/?]+)/owners/?$", re.IGNORECASE)


def _normalize(query: str) -> tuple[str, str]:
    """(path without version prefix and query string, the query string)."""
    path, _, options = query.strip().partition("?")
    return _VERSION_PREFIX.sub("", path), options


def scope_kind(scope: ReviewerScope) -> str:
    """A short name for the kind of reviewer a scope names (for logs, audit and tests)."""
    path, _ = _normalize(scope.query)
    if _USER.match(path):
        return "user"
    if match := _GROUP_MEMBERS.match(path):
        return (
            "group_members"
            if match.group(2).lower() == "transitivemembers"
            else "group_direct_members"
        )
    if _GROUP_OWNERS.match(path):
        return "group_owners"
    if _APP_OWNERS.match(path):
        return "app_owners"
    if path.lower() in ("./owners", "owners"):
        return "resource_owners"
    if path.lower() in ("./manager", "manager"):
        return "manager"
    return "unknown"


@dataclass(frozen=True, slots=True)
class Resolution:
    """The reviewers of one item and how they were found."""

    reviewers: frozenset[str]
    source: str  # "primary", "self", "fallback" or "nobody"


class _Memo:
    """Single-flight memo: concurrent callers for one key share one look-up."""

    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str], asyncio.Future[frozenset[str]]] = {}

    async def get(
        self, key: tuple[str, str], load: Callable[[], Awaitable[frozenset[str]]]
    ) -> frozenset[str]:
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            self._tasks[key] = task
        return await asyncio.shield(task)

    def missing(self, keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The keys nobody has asked for yet."""
        return [k for k in dict.fromkeys(keys) if k not in self._tasks]

    def provide(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], asyncio.Future[frozenset[str]]]:
        """Claim ``keys`` (not asked for yet); the caller must settle every returned future."""
        loop = asyncio.get_running_loop()
        futures: dict[tuple[str, str], asyncio.Future[frozenset[str]]] = {}
        for key in keys:
            future: asyncio.Future[frozenset[str]] = loop.create_future()
            self._tasks[key] = future
            futures[key] = future
        return futures

    @property
    def lookups(self) -> int:
        return len(self._tasks)


class ReviewerResolver:
    """Resolves reviewer scopes for decision items; one instance per discovery cycle."""

    def __init__(self, directory: DirectoryApi) -> None:
        self._directory = directory
        self._memo = _Memo()

    async def prefetch_managers(self, decisions: Sequence[AccessReviewDecision]) -> None:
        """Look up the managers of these decisions' principals together, 20 per ``$batch`` call,
        so ``./manager`` resolution finds them in the memo: one HTTP round trip per 20 managers
        instead of one each (the same number of Graph requests)."""
        keys = self._memo.missing(
            ("manager", d.principal.id) for d in decisions if _is_user_principal(d)
        )
        if not keys:
            return
        futures = self._memo.provide(keys)
        try:
            managers = await self._directory.get_managers([uid for _kind, uid in keys])
        except BaseException as exc:
            for future in futures.values():
                future.set_exception(exc)
                future.exception()  # retrieved here; resolve() re-raises it to its callers
            raise
        for (_kind, uid), future in futures.items():
            manager = managers.get(uid)
            future.set_result(frozenset({manager.id}) if manager and manager.id else frozenset())

    @property
    def lookups(self) -> int:
        """Distinct directory objects looked up so far (each at least one Graph call)."""
        return self._memo.lookups

    async def resolve(
        self,
        *,
        reviewers: Sequence[ReviewerScope],
        fallback_reviewers: Sequence[ReviewerScope],
        decision: AccessReviewDecision,
    ) -> Resolution:
        """The people who may decide ``decision`` under the given scopes."""
        if not reviewers:
            principal = decision.principal
            if _is_user_principal(decision):
                return Resolution(frozenset({principal.id}), "self")
            # A service principal cannot review itself: Entra falls back.
            found = await self._resolve_all(fallback_reviewers, decision)
            return Resolution(found, "fallback" if found else "nobody")
        found = await self._resolve_all(reviewers, decision)
        if found:
            return Resolution(found, "primary")
        found = await self._resolve_all(fallback_reviewers, decision)
        return Resolution(found, "fallback" if found else "nobody")

    async def _resolve_all(
        self, scopes: Iterable[ScopeLike], decision: AccessReviewDecision
    ) -> frozenset[str]:
        results = await asyncio.gather(*(self._resolve_one(s, decision) for s in scopes))
        return frozenset().union(*results) if results else frozenset()

    async def _resolve_one(
        self, scope: ScopeLike, decision: AccessReviewDecision
    ) -> frozenset[str]:
        path, _options = _normalize(scope.query)
        if match := _USER.match(path):
            return frozenset({unquote(match.group(1))})
        if match := _GROUP_MEMBERS.match(path):
            group_id = unquote(match.group(1))
            transitive = match.group(2).lower() == "transitivemembers"
            kind = "transitive" if transitive else "members"
            return await self._memo.get(
                (kind, group_id), lambda: self._group_users(group_id, transitive=transitive)
            )
        if match := _GROUP_OWNERS.match(path):
            group_id = unquote(match.group(1))
            return await self._memo.get(
                ("group_owners", group_id), lambda: self._group_owners(group_id)
            )
        if match := _APP_OWNERS.match(path):
            sp_id = unquote(match.group(1))
            return await self._memo.get(("sp_owners", sp_id), lambda: self._sp_owners(sp_id))
        lowered = path.lower()
        if lowered in ("./owners", "owners"):
            return await self._resource_owners(decision)
        if lowered in ("./manager", "manager"):
            if not _is_user_principal(decision):
                return frozenset()
            principal_id = decision.principal.id
            return await self._memo.get(
                ("manager", principal_id), lambda: self._manager(principal_id)
            )
        log.warning(
            "reviewer scope not understood; treated as nobody", extra={"query": scope.query}
        )
        return frozenset()

    async def _resource_owners(self, decision: AccessReviewDecision) -> frozenset[str]:
        resource = decision.resource
        resource_id = resource.id if resource else ""
        kind = _resource_kind(decision)
        if not resource_id or kind is None:
            log.warning(
                "./owners on a resource whose owners cannot be listed",
                extra={
                    "decision_id": decision.id,
                    "resource_type": resource.type if resource else "",
                },
            )
            return frozenset()
        if kind == "group":
            return await self._memo.get(
                ("group_owners", resource_id), lambda: self._group_owners(resource_id)
            )
        return await self._memo.get(
            ("sp_owners", resource_id), lambda: self._sp_owners(resource_id)
        )

    # -- the look-ups ---------------------------------------------------------------------------
    async def _group_users(self, group_id: str, *, transitive: bool) -> frozenset[str]:
        try:
            return frozenset(
                [
                    m.id
                    async for m in self._directory.group_members(group_id, transitive=transitive)
                    if m.is_user
                ]
            )
        except GraphNotFound:
            log.warning("reviewer group not found", extra={"group_id": group_id})
            return frozenset()

    async def _group_owners(self, group_id: str) -> frozenset[str]:
        try:
            return frozenset(
                [o.id async for o in self._directory.group_owners(group_id) if o.is_user]
            )
        except GraphNotFound:
            return frozenset()

    async def _sp_owners(self, sp_id: str) -> frozenset[str]:
        try:
            return frozenset(
                [o.id async for o in self._directory.service_principal_owners(sp_id) if o.is_user]
            )
        except GraphNotFound:
            return frozenset()

    async def _manager(self, user_id: str) -> frozenset[str]:
        manager = await self._directory.get_manager(user_id, select=("id",))
        return frozenset({manager.id}) if manager and manager.id else frozenset()


ScopeLike = ReviewerScope


def _is_user_principal(decision: AccessReviewDecision) -> bool:
    return decision.principal.kind == "user"


def _resource_kind(decision: AccessReviewDecision) -> str | None:
    """'group' or 'servicePrincipal' for resources whose owners Graph can list, else None
    (directory and Azure roles, access package policies: ``./owners`` finds nobody there)."""
    kind = decision.resource_kind
    return kind if kind in ("group", "servicePrincipal") else None
