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

Managers (:class:`ManagerLookup`) come the cheaper of two documented ways for the tenant at hand:
``GET /users/{id}/manager`` per principal (20 to a ``$batch``; every item counts against Graph's
limits), or ``GET /users?$expand=manager`` listing every user with their manager, 100 a page. The
first costs one request per principal, the second one per 100 users of the tenant
(``GET /users/$count`` says how many: one request). Principals are only known as each instance's
decisions are read, so the total is projected from the instances seen so far: their distinct
principals times the number of ``./manager`` instances over those seen. The list wins when its
pages are fewer than the per-principal look-ups still expected; it is then read once, and every
instance that needs managers waits for it (instances without ``./manager`` carry on meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from bot.graph import DirectoryApi, GraphError, GraphNotFound, Query
from bot.graph.directory import USERS_WITH_MANAGERS_PAGE_SIZE
from bot.graph.models import AccessReviewDecision, ReviewerScope

__all__ = ["ManagerLookup", "Resolution", "ReviewerResolver", "scope_kind"]

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


class ManagerLookup:
    """The managers of a cycle's principals, the cheaper documented way (see the module doc).

    ``max_users_listed`` bounds the list way: its index holds every user of the tenant for the
    cycle (about 100 bytes each), so tenants beyond it are always looked up per principal.
    """

    def __init__(
        self,
        directory: DirectoryApi,
        *,
        page_size: int = USERS_WITH_MANAGERS_PAGE_SIZE,
        max_users_listed: int = 250_000,
    ) -> None:
        self._directory = directory
        self._page_size = page_size
        self._max_users_listed = max_users_listed
        self._scoped_targets = 0
        self._targets_seen = 0
        self._principals_seen: set[str] = set()
        self._looked_up = 0
        self._lock = asyncio.Lock()
        self._users: int | None = None
        self._counted = False
        self._index: asyncio.Task[dict[str, str | None]] | None = None
        self._list_failed = False
        #: "per_user" or "list" (how the last batch of principals was served).
        self.mode = "per_user"
        #: Graph requests spent on managers: per-principal look-ups, pages and the count.
        self.requests = 0

    def plan(self, *, scoped_targets: int) -> None:
        """How many instances (or stages) of this cycle may need managers."""
        self._scoped_targets = max(0, scoped_targets)

    async def managers_of(self, user_ids: Sequence[str]) -> dict[str, str | None]:
        """The manager id (None: no manager) of each of one instance's principals."""
        unique = list(dict.fromkeys(user_ids))
        if not unique:
            return {}
        if await self._choose_list(unique):
            index = await self._wait_for_index()
            if index is not None:
                found = {uid: index[uid] for uid in unique if uid in index}
                # Users created after the list was read (or that are not users) the direct way.
                missing = [uid for uid in unique if uid not in index]
                if missing:
                    found.update(await self._per_user(missing))
                return found
        return await self._per_user(unique)

    async def _choose_list(self, user_ids: Sequence[str]) -> bool:
        async with self._lock:
            self._targets_seen += 1
            self._principals_seen.update(user_ids)
            if self._index is not None and not self._list_failed:
                return True
            if self._list_failed:
                return False
            seen = len(self._principals_seen)
            projected = seen * max(self._scoped_targets, self._targets_seen) / self._targets_seen
            still_expected = projected - self._looked_up
            if still_expected <= 1:
                return False
            users = await self._count_users()
            if users is None or users > self._max_users_listed:
                return False
            pages = max(1, math.ceil(users / self._page_size))
            if pages >= still_expected:
                return False
            log.info(
                "managers: listing the tenant's users with their managers",
                extra={
                    "users": users,
                    "pages": pages,
                    "principals_expected": round(projected),
                    "looked_up_already": self._looked_up,
                },
            )
            self._index = asyncio.ensure_future(self._read_index())
            self.mode = "list"
            return True

    async def _count_users(self) -> int | None:
        if not self._counted:
            self._counted = True
            self.requests += 1
            try:
                self._users = await self._directory.count_users()
            except GraphError as exc:
                # Some clouds and tools answer no $count: the per-principal way always works.
                log.info("user count unavailable, managers looked up one by one: %s", exc)
        return self._users

    async def _read_index(self) -> dict[str, str | None]:
        index: dict[str, str | None] = {}
        async for page in self._directory.users_with_managers():
            self.requests += 1
            for user_id, manager_id in page:
                # Many users share a manager: one string each.
                index[user_id] = sys.intern(manager_id) if manager_id else None
        return index

    async def _wait_for_index(self) -> dict[str, str | None] | None:
        task = self._index
        assert task is not None
        try:
            return await asyncio.shield(task)
        except GraphError as exc:
            async with self._lock:
                if not self._list_failed:
                    self._list_failed = True
                    self.mode = "per_user"
                    log.warning("listing users with managers failed, one by one instead: %s", exc)
            return None

    async def _per_user(self, user_ids: Sequence[str]) -> dict[str, str | None]:
        self._looked_up += len(user_ids)
        self.requests += len(user_ids)
        managers = await self._directory.get_managers(user_ids)
        return {
            uid: (manager.id if manager is not None and manager.id else None)
            for uid, manager in managers.items()
        }


class ReviewerResolver:
    """Resolves reviewer scopes for decision items; one instance per discovery cycle."""

    def __init__(self, directory: DirectoryApi, *, managers: ManagerLookup | None = None) -> None:
        self._directory = directory
        self._memo = _Memo()
        self.managers = managers or ManagerLookup(directory)

    async def prefetch_managers(self, decisions: Sequence[AccessReviewDecision]) -> None:
        """Look up the managers of these decisions' principals together (the cheaper way, see
        :class:`ManagerLookup`), so ``./manager`` resolution finds them in the memo."""
        keys = self._memo.missing(
            ("manager", d.principal.id) for d in decisions if _is_user_principal(d)
        )
        if not keys:
            return
        futures = self._memo.provide(keys)
        try:
            managers = await self.managers.managers_of([uid for _kind, uid in keys])
        except BaseException as exc:
            for future in futures.values():
                future.set_exception(exc)
                future.exception()  # retrieved here; resolve() re-raises it to its callers
            raise
        for (_kind, uid), future in futures.items():
            manager_id = managers.get(uid)
            future.set_result(frozenset({manager_id}) if manager_id else frozenset())

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
                    async for m in self._directory.group_members(
                        # The largest page member lists serve: one request for most groups.
                        group_id,
                        transitive=transitive,
                        query=Query(top=999),
                    )
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
