"""Emulated Microsoft Graph: access reviews, the directory parts the bot reads, Teams app
installation, ``$batch`` and the refusal of access-review subscriptions.

Shapes follow ``shared/reference/graph-access-reviews.md`` (the spec); choices where Microsoft
documents nothing are marked "emulator choice" beside the code.

Every request — a plain HTTP request or one item of a ``$batch`` — becomes a
:class:`GraphRequest` and goes through :meth:`GraphApi.dispatch`, so batch items see the same
routing, permission checks, paging and fault rules as direct calls.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from aiohttp import web

from emulator.faults import Faults, graph_error_body
from emulator.identity import GRAPH_APP_ID, AccessToken, AppRegistration, TokenError
from emulator.tenant import (
    ZERO_GUID,
    Application,
    Decision,
    Definition,
    Group,
    Installation,
    Instance,
    ServicePrincipal,
    Stage,
    StageSettings,
    TeamsApp,
    Tenant,
    TenantError,
    User,
)

__all__ = ["GRAPH_HOST", "GraphApi", "GraphRequest", "GraphResponse", "InstallListener"]

log = logging.getLogger(__name__)

#: Host used in ``@odata.context`` (Graph always names itself there); ``@odata.nextLink``
#: uses the emulator's own origin so clients can follow it.
GRAPH_HOST = "https://graph.microsoft.com"
MAX_BATCH_REQUESTS = 20
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
REQUEST_LOG_SIZE = 10_000
_JSON_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)

# ---------------------------------------------------------------------------------- permissions
AR_READ = frozenset(
    {"AccessReview.Read.All", "AccessReview.ReadWrite.All", "AccessReview.ReadWrite.Membership"}
)
AR_WRITE = frozenset({"AccessReview.ReadWrite.All", "AccessReview.ReadWrite.Membership"})
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
GROUP_MEMBER_READ = frozenset(
    {
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
APPLICATION_READ = frozenset(
    {
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
MAILBOX_READ = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
APP_CATALOG_READ = frozenset(
    {
        "AppCatalog.Read.All",
        "AppCatalog.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
INSTALL_SELF = frozenset(
    {
        "TeamsAppInstallation.ReadWriteSelfForUser.All",
        "TeamsAppInstallation.ReadWriteAndConsentSelfForUser.All",
    }
)
INSTALL_ANY = frozenset(
    {
        "TeamsAppInstallation.ReadWriteForUser.All",
        "TeamsAppInstallation.ReadWriteAndConsentForUser.All",
    }
)
INSTALL_READ = (
    INSTALL_SELF
    | INSTALL_ANY
    | {"TeamsAppInstallation.ReadForUser.All", "TeamsAppInstallation.ReadForUser"}
)
#: Reading delegated permission grants (oauth2PermissionGrant list/get, and a service
#: principal's grants): Directory.Read.All is the least privileged permission Graph documents;
#: Application.Read.All is *not* enough (it reads applications and service principals only).
GRANT_READ = frozenset(
    {"Directory.Read.All", "DelegatedPermissionGrant.ReadWrite.All", "Directory.ReadWrite.All"}
)
#: Delegated callers need one of these Entra roles to read reviews beyond their own
#: (rbac-access-reviews-apis-read); ordinary reviewers use filterByCurrentUser.
AR_ADMIN_ROLES = frozenset(
    {
        "Global Administrator",
        "Global Reader",
        "Security Reader",
        "Security Administrator",
        "User Administrator",
        "Identity Governance Administrator",
        "Privileged Role Administrator",
    }
)


class Caller(Protocol):
    """The validated token fields the Graph routes use (``emulator.identity.AccessToken``)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def app_id(self) -> str: ...
    @property
    def oid(self) -> str | None: ...
    @property
    def upn(self) -> str | None: ...
    @property
    def scopes(self) -> frozenset[str]: ...
    @property
    def roles(self) -> frozenset[str]: ...
    @property
    def is_delegated(self) -> bool: ...


TokenValidator = Callable[[str], Caller | AccessToken]


class AppRegistry(Protocol):
    """Where app registrations live (``emulator.identity.Identity``): read on every request, so a
    permission withdrawn from a registration at run time shows in the next answer."""

    def app(self, client_id: str) -> AppRegistration:
        """The registration of ``client_id``; ``KeyError`` if there is none."""
        ...


#: Called after the bot's app is installed for a user (Connector.note_app_installed).
InstallListener = Callable[[str, str, str], None]
#: Returns the 1:1 chat id of the bot and a user (Connector.chat_id_for).
ChatIdLookup = Callable[[str], "str | None"]


class GraphFailure(Exception):
    """An error answer (mapped to Graph's error envelope once, in dispatch)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _forbidden(
    message: str = "Insufficient privileges to complete the operation.",
    code: str = "Authorization_RequestDenied",
) -> GraphFailure:
    return GraphFailure(403, code, message)


def _bad_request(message: str, code: str = "BadRequest") -> GraphFailure:
    return GraphFailure(400, code, message)


# ---------------------------------------------------------------------------------- requests
@dataclass(slots=True)
class GraphRequest:
    """One Graph call (HTTP or a ``$batch`` item)."""

    method: str
    version: str  # "v1.0" | "beta"
    path: str  # after the version, percent-decoded, e.g. "/users/abc"
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes
    origin: str  # scheme://host:port of the emulator, for nextLink
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    caller: Caller | None = None
    #: ``time.perf_counter()`` when the HTTP request reached the emulator (before any emulated
    #: latency); 0 for ``$batch`` items. Benchmarks time Graph's side of a call from it.
    received_at: float = 0.0

    def query_map(self) -> dict[str, str]:
        """Query options as a dict (last one wins; Graph rejects duplicates anyway)."""
        return dict(self.query)

    def json(self) -> Any:
        """The JSON body or 400 like Graph."""
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _bad_request(
                "Unable to read JSON request payload. Please ensure Content-Type "
                "header is set and payload is of valid JSON format."
            ) from exc


@dataclass(slots=True)
class GraphResponse:
    """The answer to one :class:`GraphRequest`."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[GraphRequest, dict[str, str]], Awaitable[GraphResponse]]


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    beta_only: bool


_SEGMENT = r"(?P<{name}>[^/]+)"
_FILTER_FN = r"filterByCurrentUser\(on=(?P<on>[^)]*)\)"


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    pattern = pattern.replace(re.escape("filterByCurrentUser(on=...)"), _FILTER_FN)
    pattern = re.sub(r"\\\{(\w+)\\\}", lambda m: _SEGMENT.format(name=m.group(1)), pattern)
    return re.compile(f"^{pattern}/?$")


# ---------------------------------------------------------------------------------- formatting
def iso(dt: datetime | None) -> str | None:
    """Graph's DateTimeOffset text: ``2022-02-11T17:35:25.24Z``."""
    if dt is None:
        return None
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += "." + f"{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


def _sign_in_text(dt: datetime | None) -> str | None:
    # principal.lastUserSignInDateTime is a non-ISO string in Graph's examples:
    # "2/11/2022 5:31:37 PM +00:00".
    if dt is None:
        return None
    hour12 = dt.hour % 12 or 12
    suffix = "AM" if dt.hour < 12 else "PM"
    return f"{dt.month}/{dt.day}/{dt.year} {hour12}:{dt.minute:02d}:{dt.second:02d} {suffix} +00:00"


def _identity(actor: tuple[str, str, str] | None) -> dict[str, Any]:
    actor_id, name, upn = actor or (ZERO_GUID, "", "")
    return {"id": actor_id, "displayName": name, "type": None, "userPrincipalName": upn}


T = TypeVar("T")


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_skiptoken(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("o:"):
            raise ValueError(raw)
        offset = int(raw[2:])
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_request(
            "The specified page token value has expired or is invalid.",
            "Directory_ExpiredPageToken",
        ) from exc
    if offset < 0:
        raise _bad_request(
            "The specified page token value has expired or is invalid.",
            "Directory_ExpiredPageToken",
        )
    return offset


_CLAUSE = re.compile(r"^\s*([A-Za-z][\w/.]*)\s+eq\s+'((?:[^']|'')*)'\s*$")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


def parse_filter(text: str, allowed: Iterable[str]) -> list[tuple[str, str]]:
    """Parse ``a eq 'x' and b eq 'y'`` (the subset the bot needs); anything else → 400."""
    allowed_set = set(allowed)
    clauses: list[tuple[str, str]] = []
    # Split on "and" outside quotes: quotes are balanced in valid input, so split the
    # segments between quoted literals only.
    parts: list[str] = []
    current = ""
    for index, chunk in enumerate(re.split(r"('(?:[^']|'')*')", text)):
        if index % 2 == 1:
            current += chunk
            continue
        pieces = _AND.split(chunk)
        current += pieces[0]
        for piece in pieces[1:]:
            parts.append(current)
            current = piece
    parts.append(current)
    for part in parts:
        match = _CLAUSE.match(part)
        if match is None:
            raise _bad_request(
                f"Invalid filter clause: '{part.strip()}'. Only 'property eq "
                "'value'' clauses joined by 'and' are supported."
            )
        name, value = match.group(1), match.group(2).replace("''", "'")
        if name not in allowed_set:
            raise _bad_request(
                f"Invalid filter clause: property '{name}' is not supported for "
                "filtering on this resource."
            )
        clauses.append((name, value))
    return clauses


@dataclass(slots=True)
class _ListSpec:
    """How a collection route pages and filters."""

    context: str
    allowed: frozenset[str]  # query options accepted ($-names)
    filter_fields: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    open_type: bool = False
    skiptoken_paging: bool = False  # directory collections page with $skiptoken, not $skip


def _field(name: str) -> Callable[[Mapping[str, Any]], Any]:
    """A $filter accessor for a property of an already serialized entity."""

    def get(entity: Mapping[str, Any]) -> Any:
        return entity.get(name)

    return get


_COLLECTION_OPTIONS = frozenset({"$top", "$skip", "$select", "$filter", "$count", "$orderby"})


# ---------------------------------------------------------------------------------- the API
class GraphApi:
    """The emulated Graph service for one tenant.

    ``validate_token(raw)`` returns the validated token (``Identity.validate_access_token``
    bound to the Graph audience) or raises :class:`emulator.identity.TokenError`.
    ``on_bot_installed(user_oid, user_name, installation_id)`` is called when the bot's own
    Teams app is installed for a user; ``chat_id_for(user_oid)`` gives the bot's 1:1 chat id.
    """

    def __init__(
        self,
        *,
        tenant: Tenant,
        validate_token: TokenValidator,
        faults: Faults | None = None,
        latency_s: float = 0.0,
        bot_app_id: str | None = None,
        on_bot_installed: InstallListener | None = None,
        chat_id_for: ChatIdLookup | None = None,
        app_registrations: AppRegistry | None = None,
    ) -> None:
        self.tenant = tenant
        self._validate_token = validate_token
        self.faults = faults or Faults(clock=tenant.clock)
        self.latency_s = latency_s
        self.bot_app_id = bot_app_id
        self.on_bot_installed = on_bot_installed
        self.chat_id_for = chat_id_for
        #: App registrations behind ``/applications``, ``/servicePrincipals`` and
        #: ``/oauth2PermissionGrants`` (the Identity); ``None`` lists only the tenant's seeded ones.
        self.app_registrations = app_registrations
        #: Recent requests (method, version, path, status), bounded so long benchmark runs
        #: do not grow memory; ``request_count`` counts all of them (batch items included).
        self.request_log: deque[tuple[str, str, str, int]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.request_count = 0
        self._routes: list[_Route] = []
        self._register_routes()

    # ------------------------------------------------------------------ aiohttp
    def make_app(self) -> web.Application:
        """The Graph web app (``/v1.0/...`` and ``/beta/...``), with faults installed."""
        app = web.Application(client_max_size=4 * 1024 * 1024)
        self.faults.install(app, "graph")
        app.router.add_route("*", r"/{version:v1\.0|beta}/{tail:.*}", self._handle_http)
        return app

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        received_at = time.perf_counter()
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        origin = f"{request.scheme}://{request.host}"
        graph_request = GraphRequest(
            method=request.method.upper(),
            version=request.match_info["version"],
            path="/" + request.match_info["tail"],
            query=list(parse_qsl(request.query_string, keep_blank_values=True)),
            headers=request.headers,
            body=await request.read(),
            origin=origin,
            received_at=received_at,
        )
        try:
            response = await self.dispatch(graph_request)
        except Exception:
            # A bug in the emulator must still look like Graph to the client (and be loud here).
            log.exception("unhandled error on %s %s", graph_request.method, graph_request.path)
            response = self._error(
                graph_request, 500, "InternalServerError", "An internal server error occurred."
            )
        # Graph mints its own request-id and echoes the caller's client-request-id.
        headers = {
            "request-id": graph_request.request_id,
            "client-request-id": request.headers.get("client-request-id", graph_request.request_id),
            **response.headers,
        }
        if response.body is None:
            return web.Response(status=response.status, headers=headers)
        headers["Content-Type"] = _JSON_CONTENT_TYPE
        return web.Response(
            status=response.status, headers=headers, body=json.dumps(response.body).encode()
        )

    # ------------------------------------------------------------------ dispatch
    async def dispatch(self, request: GraphRequest) -> GraphResponse:
        """Route one request and map failures to Graph error bodies."""
        try:
            response = await self._dispatch(request)
        except GraphFailure as failure:
            response = self._error(request, failure.status, failure.code, failure.message)
            response.headers.update(failure.headers)
        except TenantError as error:
            response = self._error(request, error.status, error.code, error.message)
        self._note(request.method, request.version, request.path, response.status)
        return response

    def _note(self, method: str, version: str, path: str, status: int) -> None:
        self.request_count += 1
        self.request_log.append((method, version, path, status))

    def _error(self, request: GraphRequest, status: int, code: str, message: str) -> GraphResponse:
        body = graph_error_body(
            code, message, now=self.tenant.clock.now(), request_id=request.request_id
        )
        return GraphResponse(status=status, body=body)

    async def _dispatch(self, request: GraphRequest) -> GraphResponse:
        path = request.path.rstrip("/") or "/"
        method_mismatch = False
        for route in self._routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.beta_only and request.version != "beta":
                continue
            if route.method != request.method:
                method_mismatch = True
                continue
            self._check_query_names(request)
            request.caller = self._authenticate(request)
            self.tenant.refresh()
            return await route.handler(
                request, {k: v for k, v in match.groupdict().items() if v is not None}
            )
        if method_mismatch:
            raise GraphFailure(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request uri.",
            )
        segment = path.rstrip("/").rsplit("/", 1)[-1]
        raise _bad_request(f"Resource not found for the segment '{segment}'.")

    @staticmethod
    def _check_query_names(request: GraphRequest) -> None:
        seen: set[str] = set()
        for name, _value in request.query:
            if name in seen and name.startswith("$"):
                raise _bad_request(
                    f"Query option '{name}' was specified more than once, but it "
                    "must be specified at most once."
                )
            seen.add(name)

    def _authenticate(self, request: GraphRequest) -> Caller:
        header = request.headers.get("Authorization", "")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise GraphFailure(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            caller = self._validate_token(raw.strip())
        except TokenError as exc:
            raise GraphFailure(exc.status, exc.code, exc.message) from exc
        if caller.tenant_id != self.tenant.tenant_id:
            raise GraphFailure(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience or tenant.",
            )
        return caller

    # ------------------------------------------------------------------ permission helpers
    @staticmethod
    def _caller(request: GraphRequest) -> Caller:
        assert request.caller is not None
        return request.caller

    def _require(
        self,
        request: GraphRequest,
        *,
        app: frozenset[str] | None,
        delegated: frozenset[str] | None,
        code: str = "Authorization_RequestDenied",
    ) -> Caller:
        """Check the caller holds one of the permissions Graph requires for the route.

        ``app=None`` means application permissions are not supported (delegated only);
        ``delegated=None`` means the route is app-only.
        """
        caller = self._caller(request)
        if caller.is_delegated:
            if delegated is None or not (caller.scopes & delegated):
                raise _forbidden(code=code)
        else:
            if app is None:
                raise _forbidden(
                    "This operation is not supported with application "
                    "permissions; it needs a signed-in user (delegated token).",
                    code=code,
                )
            if not (caller.roles & app):
                raise _forbidden(code=code)
        return caller

    def _require_ar_read(self, request: GraphRequest, *, admin_view: bool) -> Caller:
        caller = self._require(request, app=AR_READ, delegated=AR_READ, code="Forbidden")
        if admin_view and caller.is_delegated:
            user = self.tenant.users.get(caller.oid or "")
            if user is None or not (user.directory_roles & AR_ADMIN_ROLES):
                # Emulator choice: a delegated caller without a governance role reads only
                # their own work, through filterByCurrentUser.
                raise _forbidden(
                    "The signed-in user needs an administrator role to read all "
                    "access reviews; use filterByCurrentUser(on='reviewer').",
                    code="Forbidden",
                )
        return caller

    def _require_reviewer(self, request: GraphRequest) -> str:
        caller = self._require(request, app=None, delegated=AR_WRITE, code="Forbidden")
        if not caller.oid:
            raise _forbidden("The token has no user object id.", code="Forbidden")
        return caller.oid

    def _current_user_id(self, request: GraphRequest, on: str | None) -> str:
        if on is not None and unquote(on).strip("'\"") != "reviewer":
            raise _bad_request(
                f"Invalid value '{unquote(on)}' for parameter 'on'. Supported values: 'reviewer'."
            )
        caller = self._require(request, app=AR_READ, delegated=AR_READ, code="Forbidden")
        if not caller.is_delegated or not caller.oid:
            # Emulator choice (open question 2 in the reference): with no signed-in user
            # there is no "current user", so the call is refused rather than answered empty.
            raise _forbidden(
                "filterByCurrentUser needs a signed-in user (delegated token).", code="Forbidden"
            )
        return caller.oid

    # ------------------------------------------------------------------ collections
    def _collection(
        self,
        request: GraphRequest,
        items: Sequence[T],
        serialize: Callable[[T], dict[str, Any]],
        spec: _ListSpec,
    ) -> GraphResponse:
        query = request.query_map()
        for name in query:
            if name.startswith("$") and name not in spec.allowed:
                raise _bad_request(
                    f"Query option '{name}' is not allowed. To allow it, set the "
                    "'AllowedQueryOptions' property on EnableQueryAttribute or "
                    "QueryValidationSettings."
                )
        selected: Sequence[T] = items
        if "$filter" in query:
            clauses = parse_filter(query["$filter"], spec.filter_fields)
            selected = [
                item
                for item in selected
                if all(str(spec.filter_fields[name](item)) == value for name, value in clauses)
            ]
        if "$orderby" in query:
            name, _, direction = query["$orderby"].strip().partition(" ")
            if name not in spec.filter_fields or direction.lower() not in {"", "asc", "desc"}:
                raise _bad_request(f"Unsupported $orderby '{query['$orderby']}'.")
            selected = sorted(
                selected,
                key=lambda item: str(spec.filter_fields[name](item)),
                reverse=direction.lower() == "desc",
            )
        page_size = DEFAULT_PAGE_SIZE
        if "$top" in query:
            page_size = self._int_option(query["$top"], "$top", 1, MAX_PAGE_SIZE)
        offset = 0
        if "$skip" in query:
            if spec.skiptoken_paging:
                raise _bad_request(
                    "'$skip' is not supported by the service.", "Request_UnsupportedQuery"
                )
            offset = self._int_option(query["$skip"], "$skip", 0, 10**9)
        if "$skiptoken" in query:
            offset = _decode_skiptoken(query["$skiptoken"])
        page = selected[offset : offset + page_size]
        select = self._select(query)
        values = [self._apply_select(serialize(item), select, spec.open_type) for item in page]
        body: dict[str, Any] = {"@odata.context": self._context(request, spec.context, select)}
        if query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(selected)
        if offset + page_size < len(selected):
            body["@odata.nextLink"] = self._next_link(
                request, offset + page_size, spec.skiptoken_paging
            )
        body["value"] = values
        return GraphResponse(200, body)

    @staticmethod
    def _int_option(text: str, name: str, low: int, high: int) -> int:
        try:
            value = int(text)
        except ValueError as exc:
            raise _bad_request(f"Invalid value '{text}' for query option '{name}'.") from exc
        if not low <= value <= high:
            raise _bad_request(
                f"Invalid value '{text}' for query option '{name}': it must be "
                f"between {low} and {high}."
            )
        return value

    @staticmethod
    def _select(query: Mapping[str, str]) -> list[str] | None:
        if "$select" not in query:
            return None
        names = [name.strip() for name in query["$select"].split(",") if name.strip()]
        if not names:
            raise _bad_request("Invalid $select: no properties given.")
        return names

    @staticmethod
    def _apply_select(
        entity: dict[str, Any], select: list[str] | None, open_type: bool
    ) -> dict[str, Any]:
        if select is None:
            return entity
        unknown = [name for name in select if name not in entity]
        if unknown and not open_type:
            raise _bad_request(f"Could not find a property named '{unknown[0]}' on this type.")
        kept = {name: entity[name] for name in select if name in entity}
        if "@odata.type" in entity:
            kept = {"@odata.type": entity["@odata.type"], **kept}
        return kept

    @staticmethod
    def _context(request: GraphRequest, context: str, select: list[str] | None) -> str:
        if select and not context.startswith("Collection(") and "/$entity" not in context:
            context = f"{context}({','.join(select)})"
        return f"{GRAPH_HOST}/{request.version}/$metadata#{context}"

    @staticmethod
    def _next_link(request: GraphRequest, offset: int, skiptoken: bool) -> str:
        params = [(k, v) for k, v in request.query if k not in {"$skip", "$skiptoken"}]
        if skiptoken:
            params.append(("$skiptoken", _encode_skiptoken(offset)))
        else:
            params.append(("$skip", str(offset)))
        return f"{request.origin}/{request.version}{request.path}?{urlencode(params)}"

    def _entity(
        self,
        request: GraphRequest,
        entity: dict[str, Any],
        context: str,
        *,
        allowed: frozenset[str] = frozenset({"$select"}),
        open_type: bool = False,
    ) -> GraphResponse:
        query = request.query_map()
        for name in query:
            if name.startswith("$") and name not in allowed:
                raise _bad_request(
                    f"Query option '{name}' is not allowed. To allow it, set the "
                    "'AllowedQueryOptions' property on EnableQueryAttribute or "
                    "QueryValidationSettings."
                )
        select = self._select(query)
        body = self._apply_select(entity, select, open_type)
        if select and context.endswith("/$entity"):
            context = f"{context.removesuffix('/$entity')}({','.join(select)})/$entity"
        return GraphResponse(200, {"@odata.context": self._context(request, context, None), **body})

    # ------------------------------------------------------------------ serializers
    def _settings_json(self, definition: Definition) -> dict[str, Any]:
        s = definition.settings
        return {
            "mailNotificationsEnabled": s.mail_notifications_enabled,
            "reminderNotificationsEnabled": s.reminder_notifications_enabled,
            "justificationRequiredOnApproval": s.justification_required_on_approval,
            "defaultDecisionEnabled": s.default_decision_enabled,
            "defaultDecision": s.default_decision,
            "instanceDurationInDays": s.instance_duration_in_days,
            "autoApplyDecisionsEnabled": s.auto_apply_decisions_enabled,
            "recommendationsEnabled": s.recommendations_enabled,
            "recommendationLookBackDuration": s.recommendation_look_back_duration,
            "decisionHistoriesForReviewersEnabled": s.decision_histories_for_reviewers_enabled,
            "recurrence": definition.recurrence,
            "applyActions": [{"@odata.type": "#microsoft.graph.removeAccessApplyAction"}]
            if s.auto_apply_decisions_enabled
            else [],
            "recommendationInsightSettings": [],
        }

    @staticmethod
    def _stage_settings_json(stage: StageSettings) -> dict[str, Any]:
        return {
            "stageId": stage.stage_id,
            "dependsOn": list(stage.depends_on),
            "durationInDays": stage.duration_in_days,
            "recommendationsEnabled": stage.recommendations_enabled,
            "decisionsThatWillMoveToNextStage": list(stage.decisions_that_will_move_to_next_stage),
            "reviewers": [r.to_graph() for r in stage.reviewers],
            "fallbackReviewers": [r.to_graph() for r in stage.fallback_reviewers],
        }

    def _definition_json(self, definition: Definition) -> dict[str, Any]:
        created_id, created_name, created_upn = definition.created_by
        fallback = [r.to_graph() for r in definition.fallback_reviewers]
        return {
            "id": definition.id,
            "displayName": definition.display_name,
            "createdDateTime": iso(definition.created_at),
            "lastModifiedDateTime": iso(definition.created_at),
            "status": self.tenant.definition_status(definition),
            "descriptionForAdmins": definition.description_for_admins,
            "descriptionForReviewers": definition.description_for_reviewers,
            "createdBy": {
                "id": created_id,
                "displayName": created_name,
                "userPrincipalName": created_upn,
            },
            "scope": definition.scope,
            "instanceEnumerationScope": definition.instance_enumeration_scope,
            "reviewers": [r.to_graph() for r in definition.reviewers],
            # Setting either fills in both (the deprecated name is still echoed).
            "backupReviewers": fallback,
            "fallbackReviewers": fallback,
            "settings": self._settings_json(definition),
            "stageSettings": [self._stage_settings_json(s) for s in definition.stage_settings],
            "additionalNotificationRecipients": [],
        }

    def _instance_json(self, instance: Instance) -> dict[str, Any]:
        definition = self.tenant.definitions[instance.definition_id]
        return {
            "id": instance.id,
            "startDateTime": iso(instance.start),
            "endDateTime": iso(instance.end),
            "status": self.tenant.instance_status(instance),
            "displayName": definition.display_name,
            "scope": instance.scope,
            "reviewers": [r.to_graph() for r in instance.reviewers],
            "fallbackReviewers": [r.to_graph() for r in instance.fallback_reviewers],
        }

    def _stage_json(self, stage: Stage) -> dict[str, Any]:
        return {
            "id": stage.id,
            "startDateTime": iso(stage.start),
            "endDateTime": iso(stage.end),
            "status": self.tenant.stage_status(stage),
            "reviewers": [r.to_graph() for r in stage.settings.reviewers],
            "fallbackReviewers": [r.to_graph() for r in stage.settings.fallback_reviewers],
        }

    def _principal_json(self, item: Decision) -> dict[str, Any]:
        if item.principal_kind == "servicePrincipal":
            sp = self.tenant.service_principals.get(item.principal_id)
            return {
                "@odata.type": "#microsoft.graph.servicePrincipalIdentity",
                "id": item.principal_id,
                "displayName": sp.display_name if sp else "",
                "appId": sp.app_id if sp else None,
            }
        user = self.tenant.users.get(item.principal_id)
        return {
            "@odata.type": "#microsoft.graph.userIdentity",
            "id": item.principal_id,
            "displayName": user.display_name if user else "",
            "type": "user",
            "userPrincipalName": user.user_principal_name if user else "",
            "lastUserSignInDateTime": _sign_in_text(user.last_sign_in) if user else None,
        }

    def _decision_json(
        self,
        instance: Instance,
        item: Decision,
        stage: Stage | None,
        version: str,
        *,
        typed: bool = False,
    ) -> dict[str, Any]:
        decision, justification = item.decision, item.justification
        reviewed_by, reviewed_at = item.reviewed_by, item.reviewed_at
        if stage is not None and item.history is not None and stage.index < item.stage_index:
            # Seen through an earlier stage: that stage's outcome.
            past = item.history[stage.index]
            decision, justification = past.decision, past.justification
            reviewed_by, reviewed_at = past.reviewed_by, past.reviewed_at
        principal_collection = (
            "servicePrincipals" if item.principal_kind == "servicePrincipal" else "users"
        )
        body: dict[str, Any] = {}
        if typed:
            body["@odata.type"] = "#microsoft.graph.accessReviewInstanceDecisionItem"
        body.update(
            {
                "id": item.id,
                "accessReviewId": instance.id,
                "reviewedDateTime": iso(reviewed_at),
                "decision": decision,
                "justification": justification,
                "appliedDateTime": iso(item.applied_at),
                "applyResult": item.apply_result,
                "recommendation": item.recommendation,
                "principalLink": f"{GRAPH_HOST}/v1.0/{principal_collection}/{item.principal_id}",
                "resourceLink": item.resource.link if item.resource else None,
                "reviewedBy": _identity(reviewed_by),
                "appliedBy": _identity(item.applied_by),
                "resource": item.resource.to_graph() if item.resource else None,
                "principal": self._principal_json(item),
            }
        )
        if version == "beta" and item.membership_type is not None:
            body["principalResourceMembership"] = {"membershipType": item.membership_type}
        definition = self.tenant.definitions[instance.definition_id]
        if (
            item.history
            and definition.settings.decision_histories_for_reviewers_enabled
            and (stage is None or stage.index == item.stage_index)
        ):
            # Emulator choice (undocumented shape): with decisionHistoriesForReviewersEnabled a
            # later stage shows the earlier stages' outcomes in an open-type property.
            body["decisionHistory"] = [
                {
                    "stageId": instance.stages[past.stage_index].settings.stage_id,
                    "decision": past.decision,
                    "justification": past.justification,
                    "reviewedBy": _identity(past.reviewed_by),
                    "reviewedDateTime": iso(past.reviewed_at),
                }
                for past in item.history
            ]
        return body

    def _insights_json(self, item: Decision) -> list[dict[str, Any]]:
        user = self.tenant.users.get(item.principal_id)
        if user is None:
            return []
        return [
            {
                "@odata.type": "#microsoft.graph.userSignInInsight",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"insight:{item.id}")),
                "insightCreatedDateTime": iso(self.tenant.now()),
                "lastSignInDateTime": iso(user.last_sign_in),
            }
        ]

    # ------------------------------------------------------------------ routes: registration
    def _register_routes(self) -> None:
        ar = "/identityGovernance/accessReviews"
        inst = f"{ar}/definitions/{{definition}}/instances/{{instance}}"
        stage = f"{inst}/stages/{{stage}}"
        fn = "filterByCurrentUser(on=...)"
        add = self._add
        # Access reviews (function segments before {id} segments: the id pattern would match).
        add("GET", f"{ar}/definitions", self._list_definitions)
        add("GET", f"{ar}/definitions/{fn}", self._definitions_for_me)
        add("GET", f"{ar}/definitions/{{definition}}", self._get_definition)
        add("GET", f"{ar}/definitions/{{definition}}/instances", self._list_instances)
        add("GET", f"{ar}/definitions/{{definition}}/instances/{fn}", self._instances_for_me)
        add("GET", inst, self._get_instance)
        add("GET", f"{inst}/decisions", self._list_decisions)
        add("GET", f"{inst}/decisions/{fn}", self._decisions_for_me)
        add("GET", f"{inst}/decisions/{{decision}}", self._get_decision)
        add("PATCH", f"{inst}/decisions/{{decision}}", self._patch_decision)
        add("GET", f"{inst}/contactedReviewers", self._contacted_reviewers)
        add("GET", f"{inst}/stages", self._list_stages)
        add("GET", f"{inst}/stages/{fn}", self._stages_for_me)
        add("GET", stage, self._get_stage)
        add("GET", f"{stage}/decisions", self._list_decisions)
        add("GET", f"{stage}/decisions/{fn}", self._decisions_for_me)
        add("GET", f"{stage}/decisions/{{decision}}", self._get_decision)
        add("PATCH", f"{stage}/decisions/{{decision}}", self._patch_decision)
        add("POST", f"{stage}/stop", self._stop_stage)
        for action, handler in (
            ("batchRecordDecisions", self._batch_record),
            ("acceptRecommendations", self._accept_recommendations),
            ("stop", self._stop),
            ("sendReminder", self._send_reminder),
            ("applyDecisions", self._apply_decisions),
            ("resetDecisions", self._reset_decisions),
        ):
            add("POST", f"{inst}/{action}", handler)
        # Beta-only views of "my" work.
        add("GET", f"{ar}/decisions/{fn}", self._all_decisions_for_me, beta=True)
        add("POST", f"{ar}/decisions/{fn}/recordAllDecisions", self._record_all, beta=True)
        add("GET", "/me/pendingAccessReviewInstances", self._pending_instances, beta=True)
        add("GET", "/me/pendingAccessReviewInstances/{instance}", self._pending_instance, beta=True)
        add(
            "GET",
            "/me/pendingAccessReviewInstances/{instance}/decisions",
            self._pending_decisions,
            beta=True,
        )
        add(
            "POST",
            "/me/pendingAccessReviewInstances/{instance}/batchRecordDecisions",
            self._batch_record,
            beta=True,
        )
        add(
            "POST",
            "/me/pendingAccessReviewInstances/{instance}/acceptRecommendations",
            self._accept_recommendations,
            beta=True,
        )
        # Directory.
        add("GET", "/me", self._get_me)
        add("GET", "/users/{user}", self._get_user)
        add("GET", "/users/{user}/manager", self._get_manager)
        add("GET", "/users/{user}/mailboxSettings", self._get_mailbox_settings)
        add("GET", "/groups/{group}", self._get_group)
        add("GET", "/groups/{group}/members", self._group_members)
        add("GET", "/groups/{group}/transitiveMembers", self._group_transitive_members)
        add("GET", "/groups/{group}/owners", self._group_owners)
        add("GET", "/servicePrincipals/{sp}", self._get_service_principal)
        add("GET", "/servicePrincipals/{sp}/owners", self._service_principal_owners)
        add("GET", "/applications/{app}/owners", self._application_owners)
        # App registrations, service principals and delegated grants (what `app.py doctor` reads).
        add("GET", "/servicePrincipals", self._list_service_principals)
        add("GET", "/servicePrincipals(appId='{app_id}')", self._service_principal_by_app_id)
        add("GET", "/applications", self._list_applications)
        add("GET", "/applications(appId='{app_id}')", self._application_by_app_id)
        add("GET", "/oauth2PermissionGrants", self._list_permission_grants)
        # Teams.
        add("GET", "/appCatalogs/teamsApps", self._list_teams_apps)
        add("GET", "/users/{user}/teamwork/installedApps", self._list_installed_apps)
        add("POST", "/users/{user}/teamwork/installedApps", self._install_app)
        add("GET", "/users/{user}/teamwork/installedApps/{installation}", self._get_installed_app)
        add(
            "GET",
            "/users/{user}/teamwork/installedApps/{installation}/chat",
            self._installed_app_chat,
        )
        # Others.
        add("POST", "/subscriptions", self._create_subscription)
        add("POST", "/$batch", self._batch)

    def _add(self, method: str, template: str, handler: Handler, *, beta: bool = False) -> None:
        self._routes.append(_Route(method, _compile(template), handler, beta))

    # ------------------------------------------------------------------ access reviews: reads
    def _definition_spec(self, context: str) -> _ListSpec:
        return _ListSpec(
            context=context,
            allowed=_COLLECTION_OPTIONS,
            filter_fields={
                "status": self.tenant.definition_status,
                "displayName": lambda d: d.display_name,
            },
        )

    def _instance_spec(self, context: str) -> _ListSpec:
        return _ListSpec(
            context=context,
            allowed=_COLLECTION_OPTIONS | {"$expand"},
            filter_fields={"status": self.tenant.instance_status},
        )

    @staticmethod
    def _decision_spec(context: str) -> _ListSpec:
        return _ListSpec(
            context=context,
            allowed=_COLLECTION_OPTIONS | {"$expand"},
            open_type=True,
            filter_fields={
                "decision": lambda d: d.decision,
                "recommendation": lambda d: d.recommendation,
                "applyResult": lambda d: d.apply_result,
                "principal/id": lambda d: d.principal_id,
                "resource/id": lambda d: d.resource.id if d.resource else "",
            },
        )

    async def _list_definitions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        return self._collection(
            request,
            list(self.tenant.definitions.values()),
            self._definition_json,
            self._definition_spec("identityGovernance/accessReviews/definitions"),
        )

    async def _definitions_for_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        mine = [
            d
            for d in self.tenant.definitions.values()
            if any(
                self.tenant.is_reviewer_of_instance(self.tenant.instances[iid], user_id)
                for iid in d.instance_ids
            )
        ]
        return self._collection(
            request,
            mine,
            self._definition_json,
            self._definition_spec("Collection(accessReviewScheduleDefinition)"),
        )

    async def _get_definition(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        definition = self.tenant.definition(m["definition"])
        return self._entity(
            request,
            self._definition_json(definition),
            "identityGovernance/accessReviews/definitions/$entity",
        )

    def _instance_serializer(self, request: GraphRequest) -> Callable[[Instance], dict[str, Any]]:
        expand = request.query_map().get("$expand")
        if expand is None:
            return self._instance_json
        if request.version != "beta" or expand.strip() != "definition":
            raise _bad_request(f"Unsupported $expand '{expand}'.")

        def with_definition(instance: Instance) -> dict[str, Any]:
            body = self._instance_json(instance)
            body["definition"] = self._definition_json(
                self.tenant.definitions[instance.definition_id]
            )
            return body

        return with_definition

    async def _list_instances(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        definition = self.tenant.definition(m["definition"])
        instances = [self.tenant.instances[iid] for iid in definition.instance_ids]
        return self._collection(
            request,
            instances,
            self._instance_serializer(request),
            self._instance_spec(
                f"identityGovernance/accessReviews/definitions('{definition.id}')/instances"
            ),
        )

    async def _instances_for_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        definition = self.tenant.definition(m["definition"])
        mine = [
            self.tenant.instances[iid]
            for iid in definition.instance_ids
            if self.tenant.is_reviewer_of_instance(self.tenant.instances[iid], user_id)
        ]
        return self._collection(
            request,
            mine,
            self._instance_serializer(request),
            self._instance_spec("Collection(accessReviewInstance)"),
        )

    async def _get_instance(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        return self._entity(
            request,
            self._instance_serializer(request)(instance),
            f"identityGovernance/accessReviews/definitions('{instance.definition_id}')/instances"
            "/$entity",
            allowed=frozenset({"$select", "$expand"}),
        )

    def _stage_of(self, instance: Instance, m: Mapping[str, str]) -> Stage | None:
        return self.tenant.stage(instance, m["stage"]) if "stage" in m else None

    def _decision_serializer(
        self, request: GraphRequest, instance: Instance | None, stage: Stage | None, *, typed: bool
    ) -> Callable[[tuple[Instance, Decision]], dict[str, Any]]:
        expand = request.query_map().get("$expand", "").replace(" ", "")
        with_insights = with_instance = False
        for part in filter(None, re.split(r",(?![^(]*\))", expand)):
            if request.version == "beta" and part == "insights":
                with_insights = True
            elif request.version == "beta" and part in {"instance", "instance($expand=definition)"}:
                with_instance = True
            else:
                raise _bad_request(f"Unsupported $expand '{part}'.")

        def serialize(pair: tuple[Instance, Decision]) -> dict[str, Any]:
            owner, item = pair
            body = self._decision_json(owner, item, stage, request.version, typed=typed)
            if with_insights:
                body["insights"] = self._insights_json(item)
            if with_instance:
                instance_body = self._instance_json(owner)
                instance_body["definition"] = self._definition_json(
                    self.tenant.definitions[owner.definition_id]
                )
                body["instance"] = instance_body
            return body

        return serialize

    def _pair_spec(self, context: str) -> _ListSpec:
        base = self._decision_spec(context)
        return _ListSpec(
            context=context,
            allowed=base.allowed,
            open_type=True,
            filter_fields={
                name: (lambda fn: lambda pair: fn(pair[1]))(getter)
                for name, getter in base.filter_fields.items()
            },
        )

    async def _list_decisions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        stage = self._stage_of(instance, m)
        items = [
            (instance, item)
            for item in instance.decisions.values()
            if stage is None or item.stage_index >= stage.index
        ]
        context = (
            f"identityGovernance/accessReviews/definitions('{instance.definition_id}')"
            f"/instances('{instance.id}')/decisions"
        )
        if stage is not None:
            context = (
                f"identityGovernance/accessReviews/definitions('{instance.definition_id}')"
                f"/instances('{instance.id}')/stages('{stage.id}')/decisions"
            )
        return self._collection(
            request,
            items,
            self._decision_serializer(request, instance, stage, typed=False),
            self._pair_spec(context),
        )

    async def _decisions_for_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        instance = self.tenant.instance(m["definition"], m["instance"])
        stage = self._stage_of(instance, m)
        if instance.stages and stage is None:
            # Instance-level view of a multi-stage review: the items in the current stage.
            current = self.tenant.active_stage(instance)
            stage_index = current.index if current else None
        else:
            stage_index = stage.index if stage else None
        ids = self.tenant.reviewer_decision_ids(instance, user_id, stage_index)
        items = [(instance, instance.decisions[i]) for i in ids]
        return self._collection(
            request,
            items,
            self._decision_serializer(request, instance, stage, typed=True),
            self._pair_spec("Collection(accessReviewInstanceDecisionItem)"),
        )

    async def _get_decision(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        caller = self._require_ar_read(request, admin_view=False)
        instance = self.tenant.instance(m["definition"], m["instance"])
        stage = self._stage_of(instance, m)
        item = self.tenant.decision(instance, m["decision"], stage)
        if caller.is_delegated:
            user = self.tenant.users.get(caller.oid or "")
            is_admin = user is not None and bool(user.directory_roles & AR_ADMIN_ROLES)
            stage_index = stage.index if stage else None
            if not is_admin and (caller.oid or "") not in self.tenant.reviewers_of(
                instance, item, stage_index
            ):
                raise _forbidden(
                    "The caller is not a reviewer of this decision item.", code="Forbidden"
                )
        serialize = self._decision_serializer(request, instance, stage, typed=False)
        return self._entity(
            request,
            serialize((instance, item)),
            f"identityGovernance/accessReviews/definitions('{instance.definition_id}')/instances("
            f"'{instance.id}')/decisions/$entity",
            allowed=frozenset({"$select", "$expand"}),
            open_type=True,
        )

    async def _contacted_reviewers(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        people = self.tenant.contacted_reviewers(instance)

        def serialize(pair: tuple[User, datetime]) -> dict[str, Any]:
            user, contacted_at = pair
            return {
                "id": user.id,
                "displayName": user.display_name,
                "userPrincipalName": user.user_principal_name,
                "createdDateTime": iso(contacted_at),
            }

        return self._collection(
            request,
            people,
            serialize,
            _ListSpec(
                context=f"identityGovernance/accessReviews/definitions('"
                f"{instance.definition_id}')/instances('{instance.id}')/"
                "contactedReviewers",
                allowed=frozenset({"$top", "$skip", "$select", "$count"}),
            ),
        )

    def _stage_spec(self, context: str) -> _ListSpec:
        return _ListSpec(
            context=context,
            allowed=frozenset({"$filter", "$orderby", "$select"}),
            filter_fields={"status": self.tenant.stage_status},
        )

    async def _list_stages(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        return self._collection(
            request,
            self.tenant.visible_stages(instance),
            self._stage_json,
            self._stage_spec(
                f"identityGovernance/accessReviews/definitions('"
                f"{instance.definition_id}')/instances('{instance.id}')/stages"
            ),
        )

    async def _stages_for_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        instance = self.tenant.instance(m["definition"], m["instance"])
        mine = [
            s
            for s in self.tenant.visible_stages(instance)
            if self.tenant.reviewer_decision_ids(instance, user_id, s.index)
        ]
        return self._collection(
            request, mine, self._stage_json, self._stage_spec("Collection(accessReviewStage)")
        )

    async def _get_stage(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_read(request, admin_view=True)
        instance = self.tenant.instance(m["definition"], m["instance"])
        stage = self.tenant.stage(instance, m["stage"])
        return self._entity(
            request,
            self._stage_json(stage),
            f"identityGovernance/accessReviews/definitions('"
            f"{instance.definition_id}')/instances('{instance.id}')/stages"
            "/$entity",
        )

    # ------------------------------------------------------------------ beta: my work
    def _my_pending(self, user_id: str) -> list[Instance]:
        return [
            instance
            for instance in self.tenant.instances.values()
            if self.tenant.instance_status(instance) == "InProgress"
            and self.tenant.reviewer_decision_ids(instance, user_id, self._current_stage(instance))
        ]

    def _current_stage(self, instance: Instance) -> int | None:
        if not instance.stages:
            return None
        active = self.tenant.active_stage(instance)
        return active.index if active else None

    def _require_me(self, request: GraphRequest) -> str:
        caller = self._require(request, app=None, delegated=AR_READ, code="Forbidden")
        if not caller.oid:
            raise _forbidden("The token has no user object id.", code="Forbidden")
        return caller.oid

    async def _pending_instances(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._require_me(request)
        spec = _ListSpec(
            context="Collection(accessReviewInstance)",
            allowed=frozenset({"$top", "$skip", "$expand"}),
        )
        return self._collection(
            request, self._my_pending(user_id), self._instance_serializer(request), spec
        )

    def _my_instance(self, user_id: str, instance_id: str) -> Instance:
        for instance in self._my_pending(user_id):
            if instance.id == instance_id:
                return instance
        raise TenantError(
            404,
            "NotFound",
            f"Pending access review instance '{instance_id}' not found for the signed-in user.",
        )

    async def _pending_instance(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._require_me(request)
        instance = self._my_instance(user_id, m["instance"])
        return self._entity(
            request,
            self._instance_serializer(request)(instance),
            "me/pendingAccessReviewInstances/$entity",
            allowed=frozenset({"$expand"}),
        )

    async def _pending_decisions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._require_me(request)
        instance = self._my_instance(user_id, m["instance"])
        ids = self.tenant.reviewer_decision_ids(instance, user_id, self._current_stage(instance))
        items = [(instance, instance.decisions[i]) for i in ids]
        spec = self._pair_spec("Collection(accessReviewInstanceDecisionItem)")
        spec.allowed = frozenset({"$top", "$skip", "$filter", "$select", "$expand", "$count"})
        return self._collection(
            request, items, self._decision_serializer(request, instance, None, typed=True), spec
        )

    async def _all_decisions_for_me(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        user_id = self._current_user_id(request, m.get("on"))
        items: list[tuple[Instance, Decision]] = []
        for instance in self._my_pending(user_id):
            for decision_id in self.tenant.reviewer_decision_ids(
                instance, user_id, self._current_stage(instance)
            ):
                items.append((instance, instance.decisions[decision_id]))
        return self._collection(
            request,
            items,
            self._decision_serializer(request, None, None, typed=True),
            self._pair_spec("Collection(accessReviewInstanceDecisionItem)"),
        )

    # ------------------------------------------------------------------ access reviews: writes
    @staticmethod
    def _decision_body(request: GraphRequest, *, allowed: frozenset[str]) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise _bad_request("The request body must be a JSON object.")
        unknown = [k for k in body if k not in allowed and not k.startswith("@odata")]
        if unknown:
            raise _bad_request(f"Invalid property '{unknown[0]}' in the request body.")
        decision = body.get("decision")
        if not isinstance(decision, str):
            raise _bad_request("The 'decision' property is required.")
        justification = body.get("justification") or ""
        if not isinstance(justification, str):
            raise _bad_request("The 'justification' property must be a string.")
        return body

    async def _patch_decision(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user_id = self._require_reviewer(request)
        instance = self.tenant.instance(m["definition"], m["instance"])
        body = self._decision_body(request, allowed=frozenset({"decision", "justification"}))
        self.tenant.record_decision(
            instance.id,
            m["decision"],
            body["decision"],
            user_id,
            body.get("justification") or "",
            stage_id=m.get("stage"),
            by_upn=self._caller(request).upn,
        )
        return GraphResponse(204)

    def _instance_for_action(self, m: Mapping[str, str]) -> Instance:
        if "definition" in m:
            return self.tenant.instance(m["definition"], m["instance"])
        found = self.tenant.instances.get(m["instance"])
        if found is None:
            raise TenantError(
                404, "NotFound", f"Access review instance '{m['instance']}' not found."
            )
        return found

    async def _batch_record(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        # An app is never a reviewer, so app-only calls are refused (reference §2 note †).
        user_id = self._require_reviewer(request)
        instance = self._instance_for_action(m)
        body = self._decision_body(
            request, allowed=frozenset({"decision", "justification", "principalId", "resourceId"})
        )
        self.tenant.batch_record_decisions(
            instance.id,
            user_id,
            body["decision"],
            body.get("justification") or "",
            principal_id=body.get("principalId"),
            resource_id=body.get("resourceId"),
            by_upn=self._caller(request).upn,
        )
        return GraphResponse(204)

    async def _record_all(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        if unquote(m.get("on", "")).strip("'\"") != "reviewer":
            raise _bad_request("Invalid value for parameter 'on'. Supported values: 'reviewer'.")
        user_id = self._require_reviewer(request)
        body = self._decision_body(
            request, allowed=frozenset({"decision", "justification", "principalId", "resourceId"})
        )
        if body["decision"] not in {"Approve", "Deny", "DontKnow"}:
            raise _bad_request("Invalid decision: expected Approve, Deny or DontKnow.")
        for instance in self._my_pending(user_id):
            self.tenant.batch_record_decisions(
                instance.id,
                user_id,
                body["decision"],
                body.get("justification") or "",
                principal_id=body.get("principalId"),
                resource_id=body.get("resourceId"),
                by_upn=self._caller(request).upn,
            )
        return GraphResponse(204)

    async def _accept_recommendations(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        user_id = self._require_reviewer(request)
        instance = self._instance_for_action(m)
        self.tenant.accept_recommendations(instance.id, user_id, by_upn=self._caller(request).upn)
        return GraphResponse(204)

    def _require_ar_admin_write(self, request: GraphRequest) -> Caller:
        return self._require(request, app=AR_WRITE, delegated=AR_WRITE, code="Forbidden")

    async def _stop(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_admin_write(request)
        self.tenant.stop_instance(self._instance_for_action(m).id)
        return GraphResponse(204)

    async def _stop_stage(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_admin_write(request)
        self.tenant.stop_stage(self._instance_for_action(m).id, m["stage"])
        return GraphResponse(204)

    async def _send_reminder(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_admin_write(request)
        self.tenant.send_reminder(self._instance_for_action(m).id)
        return GraphResponse(204)

    async def _apply_decisions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        caller = self._require_ar_admin_write(request)
        self.tenant.apply_decisions(
            self._instance_for_action(m).id, caller.oid if caller.is_delegated else None
        )
        return GraphResponse(204)

    async def _reset_decisions(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require_ar_admin_write(request)
        self.tenant.reset_decisions(self._instance_for_action(m).id)
        return GraphResponse(204)

    # ------------------------------------------------------------------ directory
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
        select = self._select(request.query_map())
        full = self._user_json(user, full=True)
        entity = full if select else {k: full[k] for k in self._USER_DEFAULT}
        return self._entity(request, entity, "users/$entity")

    async def _get_me(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        caller = self._caller(request)
        if not caller.is_delegated or not caller.oid:
            raise _bad_request("/me request is only valid with delegated authentication flow.")
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

    def _directory_object_json(self, object_id: str) -> dict[str, Any] | None:
        obj = self.tenant.directory_object(object_id)
        if isinstance(obj, User):
            return {"@odata.type": "#microsoft.graph.user", **self._user_json(obj, full=True)}
        if isinstance(obj, Group):
            return {"@odata.type": "#microsoft.graph.group", **self._group_json(obj)}
        if isinstance(obj, ServicePrincipal):
            return {
                "@odata.type": "#microsoft.graph.servicePrincipal",
                **self._service_principal_json(obj),
            }
        return None

    @staticmethod
    def _group_json(group: Group) -> dict[str, Any]:
        return {
            "id": group.id,
            "displayName": group.display_name,
            "description": group.description,
            "groupTypes": list(group.group_types),
            "securityEnabled": group.security_enabled,
            "mailEnabled": group.mail_enabled,
            "mailNickname": group.mail_nickname,
        }

    @staticmethod
    def _service_principal_json(sp: ServicePrincipal) -> dict[str, Any]:
        return {
            "id": sp.id,
            "appId": sp.app_id,
            "displayName": sp.display_name,
            "servicePrincipalType": sp.service_principal_type,
        }

    def _group(self, request: GraphRequest, m: Mapping[str, str]) -> Group:
        self._require(request, app=GROUP_MEMBER_READ, delegated=GROUP_MEMBER_READ)
        group = self.tenant.groups.get(m["group"])
        if group is None:
            raise GraphFailure(
                404,
                "Request_ResourceNotFound",
                f"Resource '{m['group']}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return group

    def _directory_collection(
        self, request: GraphRequest, ids: Sequence[str], context: str
    ) -> GraphResponse:
        objects = [obj for obj in (self._directory_object_json(i) for i in ids) if obj]
        spec = _ListSpec(
            context=context,
            allowed=frozenset({"$top", "$select", "$count", "$filter", "$skiptoken", "$skip"}),
            filter_fields={
                "userType": lambda o: o.get("userType"),
                "accountEnabled": lambda o: str(o.get("accountEnabled")).lower(),
            },
            skiptoken_paging=True,
        )
        return self._collection(request, objects, lambda o: o, spec)

    async def _get_group(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        group = self._group(request, m)
        return self._entity(request, self._group_json(group), "groups/$entity")

    async def _group_members(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        group = self._group(request, m)
        return self._directory_collection(request, group.member_ids, "directoryObjects")

    async def _group_transitive_members(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        group = self._group(request, m)
        return self._directory_collection(
            request, self.tenant.transitive_member_objects(group.id), "directoryObjects"
        )

    async def _group_owners(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        group = self._group(request, m)
        return self._directory_collection(request, group.owner_ids, "directoryObjects")

    def _sp(self, request: GraphRequest, sp_id: str) -> ServicePrincipal:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        sp = self.tenant.service_principals.get(sp_id)
        if sp is None:
            raise GraphFailure(
                404,
                "Request_ResourceNotFound",
                f"Resource '{sp_id}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return sp

    async def _get_service_principal(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        sp = self._sp(request, m["sp"])
        return self._entity(request, self._service_principal_json(sp), "servicePrincipals/$entity")

    async def _service_principal_owners(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        sp = self._sp(request, m["sp"])
        return self._directory_collection(request, sp.owner_ids, "directoryObjects")

    async def _application_owners(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        app = self.tenant.applications.get(m["app"])
        if app is None:
            raise GraphFailure(
                404,
                "Request_ResourceNotFound",
                f"Resource '{m['app']}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return self._directory_collection(request, app.owner_ids, "directoryObjects")

    # ------------------------------------------------------------------ app registrations
    # Applications, service principals and delegated permission grants are derived from the
    # Identity's registrations (permissions, identifier URI) on every request, plus the tenant's
    # seeded service principals/applications and Microsoft Graph's own service principal.
    def _registration(self, client_id: str) -> AppRegistration | None:
        if self.app_registrations is None or not client_id:
            return None
        try:
            return self.app_registrations.app(client_id)
        except KeyError:
            return None

    def _object_id(self, kind: str, app_id: str) -> str:
        # The same derivation the Identity uses for the ``oid`` of an app-only token ("sp"), so
        # the service principal listed here is the one the token names, as in Entra.
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{self.tenant.tenant_id}:{app_id}"))

    def _graph_service_principal(self) -> dict[str, Any]:
        return {
            "id": self._object_id("sp", GRAPH_APP_ID),
            "appId": GRAPH_APP_ID,
            "displayName": "Microsoft Graph",
            "appDisplayName": "Microsoft Graph",
            "accountEnabled": True,
            "servicePrincipalType": "Application",
            "servicePrincipalNames": [
                GRAPH_APP_ID,
                "https://graph.microsoft.com",
                "https://graph.microsoft.com/",
            ],
            # Emulator choice: Microsoft's own tenant id, as Graph shows for first-party apps.
            "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
            "signInAudience": "AzureADMultipleOrgs",
        }

    def _registered_service_principal(self, app: AppRegistration) -> dict[str, Any]:
        names = [app.client_id] + ([app.identifier_uri] if app.identifier_uri else [])
        return {
            "id": self._object_id("sp", app.client_id),
            "appId": app.client_id,
            "displayName": app.display_name,
            "appDisplayName": app.display_name,
            "accountEnabled": True,
            "servicePrincipalType": "Application",
            "servicePrincipalNames": names,
            "appOwnerOrganizationId": self.tenant.tenant_id,
            "signInAudience": "AzureADMyOrg",
        }

    def _seeded_service_principal(self, sp: ServicePrincipal) -> dict[str, Any]:
        return {
            **self._service_principal_json(sp),
            "appDisplayName": sp.display_name,
            "accountEnabled": True,
            "servicePrincipalNames": [sp.app_id],
            "appOwnerOrganizationId": self.tenant.tenant_id,
            "signInAudience": "AzureADMyOrg",
        }

    def _registered_application(self, app: AppRegistration) -> dict[str, Any]:
        scopes = []
        if app.identifier_uri:
            # What "Expose an API" creates for Teams SSO: one user-consentable scope.
            scopes.append(
                {
                    "id": self._object_id("scope", app.client_id),
                    "value": "access_as_user",
                    "type": "User",
                    "isEnabled": True,
                    "adminConsentDisplayName": "Teams can access the user's profile",
                    "userConsentDisplayName": "Teams can access your profile",
                }
            )
        return {
            "id": self._object_id("app", app.client_id),
            "appId": app.client_id,
            "displayName": app.display_name,
            "signInAudience": "AzureADMyOrg",
            "identifierUris": [app.identifier_uri] if app.identifier_uri else [],
            "api": {"oauth2PermissionScopes": scopes, "preAuthorizedApplications": []},
        }

    @staticmethod
    def _seeded_application(app: Application) -> dict[str, Any]:
        return {
            "id": app.id,
            "appId": app.app_id,
            "displayName": app.display_name,
            "signInAudience": "AzureADMyOrg",
            "identifierUris": [],
            "api": {"oauth2PermissionScopes": [], "preAuthorizedApplications": []},
        }

    def _filtered_app_ids(self, request: GraphRequest, fields: Iterable[str]) -> list[str]:
        """The ``appId eq '…'`` values of the request's $filter (to look registrations up)."""
        text = request.query_map().get("$filter")
        if text is None:
            return []
        return [value for name, value in parse_filter(text, fields) if name == "appId"]

    def _all_service_principals(self, extra_app_ids: Iterable[str]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for sp in self.tenant.service_principals.values():
            found.setdefault(sp.app_id, self._seeded_service_principal(sp))
        # Emulator choice: registrations cannot be enumerated through the Identity, so the
        # unfiltered list shows the bot's own; any other registered app appears when named.
        for app_id in [self.bot_app_id or "", *extra_app_ids]:
            registration = self._registration(app_id)
            if registration is not None:
                found.setdefault(app_id, self._registered_service_principal(registration))
        found.setdefault(GRAPH_APP_ID, self._graph_service_principal())
        return list(found.values())

    def _all_applications(self, extra_app_ids: Iterable[str]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for app in self.tenant.applications.values():
            found.setdefault(app.app_id, self._seeded_application(app))
        for app_id in [self.bot_app_id or "", *extra_app_ids]:
            registration = self._registration(app_id)
            if registration is not None:
                found.setdefault(app_id, self._registered_application(registration))
        return list(found.values())

    @staticmethod
    def _not_found(ref: str) -> GraphFailure:
        return GraphFailure(
            404,
            "Request_ResourceNotFound",
            f"Resource '{ref}' does not exist or one of its queried "
            "reference-property objects are not present.",
        )

    @staticmethod
    def _key_value(raw: str) -> str:
        # Alternate key literal: the route captured what is between the quotes ('' = ').
        return unquote(raw).replace("''", "'")

    _SP_FILTERS = ("appId", "id", "displayName", "servicePrincipalType")
    _APP_FILTERS = ("appId", "id", "displayName")

    async def _list_service_principals(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        items = self._all_service_principals(self._filtered_app_ids(request, self._SP_FILTERS))
        spec = _ListSpec(
            context="servicePrincipals",
            allowed=frozenset({"$filter", "$select", "$top", "$count", "$skiptoken"}),
            filter_fields={name: _field(name) for name in self._SP_FILTERS},
            skiptoken_paging=True,
        )
        return self._collection(request, items, lambda o: o, spec)

    async def _service_principal_by_app_id(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        app_id = self._key_value(m["app_id"])
        entity = next(
            (sp for sp in self._all_service_principals([app_id]) if sp["appId"] == app_id), None
        )
        if entity is None:
            raise self._not_found(app_id)
        return self._entity(request, entity, "servicePrincipals/$entity")

    async def _list_applications(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        items = self._all_applications(self._filtered_app_ids(request, self._APP_FILTERS))
        spec = _ListSpec(
            context="applications",
            allowed=frozenset({"$filter", "$select", "$top", "$count", "$skiptoken"}),
            filter_fields={name: _field(name) for name in self._APP_FILTERS},
            skiptoken_paging=True,
        )
        return self._collection(request, items, lambda o: o, spec)

    async def _application_by_app_id(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        self._require(request, app=APPLICATION_READ, delegated=APPLICATION_READ)
        app_id = self._key_value(m["app_id"])
        entity = next((a for a in self._all_applications([app_id]) if a["appId"] == app_id), None)
        if entity is None:
            raise self._not_found(app_id)
        return self._entity(request, entity, "applications/$entity")

    def _permission_grants(self) -> list[dict[str, Any]]:
        """Tenant-wide (``AllPrincipals``) grants to Microsoft Graph: one per registration with
        admin-consented delegated permissions, as "Grant admin consent" creates it."""
        grants: list[dict[str, Any]] = []
        for sp in self._all_service_principals([]):
            registration = self._registration(sp["appId"])
            if registration is None or not registration.delegated_permissions:
                continue
            client_id = sp["id"]
            resource_id = self._object_id("sp", GRAPH_APP_ID)
            # Grant ids are opaque strings in Graph; derived from (client, resource) here.
            grant_id = (
                base64.urlsafe_b64encode(uuid.UUID(client_id).bytes + uuid.UUID(resource_id).bytes)
                .decode()
                .rstrip("=")
            )
            grants.append(
                {
                    "id": grant_id,
                    "clientId": client_id,
                    "consentType": "AllPrincipals",
                    "principalId": None,
                    "resourceId": resource_id,
                    # Graph stores the scope string space-separated (often padded).
                    "scope": " ".join(sorted(registration.delegated_permissions)),
                }
            )
        return grants

    async def _list_permission_grants(
        self, request: GraphRequest, m: dict[str, str]
    ) -> GraphResponse:
        # Emulator choice: delegated callers are not also checked for a directory role.
        self._require(request, app=GRANT_READ, delegated=GRANT_READ)
        fields = ("clientId", "consentType", "principalId", "resourceId", "id")
        spec = _ListSpec(
            context="oauth2PermissionGrants",
            allowed=frozenset({"$filter", "$select", "$top", "$skiptoken"}),
            filter_fields={name: _field(name) for name in fields},
            skiptoken_paging=True,
        )
        return self._collection(request, self._permission_grants(), lambda o: o, spec)

    # ------------------------------------------------------------------ Teams
    @staticmethod
    def _teams_app_json(app: TeamsApp) -> dict[str, Any]:
        return {
            "id": app.id,
            "externalId": app.external_id,
            "displayName": app.display_name,
            "distributionMethod": app.distribution_method,
        }

    @staticmethod
    def _app_definition_json(app: TeamsApp) -> dict[str, Any]:
        return {
            "id": app.definition_id,
            "teamsAppId": app.id,
            "displayName": app.display_name,
            "version": app.version,
            "publishingState": "published",
            "description": app.description,
            "lastModifiedDateTime": None,
            "azureADAppId": app.azure_ad_app_id,
        }

    async def _list_teams_apps(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        self._require(
            request, app=APP_CATALOG_READ, delegated=APP_CATALOG_READ | {"AppCatalog.Submit"}
        )
        expand = request.query_map().get("$expand")
        if expand not in {None, "appDefinitions"}:
            raise _bad_request(f"Unsupported $expand '{expand}'.")

        def serialize(app: TeamsApp) -> dict[str, Any]:
            body = self._teams_app_json(app)
            if expand:
                body["appDefinitions"] = [self._app_definition_json(app)]
            return body

        spec = _ListSpec(
            context="appCatalogs/teamsApps",
            allowed=frozenset({"$filter", "$expand", "$select", "$top", "$skip"}),
            filter_fields={
                "externalId": lambda a: a.external_id,
                "distributionMethod": lambda a: a.distribution_method,
                "id": lambda a: a.id,
                "displayName": lambda a: a.display_name,
            },
        )
        return self._collection(request, list(self.tenant.teams_apps.values()), serialize, spec)

    def _installations_caller(
        self, request: GraphRequest, m: Mapping[str, str], *, write: bool
    ) -> tuple[User, bool]:
        """The target user and whether the caller may only see/manage its own app."""
        caller = self._caller(request)
        allowed = (INSTALL_SELF | INSTALL_ANY) if write else INSTALL_READ
        held = caller.scopes if caller.is_delegated else caller.roles
        if not held & allowed:
            raise _forbidden(code="Forbidden")
        self_only = not (
            held
            & (
                INSTALL_ANY
                | (
                    {"TeamsAppInstallation.ReadForUser.All", "TeamsAppInstallation.ReadForUser"}
                    if not write
                    else set()
                )
            )
        )
        user = self.tenant.find_user(unquote(m["user"]))
        if user is None:
            raise GraphFailure(404, "NotFound", f"User '{m['user']}' not found.")
        return user, self_only

    def _installed_json(self, install: Installation, expand: set[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"id": install.id}
        app = self.tenant.teams_apps.get(install.teams_app_id)
        if app is not None:
            if "teamsApp" in expand:
                body["teamsApp"] = self._teams_app_json(app)
            if "teamsAppDefinition" in expand:
                body["teamsAppDefinition"] = self._app_definition_json(app)
        return body

    async def _list_installed_apps(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user, self_only = self._installations_caller(request, m, write=False)
        caller = self._caller(request)
        expand = {
            part.strip()
            for part in request.query_map().get("$expand", "").split(",")
            if part.strip()
        }
        if expand - {"teamsApp", "teamsAppDefinition"}:
            raise _bad_request(f"Unsupported $expand '{request.query_map()['$expand']}'.")
        installs = list(self.tenant.installations_for(user.id).values())
        if self_only:
            # Emulator choice: a "Self" permission sees only the caller's own app.
            installs = [
                i
                for i in installs
                if (app := self.tenant.teams_apps.get(i.teams_app_id)) is not None
                and app.azure_ad_app_id == caller.app_id
            ]

        def app_field(name: str) -> Callable[[Installation], Any]:
            def get(install: Installation) -> Any:
                app = self.tenant.teams_apps.get(install.teams_app_id)
                return getattr(app, name) if app else None

            return get

        spec = _ListSpec(
            context=f"users('{user.id}')/teamwork/installedApps",
            allowed=frozenset({"$filter", "$expand", "$select", "$top", "$skip"}),
            filter_fields={
                "teamsApp/id": lambda i: i.teams_app_id,
                "teamsApp/externalId": app_field("external_id"),
                "teamsApp/displayName": app_field("display_name"),
                "teamsAppDefinition/teamsAppId": lambda i: i.teams_app_id,
            },
        )
        return self._collection(request, installs, lambda i: self._installed_json(i, expand), spec)

    async def _install_app(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user, self_only = self._installations_caller(request, m, write=True)
        body = request.json()
        bind = body.get("teamsApp@odata.bind") if isinstance(body, dict) else None
        if not isinstance(bind, str) or "/appCatalogs/teamsApps/" not in bind:
            raise _bad_request(
                "The 'teamsApp@odata.bind' property is required and must point "
                "to /appCatalogs/teamsApps/{id}."
            )
        app_id = unquote(bind.rstrip("/").rsplit("/", 1)[-1])
        app = self.tenant.teams_apps.get(app_id)
        if app is None:
            raise GraphFailure(
                404, "NotFound", f"Teams app '{app_id}' was not found in the app catalog."
            )
        caller = self._caller(request)
        if self_only and app.azure_ad_app_id != caller.app_id:
            raise _forbidden(
                "The 'Self' permission allows an app to install only itself.", code="Forbidden"
            )
        is_bot = self.bot_app_id is not None and app.azure_ad_app_id == self.bot_app_id
        chat_id = f"19:{user.id}_{app.azure_ad_app_id or app.id}@unq.gbl.spaces"
        install = self.tenant.install_app(user.id, app.id, chat_id)
        log.info("Teams app %s installed for user %s", app.id, user.id)
        if is_bot and self.on_bot_installed is not None:
            self.on_bot_installed(user.id, user.display_name, install.id)
        return GraphResponse(201)

    def _installation(
        self, request: GraphRequest, m: Mapping[str, str]
    ) -> tuple[User, Installation]:
        user, self_only = self._installations_caller(request, m, write=False)
        install = self.tenant.installations_for(user.id).get(unquote(m["installation"]))
        caller = self._caller(request)
        if install is not None and self_only:
            app = self.tenant.teams_apps.get(install.teams_app_id)
            if app is None or app.azure_ad_app_id != caller.app_id:
                install = None
        if install is None:
            raise GraphFailure(404, "NotFound", "The app installation was not found.")
        return user, install

    async def _get_installed_app(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user, install = self._installation(request, m)
        expand = {
            part.strip()
            for part in request.query_map().get("$expand", "").split(",")
            if part.strip()
        }
        return self._entity(
            request,
            self._installed_json(install, expand),
            f"users('{user.id}')/teamwork/installedApps/$entity",
            allowed=frozenset({"$select", "$expand"}),
        )

    async def _installed_app_chat(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        user, install = self._installation(request, m)
        chat_id = install.chat_id
        app = self.tenant.teams_apps.get(install.teams_app_id)
        if (
            self.chat_id_for is not None
            and app is not None
            and self.bot_app_id is not None
            and app.azure_ad_app_id == self.bot_app_id
        ):
            chat_id = self.chat_id_for(user.id) or chat_id
        entity = {
            "id": chat_id,
            "topic": None,
            "createdDateTime": None,
            "lastUpdatedDateTime": None,
            "chatType": "oneOnOne",
            "webUrl": None,
            "tenantId": self.tenant.tenant_id,
        }
        return self._entity(request, entity, "chats/$entity")

    # ------------------------------------------------------------------ others
    async def _create_subscription(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        body = request.json()
        resource = str(body.get("resource", "")) if isinstance(body, dict) else ""
        if "accessreview" in resource.lower():
            # Graph's change notifications support no access review resource (reference §3).
            raise _bad_request(
                f"Operation: Create; Exception: [Status Code: BadRequest; Reason: "
                f"The resource '{resource}' is not supported for change "
                "notifications.]",
                "ExtensionError",
            )
        # Emulator choice: the bot needs no other subscriptions, so none are emulated.
        raise GraphFailure(
            501, "NotImplemented", "Change notifications are not emulated for this resource."
        )

    async def _batch(self, request: GraphRequest, m: dict[str, str]) -> GraphResponse:
        body = request.json()
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise _bad_request(
                "Invalid batch payload format: 'requests' must be a non-empty array.", "BadRequest"
            )
        if len(requests) > MAX_BATCH_REQUESTS:
            raise _bad_request(
                f"The number of batch requests exceeds the limit of {MAX_BATCH_REQUESTS}."
            )
        items: dict[str, dict[str, Any]] = {}
        for raw in requests:
            if (
                not isinstance(raw, dict)
                or not isinstance(raw.get("id"), str)
                or not isinstance(raw.get("method"), str)
                or not isinstance(raw.get("url"), str)
            ):
                raise _bad_request(
                    "Invalid batch payload format: every request needs string "
                    "'id', 'method' and 'url'."
                )
            if raw["id"] in items:
                raise _bad_request(f"Batch request ids must be unique; '{raw['id']}' is repeated.")
            if urlsplit(raw["url"]).path.lstrip("/").startswith("$batch"):
                raise _bad_request("A batch request cannot contain another $batch request.")
            headers = raw.get("headers") or {}
            if not isinstance(headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
            ):
                raise _bad_request(
                    f"Request '{raw['id']}': 'headers' must be an object of strings."
                )
            if "body" in raw and not any(k.lower() == "content-type" for k in headers):
                raise _bad_request(
                    f"Content-Type header is required for request '{raw['id']}' "
                    "because it has a body."
                )
            items[raw["id"]] = raw
        for raw in items.values():
            depends = raw.get("dependsOn") or []
            if not isinstance(depends, list) or any(
                not isinstance(d, str) or d not in items or d == raw["id"] for d in depends
            ):
                raise _bad_request(f"Request '{raw['id']}' depends on an unknown request id.")
        tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}

        async def run(raw: dict[str, Any]) -> dict[str, Any]:
            for dependency in raw.get("dependsOn") or []:
                result = await tasks[dependency]
                if not 200 <= result["status"] < 300:
                    return {
                        "id": raw["id"],
                        "status": 424,
                        "headers": {"Content-Type": "application/json"},
                        "body": graph_error_body(
                            "FailedDependency",
                            "The request could not be completed because a "
                            "request it depends on failed.",
                            now=self.tenant.now(),
                            request_id=str(uuid.uuid4()),
                        ),
                    }
            return await self._batch_item(request, raw)

        # Items wait for their dependencies; dependency cycles are impossible to finish, so
        # refuse them up front (a topological walk).
        self._check_acyclic(items)
        for item_id, raw in items.items():
            tasks[item_id] = asyncio.ensure_future(run(raw))
        responses = [await tasks[item_id] for item_id in items]
        return GraphResponse(200, {"responses": responses})

    @staticmethod
    def _check_acyclic(items: Mapping[str, Mapping[str, Any]]) -> None:
        state: dict[str, int] = {}

        def visit(node: str) -> None:
            if state.get(node) == 2:
                return
            if state.get(node) == 1:
                raise _bad_request("Batch requests have a dependency cycle.")
            state[node] = 1
            for dep in items[node].get("dependsOn") or []:
                visit(dep)
            state[node] = 2

        for node in items:
            visit(node)

    async def _batch_item(self, outer: GraphRequest, raw: Mapping[str, Any]) -> dict[str, Any]:
        url = raw["url"]
        parts = urlsplit(url if url.startswith("/") else "/" + url)
        item_headers = {str(k): str(v) for k, v in (raw.get("headers") or {}).items()}
        if "Authorization" in outer.headers:
            item_headers.setdefault("Authorization", outer.headers["Authorization"])
        body_value = raw.get("body")
        body = b"" if body_value is None else json.dumps(body_value).encode()
        inner = GraphRequest(
            method=raw["method"].upper(),
            version=outer.version,
            path=unquote(parts.path),
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=item_headers,
            body=body,
            origin=outer.origin,
        )
        outcome = await self.faults.evaluate("graph", inner.method, f"/{inner.version}{inner.path}")
        if outcome is not None:
            now = self.tenant.now()
            if outcome.kind == "drop":
                # Emulator choice: a dropped backend connection inside a batch surfaces as a
                # 504 for that item (the outer connection is Graph's front door and stays up).
                status, payload, headers = (
                    504,
                    graph_error_body(
                        "GatewayTimeout",
                        "The gateway timed out.",
                        now=now,
                        request_id=inner.request_id,
                    ),
                    {},
                )
            else:
                status = outcome.status
                payload = outcome.error("graph", now=now, request_id=inner.request_id)
                headers = outcome.headers()
            self._note(inner.method, inner.version, inner.path, status)
            return {
                "id": raw["id"],
                "status": status,
                "headers": {"Content-Type": "application/json", **headers},
                "body": payload,
            }
        response = await self.dispatch(inner)
        item: dict[str, Any] = {"id": raw["id"], "status": response.status}
        headers = dict(response.headers)
        if response.body is not None:
            headers["Content-Type"] = "application/json"
            item["headers"] = headers
            item["body"] = response.body
        else:
            item["headers"] = headers
        return item
