"""Run-time switchable fault injection shared by the emulator's Graph, login and connector apps.

Every emulator app is an ``aiohttp`` application that tags itself with its service name
(``app[SERVICE_KEY] = "graph" | "login" | "connector"``) and runs :meth:`Faults.middleware`.
Rules can be added and removed while the apps serve, in-process (:meth:`Faults.add`) or over HTTP
(``POST /_emulator/faults`` with the rule's fields as JSON, ``DELETE /_emulator/faults``).

Rule semantics (emulator choices, the docs have nothing to say here):

* A rule matches a request when its ``service`` is ``None`` or equal to the app's tag, its
  ``method`` is ``None`` or equal (case-insensitive), and ``path_regex`` is found
  (``re.search``) in the URL path (without the query string).
* Every matching ``latency`` rule that fires adds its delay; then the first matching terminal rule
  (``status``, ``drop``, ``expired_token``) that fires decides the answer, in insertion order.
  A latency rule with ``phase="response"`` delays the answer instead, after the service has
  done the work (a write is applied, its confirmation is late) — not for ``$batch`` items.
* ``probability`` is drawn per matching request from a per-rule RNG (``seed`` makes it
  reproducible). ``remaining`` counts firings; the rule disappears when it reaches zero.
* ``Retry-After`` of a ``status`` rule: whole seconds drawn from ``retry_after_s`` (1 s for a
  Graph or login 429 without a range; none for the connector's, as Teams documents none), or
  ``retry_after_header`` sent verbatim (Graph may send ``2.128``), or none at all with
  ``omit_retry_after`` (Graph documents 429s without it).
* Routes under ``/_emulator/`` are never faulted, so a test can always switch faults off again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, cast, get_args

from aiohttp import web

from emulator.clock import Clock, SystemClock

__all__ = [
    "ADMIN_PATH",
    "SERVICE_KEY",
    "FaultKind",
    "FaultOutcome",
    "FaultRule",
    "Faults",
    "error_payload",
    "graph_error_body",
]

log = logging.getLogger(__name__)

FaultKind = Literal["latency", "status", "drop", "expired_token"]
FaultPhase = Literal["request", "response"]
ServiceName = Literal["graph", "login", "connector"]

#: Key under which each emulator app stores its service name ("graph", "login", "connector").
SERVICE_KEY: web.AppKey[str] = web.AppKey("emulator_service", str)
#: Admin route (never subject to faults).
ADMIN_PATH = "/_emulator/faults"
_ADMIN_PREFIX = "/_emulator/"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Graph's own 429 text (throttling sample in concepts/throttling.md).
_STATUS_TEXT: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad request."),
    404: ("ResourceNotFound", "Resource not found."),
    408: ("RequestTimeout", "The request timed out."),
    409: ("Conflict", "Conflict."),
    412: ("PreconditionFailed", "Precondition failed."),
    429: ("TooManyRequests", "Please retry again later."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The gateway timed out."),
}


def _utc_iso_seconds(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S")


def graph_error_body(
    code: str,
    message: str,
    *,
    now: datetime,
    request_id: str,
    client_request_id: str | None = None,
) -> dict[str, Any]:
    """Build Graph's error envelope: ``{"error": {"code", "message", "innerError": {...}}}``."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": _utc_iso_seconds(now),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }


def error_payload(
    service: str,
    status: int,
    *,
    now: datetime,
    request_id: str,
    code: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The error body each service answers for ``status`` (used by fault rules).

    * graph: the Graph envelope with ``innerError``.
    * connector: the Bot Connector ``ErrorResponse`` (``{"error": {"code", "message"}}``); 429 uses
      code ``Throttled`` as the Teams docs show.
    * login: the Entra OAuth error shape (``error``, ``error_description``, ``error_codes``...).
    """
    default_code, default_message = _STATUS_TEXT.get(status, ("UnknownError", "Unknown error."))
    if service == "connector":
        connector_code = code or ("Throttled" if status == 429 else default_code)
        connector_message = message or ("Too many requests" if status == 429 else default_message)
        return {"error": {"code": connector_code, "message": connector_message}}
    if service == "login":
        oauth_error = code or ("temporarily_unavailable" if status >= 429 else "invalid_request")
        return {
            "error": oauth_error,
            "error_description": message or f"AADSTS90033: {default_message}",
            "error_codes": [90033],
            "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": request_id,
            "correlation_id": request_id,
        }
    return graph_error_body(
        code or default_code, message or default_message, now=now, request_id=request_id
    )


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One fault-injection rule (see the module docstring for matching semantics)."""

    kind: FaultKind
    service: str | None = None  # "graph" | "login" | "connector" | None = every service
    path_regex: str = ".*"
    method: str | None = None
    probability: float = 1.0
    latency_s: float = 0.0
    status: int = 503
    retry_after_s: tuple[float, float] | None = None
    retry_after_header: str | None = None
    omit_retry_after: bool = False
    remaining: int | None = None
    seed: int | None = None
    phase: FaultPhase = "request"

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.phase not in get_args(FaultPhase):
            raise ValueError(f"unknown fault phase {self.phase!r}")
        if self.phase == "response" and self.kind != "latency":
            raise ValueError("only latency rules can act on the response")
        if self.service is not None and self.service not in get_args(ServiceName):
            raise ValueError(f"unknown service {self.service!r}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.latency_s < 0:
            raise ValueError("latency_s must not be negative")
        if not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.retry_after_s is not None:
            low, high = self.retry_after_s
            if low < 0 or high < low:
                raise ValueError("retry_after_s must be (low, high) with 0 <= low <= high")
        if self.omit_retry_after and (
            self.retry_after_header is not None or self.retry_after_s is not None
        ):
            raise ValueError("omit_retry_after excludes retry_after_s and retry_after_header")
        if self.remaining is not None and self.remaining < 1:
            raise ValueError("remaining must be >= 1 (or None for unlimited)")
        re.compile(self.path_regex)  # fail at add() time, not on the first request

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from the admin route's JSON body (``retry_after_s`` as a 2-item list)."""
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        values = dict(data)
        if "kind" not in values:
            raise ValueError("'kind' is required")
        retry = values.get("retry_after_s")
        if retry is not None:
            if not isinstance(retry, list | tuple) or len(retry) != 2:
                raise ValueError("retry_after_s must be a list of two numbers")
            values["retry_after_s"] = (float(retry[0]), float(retry[1]))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    """What a terminal rule decided for one request."""

    rule_id: str
    kind: FaultKind
    status: int
    retry_after_s: int | None
    retry_after_header: str | None = None

    def error(
        self,
        service: str,
        *,
        now: datetime,
        request_id: str,
        client_request_id: str | None = None,
    ) -> dict[str, Any]:
        """The JSON body to answer (status and expired_token kinds)."""
        if self.kind == "expired_token":
            body = expired_token_payload(service, now=now, request_id=request_id)
        else:
            body = error_payload(service, self.status, now=now, request_id=request_id)
        if service == "graph" and client_request_id:
            body["error"]["innerError"]["client-request-id"] = client_request_id
        return body

    def headers(self) -> dict[str, str]:
        """Response headers (``Retry-After`` in integer seconds when there is one, or the rule's
        verbatim value)."""
        if self.retry_after_header is not None:
            return {"Retry-After": self.retry_after_header}
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(self.retry_after_s)}


def expired_token_payload(service: str, *, now: datetime, request_id: str) -> dict[str, Any]:
    """The body each service answers for an expired token."""
    if service == "connector":
        # The Bot Connector answers 401 with this ASP.NET body for a bad or expired bearer token.
        return {"message": "Authorization has been denied for this request."}
    if service == "login":
        # What Entra answers when an OBO assertion has expired (AADSTS500133).
        return {
            "error": "invalid_grant",
            "error_description": "AADSTS500133: Assertion is not within its valid time range.",
            "error_codes": [500133],
            "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": request_id,
            "correlation_id": request_id,
        }
    return graph_error_body(
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
        now=now,
        request_id=request_id,
    )


def expired_token_status(service: str) -> int:
    """Status for an expired token: Entra's token endpoint says 400 invalid_grant, resources 401."""
    return 400 if service == "login" else 401


@dataclass(slots=True)
class _ActiveRule:
    rule: FaultRule
    regex: re.Pattern[str]
    rng: random.Random
    remaining: int | None
    fired: int = 0


@dataclass(slots=True)
class _Stats:
    fired_by_rule: dict[str, int] = field(default_factory=dict)


class Faults:
    """The set of active fault rules, shared by all emulator apps of one cloud."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._rules: dict[str, _ActiveRule] = {}
        self._ids = itertools.count(1)
        # Rules may be changed from a test thread while the event loop evaluates them.
        self._lock = threading.Lock()
        self._stats = _Stats()

    # ----------------------------------------------------------------- rule management
    def add(self, rule: FaultRule) -> str:
        """Activate ``rule`` and return its id (for :meth:`remove`)."""
        rule_id = f"fault-{next(self._ids)}"
        active = _ActiveRule(
            rule=rule,
            regex=re.compile(rule.path_regex),
            rng=random.Random(rule.seed),  # noqa: S311 - fault dice, not cryptography
            remaining=rule.remaining,
        )
        with self._lock:
            self._rules[rule_id] = active
        log.info("fault rule %s added: %s", rule_id, rule)
        return rule_id

    def remove(self, rule_id: str) -> None:
        """Deactivate one rule (no error if it already expired)."""
        with self._lock:
            self._rules.pop(rule_id, None)

    def clear(self) -> None:
        """Deactivate every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> dict[str, FaultRule]:
        """The active rules by id."""
        with self._lock:
            return {rule_id: active.rule for rule_id, active in self._rules.items()}

    def fired(self, rule_id: str) -> int:
        """How many times a rule (active or expired) has fired."""
        with self._lock:
            return self._stats.fired_by_rule.get(rule_id, 0)

    # ----------------------------------------------------------------- evaluation
    def _pick(
        self, service: str, method: str, path: str
    ) -> tuple[float, float, FaultOutcome | None]:
        latency_s = 0.0
        response_latency_s = 0.0
        outcome: FaultOutcome | None = None
        with self._lock:
            for rule_id, active in list(self._rules.items()):
                rule = active.rule
                if rule.service is not None and rule.service != service:
                    continue
                if rule.method is not None and rule.method.upper() != method.upper():
                    continue
                if not active.regex.search(path):
                    continue
                if rule.kind != "latency" and outcome is not None:
                    continue
                if rule.probability < 1.0 and active.rng.random() >= rule.probability:
                    continue
                self._fire(rule_id, active)
                if rule.kind == "latency":
                    if rule.phase == "response":
                        response_latency_s += rule.latency_s
                    else:
                        latency_s += rule.latency_s
                    continue
                outcome = FaultOutcome(
                    rule_id=rule_id,
                    kind=rule.kind,
                    status=self._status_for(rule, service),
                    retry_after_s=self._retry_after(rule, active.rng, service),
                    retry_after_header=rule.retry_after_header if rule.kind == "status" else None,
                )
        return latency_s, response_latency_s, outcome

    def _fire(self, rule_id: str, active: _ActiveRule) -> None:
        active.fired += 1
        self._stats.fired_by_rule[rule_id] = self._stats.fired_by_rule.get(rule_id, 0) + 1
        if active.remaining is not None:
            active.remaining -= 1
            if active.remaining <= 0:
                del self._rules[rule_id]

    @staticmethod
    def _status_for(rule: FaultRule, service: str) -> int:
        if rule.kind == "expired_token":
            return expired_token_status(service)
        if rule.kind == "drop":
            return 0
        return rule.status

    @staticmethod
    def _retry_after(rule: FaultRule, rng: random.Random, service: str) -> int | None:
        if rule.kind != "status" or rule.omit_retry_after or rule.retry_after_header is not None:
            return None
        if rule.retry_after_s is None:
            # Graph's and Entra's 429s carry Retry-After (1 s keeps tests quick when no range
            # was given); the Bot Connector's do not: Teams documents none, and asks for
            # exponential backoff instead.
            return 1 if rule.status == 429 and service != "connector" else None
        low, high = rule.retry_after_s
        # Graph sends whole seconds; round the draw so the header is an integer.
        return max(0, round(rng.uniform(low, high)))

    async def evaluate(self, service: str, method: str, path: str) -> FaultOutcome | None:
        """Apply matching latency (by awaiting it) and return the terminal outcome, if any.

        Graph's ``$batch`` calls this for each sub-request, so a rule can throttle single items.
        """
        latency_s, _response_latency_s, outcome = self._pick(service, method, path)
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        return outcome

    # ----------------------------------------------------------------- aiohttp glue
    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """aiohttp middleware: inject the faults that match this request."""
        if request.path.startswith(_ADMIN_PREFIX):
            return await handler(request)
        service = request.app.get(SERVICE_KEY, "")
        latency_s, response_latency_s, outcome = self._pick(service, request.method, request.path)
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        if outcome is None:
            response = await handler(request)
            if response_latency_s > 0:
                await asyncio.sleep(response_latency_s)
            return response
        log.debug(
            "fault %s (%s) on %s %s", outcome.rule_id, outcome.kind, request.method, request.path
        )
        if outcome.kind == "drop":
            transport = request.transport
            if transport is not None:
                # Abort (RST) rather than close: the client sees the connection die mid-request.
                transport.abort()
            raise asyncio.CancelledError  # nothing more can be answered on this connection
        request_id = str(uuid.uuid4())
        body = outcome.error(
            service,
            now=self._clock.now(),
            request_id=request_id,
            client_request_id=request.headers.get("client-request-id"),
        )
        headers = outcome.headers()
        if service == "graph":
            headers["request-id"] = request_id
            headers["client-request-id"] = request.headers.get("client-request-id", request_id)
        return web.json_response(body, status=outcome.status, headers=headers)

    def install(self, app: web.Application, service: str) -> None:
        """Tag ``app`` with its service name, add the middleware (once) and the admin routes.

        Call before the app starts. Apps that pass ``middlewares=[faults.middleware]`` themselves
        may still call this: the middleware is not added twice.
        """
        if service not in get_args(ServiceName):
            raise ValueError(f"unknown service {service!r}")
        app[SERVICE_KEY] = service
        if self.middleware not in app.middlewares:
            app.middlewares.append(self.middleware)
        app.router.add_post(ADMIN_PATH, self._admin_add)
        app.router.add_get(ADMIN_PATH, self._admin_list)
        app.router.add_delete(ADMIN_PATH, self._admin_clear)
        app.router.add_delete(ADMIN_PATH + "/{rule_id}", self._admin_remove)

    async def _admin_add(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            rule = FaultRule.from_json(cast(dict[str, Any], data))
        except (ValueError, TypeError, json.JSONDecodeError, re.error) as exc:
            return web.json_response(
                {"error": {"code": "BadRequest", "message": str(exc)}}, status=400
            )
        return web.json_response({"id": self.add(rule)}, status=201)

    async def _admin_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "rules": [
                    {"id": rule_id, **_rule_json(rule)} for rule_id, rule in self.rules().items()
                ]
            }
        )

    async def _admin_clear(self, request: web.Request) -> web.Response:
        self.clear()
        return web.Response(status=204)

    async def _admin_remove(self, request: web.Request) -> web.Response:
        self.remove(request.match_info["rule_id"])
        return web.Response(status=204)


def _rule_json(rule: FaultRule) -> dict[str, Any]:
    data = asdict(rule)
    if rule.retry_after_s is not None:
        data["retry_after_s"] = list(rule.retry_after_s)
    return data
