"""Emulated Graph users: ``/users`` (the list, with ``$expand=manager``), ``/users/{id}``,
``/me``, a user's manager and mailbox settings.

``$expand=manager`` follows ``api/user-list-manager.md``: on the list, each user carries their
direct manager; ``$levels`` (the management chain) only on a single user (``/users/{id}``,
``/me``), with ``ConsistencyLevel: eventual``; ``$select`` inside the expansion picks the
manager's properties. Directory objects with ``$expand`` come at most 100 per page whatever
``$top`` says (Graph known issue 13635), so a client must follow ``@odata.nextLink``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from emulator.graph.core import (
    GraphBase,
    GraphFailure,
    GraphRequest,
    GraphResponse,
    ListSpec,
    bad_request,
)
from emulator.tenant import User

__all__ = [
    "MAILBOX_READ",
    "MANAGER_READ",
    "USER_READ_APP",
    "USER_READ_DELEGATED",
    "UserRoutes",
]

# ---------------------------------------------------------------------------------- permissions
USER_READ_APP = frozenset(
    {
        "User.Read.All",
        "User.ReadWrite.All",
        "User.ReadBasic.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
USER_READ_DELEGATED = frozenset(
    {
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
MANAGER_READ = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
MAILBOX_READ = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})

#: Directory objects with $expand: at most this many per page (Graph known issue 13635).
EXPAND_PAGE_CAP = 100
#: ``$levels=max`` and the largest number accepted (the docs: max, or 1 to 1000).
MAX_LEVELS = 1000
_MANAGER_EXPAND = re.compile(r"^manager(?:\((?P<options>[^()]*)\))?$")
_USER_FILTERS = (
    "id",
    "userType",
    "department",
    "jobTitle",
    "displayName",
    "userPrincipalName",
    "mail",
)


def _unsupported(message: str) -> GraphFailure:
    return GraphFailure(400, "Request_UnsupportedQuery", message)


@dataclass(frozen=True, slots=True)
class ManagerExpand:
    """A parsed ``$expand=manager(...)``: how many levels, which of the manager's properties."""

    levels: int
    select: tuple[str, ...] | None


class UserRoutes(GraphBase):
    """The user routes."""

    # ------------------------------------------------------------------ routes
    def _register_user_routes(self) -> None:
        add = self._add
        add("GET", "/me", self._get_me)
        add("GET", "/users", self._list_users)
        # Before /users/{user}: "$count" is not a user id.
        add("GET", "/users/$count", self._count_users)
        add("GET", "/users/{user}", self._get_user)
        add("GET", "/users/{user}/manager", self._get_manager)
        add("GET", "/users/{user}/mailboxSettings", self._get_mailbox_settings)

    _USER_DEFAULT = (
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    )

    def _user_json(self, user: User, *, full: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "businessPhones": [],
            "displayName": user.display_name,
            "givenName": user.given_name,
            "jobTitle": user.job_title,
            "mail": user.mail,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": user.preferred_language,
            "surname": user.surname,
            "userPrincipalName": user.user_principal_name,
            "id": user.id,
        }
        if full:
            body.update(
                {
                    "accountEnabled": user.account_enabled,
                    "userType": user.user_type,
                    "department": user.department,
                    "companyName": None,
                    "usageLocation": None,
                }
            )
        return body

    def _user_for(
        self,
        request: GraphRequest,
        ref: str,
        *,
        permissions_app: frozenset[str],
        permissions_delegated: frozenset[str],
        self_scopes: frozenset[str],
    ) -> User:
        caller = self._caller(request)
        user = self.tenant.find_user(ref)
        if (
            caller.is_delegated
            and user is not None
            and user.id == caller.oid
            and caller.scopes & self_scopes
        ):
            return user
        self._require(request, app=permissions_app, delegated=permissions_delegated)
        if user is None:
            raise GraphFailure(
                404,
                "Request_ResourceNotFound",
                f"Resource '{ref}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return user

    async def _get_user(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user = self._user_for(
            request,
            unquote(m["user"]),
            permissions_app=USER_READ_APP,
            permissions_delegated=USER_READ_DELEGATED,
            self_scopes=frozenset({"User.Read", "User.ReadWrite"}),
        )
        return self._user_entity(request, user)

    def _user_entity(self, request: GraphRequest, user: User) -> GraphResponse:
        query = request.query_map()
        expand = self._manager_expand(request, single=True)
        select = self._select(query)
        full = self._user_json(user, full=True)
        entity = full if select else {k: full[k] for k in self._USER_DEFAULT}
        response = self._entity(
            request, entity, "users/$entity", allowed=frozenset({"$select", "$expand"})
        )
        if expand is not None:
            self._require(request, app=MANAGER_READ, delegated=MANAGER_READ)
            self._add_manager(user, response.body, expand, expand.levels)
        return response

    async def _get_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        caller = self._caller(request)
        if not caller.is_delegated or not caller.oid:
            raise bad_request("/me request is only valid with delegated authentication flow.")
        return await self._get_user(request, {"user": caller.oid})

    async def _get_manager(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user = self._user_for(
            request,
            unquote(m["user"]),
            permissions_app=MANAGER_READ,
            permissions_delegated=MANAGER_READ,
            self_scopes=frozenset(),
        )
        manager = self.tenant.users.get(user.manager_id or "")
        if manager is None:
            raise GraphFailure(
                404,
                "Request_ResourceNotFound",
                "Resource 'manager' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        entity = {"@odata.type": "#microsoft.graph.user", **self._user_json(manager, full=True)}
        return self._entity(request, entity, "directoryObjects/$entity")

    async def _get_mailbox_settings(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        user = self._user_for(
            request,
            unquote(m["user"]),
            permissions_app=MAILBOX_READ,
            permissions_delegated=frozenset(),
            self_scopes=MAILBOX_READ,
        )
        mailbox = user.mailbox
        if mailbox is None:
            raise GraphFailure(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            )
        entity = {
            "archiveFolder": None,
            "timeZone": mailbox.time_zone,
            "automaticRepliesSetting": {"status": "disabled", "externalAudience": "all"},
            "dateFormat": "M/d/yyyy",
            "timeFormat": "h:mm tt",
            "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
            "language": {"locale": mailbox.language, "displayName": mailbox.language},
            "workingHours": {
                "daysOfWeek": list(mailbox.working_days),
                "startTime": mailbox.start_time,
                "endTime": mailbox.end_time,
                "timeZone": {"name": mailbox.time_zone},
            },
            "userPurpose": "user",
        }
        return self._entity(request, entity, f"users('{user.id}')/mailboxSettings")

    # ------------------------------------------------------------------ list, $expand=manager
    async def _list_users(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        expand = self._manager_expand(request, single=False)
        self._require(
            request,
            app=MANAGER_READ if expand else USER_READ_APP,
            delegated=MANAGER_READ if expand else USER_READ_DELEGATED,
        )
        query = request.query_map()
        if "$count" in query and not self._eventual(request):
            raise _unsupported(
                "$count on directory objects needs the ConsistencyLevel header set to eventual."
            )
        select = self._select(query)

        def serialize(user: User) -> dict[str, Any]:
            full = self._user_json(user, full=True)
            return full if select else {k: full[k] for k in self._USER_DEFAULT}

        def add_manager(user: User, body: dict[str, Any]) -> None:
            if expand is not None:
                self._add_manager(user, body, expand, 1)

        spec = ListSpec(
            context="users",
            allowed=frozenset({"$select", "$expand", "$top", "$skiptoken", "$filter", "$count"}),
            filter_fields={name: self._user_field(name) for name in _USER_FILTERS},
            skiptoken_paging=True,
            page_cap=EXPAND_PAGE_CAP if expand is not None else None,
        )
        users = list(self.tenant.users.values())
        return self._collection(request, users, serialize, spec, decorate=add_manager)

    async def _count_users(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        """``GET /users/$count``: the number of users as ``text/plain``. An advanced query on
        directory objects: without ``ConsistencyLevel: eventual`` Graph refuses it (400
        ``Request_BadRequest``, "Count is not currently supported"; docs: "Advanced query
        capabilities on Microsoft Entra ID objects")."""
        self._require(request, app=USER_READ_APP, delegated=USER_READ_DELEGATED)
        if not self._eventual(request):
            raise GraphFailure(
                400,
                "Request_BadRequest",
                "Count is not currently supported: send the ConsistencyLevel header set to "
                "eventual.",
            )
        return GraphResponse(status=200, text=str(len(self.tenant.users)))

    def _user_field(self, name: str) -> Callable[[User], Any]:
        def get(user: User) -> Any:
            return self._user_json(user, full=True).get(name)

        return get

    @staticmethod
    def _eventual(request: GraphRequest) -> bool:
        return request.headers.get("ConsistencyLevel", "").strip().lower() == "eventual"

    def _manager_expand(self, request: GraphRequest, *, single: bool) -> ManagerExpand | None:
        """Parse ``$expand`` (only ``manager`` is emulated); ``None`` when there is none."""
        text = request.query_map().get("$expand")
        if text is None:
            return None
        match = _MANAGER_EXPAND.match(text.replace(" ", ""))
        if match is None:
            raise bad_request(f"Could not find a navigation property for the $expand '{text}'.")
        levels: int | None = None
        select: tuple[str, ...] | None = None
        for option in filter(None, (match.group("options") or "").split(";")):
            name, _, value = option.partition("=")
            if name == "$levels":
                if not single:
                    raise _unsupported(
                        "$levels is supported only on a single user (/users/{id} or /me), "
                        "not on the list of users."
                    )
                levels = self._levels(value)
            elif name == "$select":
                select = tuple(v for v in value.split(",") if v)
                if not select:
                    raise bad_request("Invalid $select inside $expand: no properties given.")
            else:
                raise bad_request(f"Query option '{name}' is not supported inside $expand.")
        if levels is not None and not self._eventual(request):
            raise _unsupported("$levels needs the ConsistencyLevel header set to eventual.")
        return ManagerExpand(levels=levels or 1, select=select)

    @staticmethod
    def _levels(value: str) -> int:
        if value == "max":
            return MAX_LEVELS
        if not value.isdigit() or not 1 <= int(value) <= MAX_LEVELS:
            raise bad_request(
                f"Invalid value '{value}' for $levels: use max or a number from 1 to {MAX_LEVELS}."
            )
        return int(value)

    def _add_manager(
        self, user: User, body: dict[str, Any], expand: ManagerExpand, levels: int
    ) -> None:
        """Put the user's manager (and theirs, ``levels`` deep) into ``body``. A user without a
        manager gets no ``manager`` property (Graph leaves an empty navigation out)."""
        seen = {user.id}
        target = body
        current = user
        for _ in range(levels):
            manager = self.tenant.users.get(current.manager_id or "")
            if manager is None or manager.id in seen:
                return
            seen.add(manager.id)
            full = {"@odata.type": "#microsoft.graph.user", **self._user_json(manager, full=True)}
            if expand.select is not None:
                unknown = [name for name in expand.select if name not in full]
                if unknown:
                    raise bad_request(
                        f"Could not find a property named '{unknown[0]}' on this type."
                    )
                full = {
                    "@odata.type": full["@odata.type"],
                    **{name: full[name] for name in expand.select},
                }
            target["manager"] = full
            target = full
            current = manager
