"""The shared machinery of the emulated Microsoft Graph: request and response types, routing,
authentication of the caller, permission checks, paging, ``$select``/``$filter``/``$top``/``$skip``
and Graph's error envelope.

Every request — a plain HTTP request or one item of a ``$batch`` — becomes a
:class:`GraphRequest` and goes through :meth:`GraphBase.dispatch`, so batch items see the same
routing, permission checks, paging and fault rules as direct calls. The routes themselves live in
one module per resource family (``access_reviews``, ``directory``, ``teams_apps``, ``batch``,
``subscriptions``), composed into :class:`emulator.graph.GraphApi`.
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
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from emulator.faults import Faults, graph_error_body
from emulator.graph.throttling import Charge, GraphThrottle
from emulator.identity import AccessToken, AppRegistration, TokenError
from emulator.tenant import ZERO_GUID, Tenant, TenantError

__all__ = [
    "COLLECTION_OPTIONS",
    "DECISIONS_MAX_TOP",
    "DEFAULT_PAGE_SIZE",
    "GRAPH_HOST",
    "MAX_BATCH_REQUESTS",
    "MAX_PAGE_SIZE",
    "AppRegistry",
    "Caller",
    "ChatIdLookup",
    "GraphBase",
    "GraphFailure",
    "GraphRequest",
    "GraphResponse",
    "Handler",
    "InstallListener",
    "ListSpec",
    "Route",
    "TokenValidator",
    "bad_request",
    "compile_route",
    "field_getter",
    "forbidden",
    "identity_json",
    "iso",
    "parse_filter",
    "sign_in_text",
]

log = logging.getLogger(__name__)

#: Host used in ``@odata.context`` (Graph always names itself there); ``@odata.nextLink``
#: uses the emulator's own origin so clients can follow it.
GRAPH_HOST = "https://graph.microsoft.com"
MAX_BATCH_REQUESTS = 20
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
#: The largest page of access review decisions: the docs' page size; a larger $top is refused.
DECISIONS_MAX_TOP = 100
REQUEST_LOG_SIZE = 10_000
_JSON_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
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
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        inner: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        #: Extra ``innerError`` fields (the throttling sample carries code, message, status).
        self.inner = dict(inner or {})


def forbidden(
    message: str = "Insufficient privileges to complete the operation.",
    code: str = "Authorization_RequestDenied",
) -> GraphFailure:
    return GraphFailure(403, code, message)


def bad_request(message: str, code: str = "BadRequest") -> GraphFailure:
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
    #: What the throttle charged (None until charged, or for routes it does not meter).
    charge: Charge | None = None

    def query_map(self) -> dict[str, str]:
        """Query options as a dict (last one wins; Graph rejects duplicates anyway)."""
        return dict(self.query)

    @property
    def client_request_id(self) -> str | None:
        """The caller's ``client-request-id`` header, if it sent one."""
        return self.headers.get("client-request-id") or None

    def json(self) -> Any:
        """The JSON body, or 400 as Graph answers a body it cannot read.

        A body without ``Content-Type: application/json`` is refused like malformed JSON (Graph's
        answer to a PATCH without the header: microsoft-graph-docs-contrib issue 6337).
        """
        if not self.body:
            return {}
        unreadable = bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type "
            "header is set and payload is of valid JSON format."
        )
        content_type = self.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise unreadable
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise unreadable from exc


@dataclass(slots=True)
class GraphResponse:
    """The answer to one :class:`GraphRequest`: a JSON ``body``, or ``text`` (``$count`` answers
    a bare number as ``text/plain``)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None


Handler = Callable[[GraphRequest, dict[str, str]], Awaitable[GraphResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    beta_only: bool
    #: Charged to the throttle (``$batch`` is not: its items are, each on its own).
    metered: bool = True


_SEGMENT = r"(?P<{name}>[^/]+)"
_FILTER_FN = r"filterByCurrentUser\(on=(?P<on>[^)]*)\)"


def compile_route(template: str) -> re.Pattern[str]:
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


def sign_in_text(dt: datetime | None) -> str | None:
    # principal.lastUserSignInDateTime is a non-ISO string in Graph's examples:
    # "2/11/2022 5:31:37 PM +00:00".
    if dt is None:
        return None
    hour12 = dt.hour % 12 or 12
    suffix = "AM" if dt.hour < 12 else "PM"
    return f"{dt.month}/{dt.day}/{dt.year} {hour12}:{dt.minute:02d}:{dt.second:02d} {suffix} +00:00"


def identity_json(actor: tuple[str, str, str] | None) -> dict[str, Any]:
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
        raise bad_request(
            "The specified page token value has expired or is invalid.",
            "Directory_ExpiredPageToken",
        ) from exc
    if offset < 0:
        raise bad_request(
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
            raise bad_request(
                f"Invalid filter clause: '{part.strip()}'. Only 'property eq "
                "'value'' clauses joined by 'and' are supported."
            )
        name, value = match.group(1), match.group(2).replace("''", "'")
        if name not in allowed_set:
            raise bad_request(
                f"Invalid filter clause: property '{name}' is not supported for "
                "filtering on this resource."
            )
        clauses.append((name, value))
    return clauses


@dataclass(slots=True)
class ListSpec:
    """How a collection route pages and filters."""

    context: str
    allowed: frozenset[str]  # query options accepted ($-names)
    filter_fields: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    open_type: bool = False
    skiptoken_paging: bool = False  # directory collections page with $skiptoken, not $skip
    #: The largest ``$top`` accepted; above it the request is refused.
    max_top: int = MAX_PAGE_SIZE
    #: Pages hold at most this many items whatever ``$top`` says (no error), e.g. 100 for
    #: directory objects with ``$expand`` (Graph known issue 13635).
    page_cap: int | None = None


def field_getter(name: str) -> Callable[[Mapping[str, Any]], Any]:
    """A $filter accessor for a property of an already serialized entity."""

    def get(entity: Mapping[str, Any]) -> Any:
        return entity.get(name)

    return get


COLLECTION_OPTIONS = frozenset({"$top", "$skip", "$select", "$filter", "$count", "$orderby"})


# ---------------------------------------------------------------------------------- the base
class GraphBase:
    """The emulated Graph service for one tenant: the machinery every resource family shares.

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
        throttle: GraphThrottle | None = None,
        decisions_max_top: int = DECISIONS_MAX_TOP,
    ) -> None:
        self.tenant = tenant
        #: The largest page of access review decisions (the docs' page size; a larger $top is
        #: refused). Only tests waiting for a client fix should raise it.
        self.decisions_max_top = decisions_max_top
        #: Graph's own throttling (on by default; ``throttle.configure`` changes it).
        self.throttle = throttle or GraphThrottle(
            tenant_id=tenant.tenant_id, user_count=lambda: len(tenant.users)
        )
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
        self._routes: list[Route] = []
        self._register_routes()

    def _register_routes(self) -> None:
        """Register every route (the composed :class:`emulator.graph.GraphApi` does)."""
        raise NotImplementedError

    def _add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        beta: bool = False,
        metered: bool = True,
    ) -> None:
        self._routes.append(Route(method, compile_route(template), handler, beta, metered))

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
        if response.text is not None:
            headers["Content-Type"] = "text/plain"
            return web.Response(
                status=response.status, headers=headers, body=response.text.encode()
            )
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
            response = self._error(
                request, failure.status, failure.code, failure.message, inner=failure.inner
            )
            response.headers.update(failure.headers)
        except TenantError as error:
            response = self._error(request, error.status, error.code, error.message)
        if request.charge is not None:
            response.headers.update(request.charge.headers())
        self._note(request.method, request.version, request.path, response.status)
        return response

    def _note(self, method: str, version: str, path: str, status: int) -> None:
        self.request_count += 1
        self.request_log.append((method, version, path, status))

    def _error(
        self,
        request: GraphRequest,
        status: int,
        code: str,
        message: str,
        *,
        inner: Mapping[str, str] | None = None,
    ) -> GraphResponse:
        body = graph_error_body(
            code,
            message,
            now=self.tenant.clock.now(),
            request_id=request.request_id,
            client_request_id=request.client_request_id,
        )
        if inner:
            body["error"]["innerError"].update(inner)
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
            if route.metered:
                self._meter(request, request.caller)
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
        raise bad_request(f"Resource not found for the segment '{segment}'.")

    def _meter(self, request: GraphRequest, caller: Caller) -> None:
        """Charge the request to the caller's application; 429 when a limit refuses it."""
        charge = self.throttle.charge(
            app_id=caller.app_id,
            method=request.method,
            path=request.path,
            query=request.query,
            priority_header=request.headers.get("x-ms-throttle-priority"),
        )
        request.charge = charge
        if charge.throttled:
            # The sample answer of concepts/throttling.md.
            raise GraphFailure(
                429,
                "TooManyRequests",
                "Please retry again later.",
                inner={"code": "429", "message": "Please retry after", "status": "429"},
            )

    @staticmethod
    def _check_query_names(request: GraphRequest) -> None:
        seen: set[str] = set()
        for name, _value in request.query:
            if name in seen and name.startswith("$"):
                raise bad_request(
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
                raise forbidden(code=code)
        else:
            if app is None:
                raise forbidden(
                    "This operation is not supported with application "
                    "permissions; it needs a signed-in user (delegated token).",
                    code=code,
                )
            if not (caller.roles & app):
                raise forbidden(code=code)
        return caller

    # ------------------------------------------------------------------ collections
    def _collection(
        self,
        request: GraphRequest,
        items: Sequence[T],
        serialize: Callable[[T], dict[str, Any]],
        spec: ListSpec,
        *,
        decorate: Callable[[T, dict[str, Any]], None] | None = None,
    ) -> GraphResponse:
        """One page of ``items`` with Graph's query options; ``decorate(item, json)`` adds what
        ``$select`` does not govern (an ``$expand``ed navigation property)."""
        query = request.query_map()
        for name in query:
            if name.startswith("$") and name not in spec.allowed:
                raise bad_request(
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
                raise bad_request(f"Unsupported $orderby '{query['$orderby']}'.")
            selected = sorted(
                selected,
                key=lambda item: str(spec.filter_fields[name](item)),
                reverse=direction.lower() == "desc",
            )
        page_size = DEFAULT_PAGE_SIZE
        if "$top" in query:
            page_size = self._int_option(query["$top"], "$top", 1, MAX_PAGE_SIZE)
            if page_size > spec.max_top:
                # The OData service's MaxTop refusal (emulator choice of wording: ASP.NET
                # OData's message; Graph documents the default page size of 100 only).
                raise bad_request(
                    f"The limit of '{spec.max_top}' for Top query has been exceeded. The value "
                    f"from the incoming request is '{page_size}'."
                )
        if spec.page_cap is not None:
            page_size = min(page_size, spec.page_cap)
        offset = 0
        if "$skip" in query:
            if spec.skiptoken_paging:
                raise bad_request(
                    "'$skip' is not supported by the service.", "Request_UnsupportedQuery"
                )
            offset = self._int_option(query["$skip"], "$skip", 0, 10**9)
        if "$skiptoken" in query:
            offset = _decode_skiptoken(query["$skiptoken"])
        page = selected[offset : offset + page_size]
        select = self._select(query)
        values = [self._apply_select(serialize(item), select, spec.open_type) for item in page]
        if decorate is not None:
            for item, value in zip(page, values, strict=True):
                decorate(item, value)
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
            raise bad_request(f"Invalid value '{text}' for query option '{name}'.") from exc
        if not low <= value <= high:
            raise bad_request(
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
            raise bad_request("Invalid $select: no properties given.")
        return names

    @staticmethod
    def _apply_select(
        entity: dict[str, Any], select: list[str] | None, open_type: bool
    ) -> dict[str, Any]:
        if select is None:
            return entity
        unknown = [name for name in select if name not in entity]
        if unknown and not open_type:
            raise bad_request(f"Could not find a property named '{unknown[0]}' on this type.")
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
                raise bad_request(
                    f"Query option '{name}' is not allowed. To allow it, set the "
                    "'AllowedQueryOptions' property on EnableQueryAttribute or "
                    "QueryValidationSettings."
                )
        select = self._select(query)
        body = self._apply_select(entity, select, open_type)
        if select and context.endswith("/$entity"):
            context = f"{context.removesuffix('/$entity')}({','.join(select)})/$entity"
        return GraphResponse(200, {"@odata.context": self._context(request, context, None), **body})
