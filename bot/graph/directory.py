"""Typed directory look-ups: users, managers, group members/owners, app owners, mailbox settings.

All work app-only (``User.Read.All``, ``GroupMember.Read.All``, ``Application.Read.All``,
``MailboxSettings.Read``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from urllib.parse import quote

from bot.graph.client import BatchRequest, GraphClient
from bot.graph.errors import GraphError, GraphForbidden, GraphNotFound
from bot.graph.models import DirectoryObject, MailboxSettings, User
from bot.graph.odata import Query, encode_query

__all__ = ["NO_MAILBOX", "USERS_WITH_MANAGERS_PAGE_SIZE", "USER_FIELDS", "DirectoryApi"]

#: What the bot reads of a user (keeps answers small: Graph bills and pages by size).
USER_FIELDS = (
    "id",
    "displayName",
    "userPrincipalName",
    "mail",
    "userType",
    "accountEnabled",
    "preferredLanguage",
)
#: What :meth:`DirectoryApi.mailbox_settings_many` gives for a user without readable mailbox
#: settings (no mailbox, on-premises, or MailboxSettings.Read not granted for them).
NO_MAILBOX = MailboxSettings()
# Member/owner lists are directoryObject collections: no default $select, because properties of
# the derived types (userPrincipalName of a user) are not valid there for every service.

#: Users a page of ``GET /users?$expand=manager`` holds: with ``$expand`` a directory list serves
#: at most 100 objects a page, whatever ``$top`` asks (a known issue Microsoft documents for
#: ``$expand`` on directory objects; ``$top=999`` without ``$expand``).
USERS_WITH_MANAGERS_PAGE_SIZE = 100


def _seg(value: str) -> str:
    if not value:
        raise ValueError("empty id in a Graph path")
    return quote(value, safe="")


class DirectoryApi:
    """Users and the relations reviewer resolution needs."""

    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    async def get_user(self, user_id_or_upn: str, *, select: Sequence[str] = USER_FIELDS) -> User:
        body = await self._graph.get(f"/users/{_seg(user_id_or_upn)}", params=Query(select=select))
        return User.from_graph(body)

    async def get_users(
        self, user_ids: Sequence[str], *, select: Sequence[str] = USER_FIELDS
    ) -> dict[str, User | None]:
        """Many users through ``$batch``; ``None`` for ids Graph does not know (404).

        Other per-user failures raise that user's :class:`GraphError`.
        """
        unique = list(dict.fromkeys(user_ids))
        query = encode_query(Query(select=select).params())
        requests = [
            BatchRequest(id=str(n), method="GET", url=f"/users/{_seg(uid)}?{query}")
            for n, uid in enumerate(unique)
        ]
        answers = await self._graph.batch(requests)
        users: dict[str, User | None] = {}
        for n, uid in enumerate(unique):
            answer = answers[str(n)]
            if isinstance(answer.error, GraphNotFound):
                users[uid] = None
                continue
            answer.raise_for_status()
            users[uid] = User.from_graph(answer.body or {})
        return users

    async def get_manager(
        self, user_id: str, *, select: Sequence[str] = USER_FIELDS
    ) -> User | None:
        """The user's manager, or ``None`` when none is set (Graph answers 404)."""
        try:
            body = await self._graph.get(
                f"/users/{_seg(user_id)}/manager", params=Query(select=select)
            )
        except GraphNotFound:
            return None
        return User.from_graph(body)

    async def get_managers(
        self, user_ids: Sequence[str], *, select: Sequence[str] = ("id",)
    ) -> dict[str, User | None]:
        """The managers of many users through ``$batch`` (20 per HTTP call); ``None`` where a
        user has no manager (404). Other per-user failures raise that user's :class:`GraphError`."""
        unique = list(dict.fromkeys(user_ids))
        query = encode_query(Query(select=select).params())
        requests = [
            BatchRequest(id=str(n), method="GET", url=f"/users/{_seg(uid)}/manager?{query}")
            for n, uid in enumerate(unique)
        ]
        answers = await self._graph.batch(requests)
        managers: dict[str, User | None] = {}
        for n, uid in enumerate(unique):
            answer = answers[str(n)]
            if isinstance(answer.error, GraphNotFound):
                managers[uid] = None
                continue
            answer.raise_for_status()
            managers[uid] = User.from_graph(answer.body or {})
        return managers

    async def count_users(self) -> int:
        """How many users the tenant has: ``GET /users/$count`` (an advanced query, so
        ``ConsistencyLevel: eventual``; the answer is a bare number).

        The count also tells the client's pacer the tenant's documented Graph budget.
        """
        body = await self._graph.get("/users/$count", headers={"ConsistencyLevel": "eventual"})
        text = str(body).strip() if isinstance(body, str | int) else ""
        if not text.isdigit():
            raise GraphError("the user count is not a number", status=200)
        count = int(text)
        self._graph.pacer.note_tenant_users(self._graph.tenant_id, count)
        return count

    async def users_with_managers(self) -> AsyncIterator[list[tuple[str, str | None]]]:
        """Every user with their direct manager's id (None: no manager), a page at a time:
        ``GET /users?$select=id&$expand=manager($select=id)`` (``$levels`` works only on a
        single user, so this is the direct manager, as ``./manager`` reviewers need)."""
        query = Query(
            top=USERS_WITH_MANAGERS_PAGE_SIZE, select=("id",), expand="manager($select=id)"
        )
        async for page in self._graph.pages("/users", params=query):
            found: list[tuple[str, str | None]] = []
            for item in page:
                user_id = item.get("id")
                if not isinstance(user_id, str) or not user_id:
                    continue
                manager = item.get("manager")
                manager_id = manager.get("id") if isinstance(manager, Mapping) else None
                found.append(
                    (user_id, manager_id if isinstance(manager_id, str) and manager_id else None)
                )
            yield found

    async def group_members(
        self, group_id: str, *, transitive: bool = True, query: Query | None = None
    ) -> AsyncIterator[DirectoryObject]:
        """Members of a group; ``transitive`` includes members of nested groups (and the
        nested groups themselves: filter with :attr:`DirectoryObject.is_user`)."""
        relation = "transitiveMembers" if transitive else "members"
        async for item in self._graph.paginate(
            f"/groups/{_seg(group_id)}/{relation}", params=query
        ):
            yield DirectoryObject.from_graph(item)

    async def group_owners(
        self, group_id: str, *, query: Query | None = None
    ) -> AsyncIterator[DirectoryObject]:
        async for item in self._graph.paginate(f"/groups/{_seg(group_id)}/owners", params=query):
            yield DirectoryObject.from_graph(item)

    async def service_principal_owners(
        self, service_principal_id: str, *, query: Query | None = None
    ) -> AsyncIterator[DirectoryObject]:
        async for item in self._graph.paginate(
            f"/servicePrincipals/{_seg(service_principal_id)}/owners",
            params=query,
        ):
            yield DirectoryObject.from_graph(item)

    async def mailbox_settings(self, user_id: str) -> MailboxSettings | None:
        """Time zone and working hours; ``None`` when the user has no mailbox (404)."""
        try:
            body = await self._graph.get(f"/users/{_seg(user_id)}/mailboxSettings")
        except GraphNotFound:
            return None
        return MailboxSettings.from_graph(body or {})

    async def mailbox_settings_many(self, user_ids: Sequence[str]) -> dict[str, MailboxSettings]:
        """Mailbox settings of many users through ``$batch`` (20 per HTTP call): time zone,
        working hours and ``language.locale``.

        A user whose settings Graph will not give — no mailbox or one hosted on-premises (404),
        or access refused for that mailbox (403) — maps to :data:`NO_MAILBOX`: an answer, to be
        asked again later. A user whose look-up failed otherwise (throttled past the retries,
        5xx) is left out of the result, so the caller tries again soon.
        """
        unique = list(dict.fromkeys(uid for uid in user_ids if uid))
        requests = [
            BatchRequest(id=str(n), method="GET", url=f"/users/{_seg(uid)}/mailboxSettings")
            for n, uid in enumerate(unique)
        ]
        answers = await self._graph.batch(requests)
        found: dict[str, MailboxSettings] = {}
        for n, uid in enumerate(unique):
            answer = answers[str(n)]
            if isinstance(answer.error, GraphNotFound | GraphForbidden):
                found[uid] = NO_MAILBOX
            elif isinstance(answer.error, GraphError):
                continue
            else:
                found[uid] = MailboxSettings.from_graph(answer.body or {})
        return found
