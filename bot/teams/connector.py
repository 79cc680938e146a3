"""A small Bot Connector REST client for proactive work: create a 1:1 chat, send, update.

Proactive delivery needs exact control of each call's outcome (429 with ``Retry-After``, 403
blocked, 404 conversation gone) to drive the outbox and the rate limiter, which botbuilder's
connector hides behind silent transport retries. So the outbox talks to the connector through
this client (the process's aiohttp pool, with httpx's errors and responses); replies inside a
turn still go through botbuilder.

Errors are mapped once, here, into :class:`ConnectorError` and its subclasses, following the
Teams rate-limit page ("Optimize your bot with rate limiting", msteams-docs
``bots/how-to/rate-limit.md``): 429 is :class:`ConnectorThrottled`, with ``retry_after_s`` only
when the answer carried ``Retry-After`` (Teams documents none, so it is usually absent); 412,
502, 503, 504 (the page: "you must also retry error codes 412, 502, and 504"), 408 and network
failures are :class:`ConnectorRetryable`; 403 and 404 have their own classes; everything else
(400, 401 after a token refresh, 413, 500 ``ServiceError``, which the page's status table says
not to retry) is a plain :class:`ConnectorError` and treated as permanent by the outbox.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx

__all__ = [
    "TRANSIENT_STATUSES",
    "ConnectorClient",
    "ConnectorError",
    "ConnectorForbidden",
    "ConnectorNotFound",
    "ConnectorRetryable",
    "ConnectorThrottled",
    "ConnectorTokenSource",
    "Conversation",
]

log = logging.getLogger(__name__)


class ConnectorTokenSource(Protocol):
    """Bearer tokens for the Bot Connector (scope ``https://api.botframework.com/.default``)."""

    async def get_token(self) -> str: ...

    async def refresh_token(self, stale: str) -> str: ...


class ConnectorError(Exception):
    """A Bot Connector call failed. ``code`` is the connector's error code when it gave one;
    ``conversation_id`` the conversation called (None for a call on no conversation, such as
    creating one)."""

    def __init__(
        self, message: str, *, status: int = 0, code: str = "", conversation_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.conversation_id = conversation_id


class ConnectorThrottled(ConnectorError):
    """429. ``retry_after_s`` is the answer's ``Retry-After``, or None when it sent none (Teams
    documents no such header: the caller backs off on its own then)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None,
        code: str = "Throttled",
        conversation_id: str | None = None,
    ) -> None:
        super().__init__(message, status=429, code=code, conversation_id=conversation_id)
        self.retry_after_s = retry_after_s


class ConnectorRetryable(ConnectorError):
    """408/412/502/503/504 or no answer at all: worth trying again later."""


class ConnectorForbidden(ConnectorError):
    """403: blocked by the user, app not installed, not in roster … — never retried as is."""


class ConnectorNotFound(ConnectorError):
    """404: the conversation or activity no longer exists."""


@dataclass(frozen=True)
class Conversation:
    id: str
    service_url: str
    activity_id: str | None = None


#: Statuses worth another try (see the module docstring); 429 has its own class.
TRANSIENT_STATUSES = frozenset({408, 412, 502, 503, 504})


#: The longest ``Retry-After`` taken at its word (the outbox's own backoff cap): a longer one
#: would park a card past its review, or overflow a date.
MAX_RETRY_AFTER_S = 900.0


def _retry_after_s(response: httpx.Response) -> float | None:
    """The ``Retry-After`` of an answer in seconds (delta or HTTP date), at most
    :data:`MAX_RETRY_AFTER_S`; None if absent or unreadable, so that the caller's own backoff
    applies rather than an invented figure."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isnan(seconds):
            return None
        return min(max(0.0, seconds), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER_S)


def _error_code(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")[:300]
    return "", ""


class Fetcher(Protocol):
    """Sends one request (:class:`bot.http.AiohttpTransport` does), raising httpx's errors."""

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        content: bytes | None = None,
        timeout_s: float,
    ) -> httpx.Response: ...


class ConnectorClient:
    """Bot Connector REST (``/v3/conversations``) for one bot; ``tokens`` None = anonymous mode."""

    def __init__(
        self,
        http: Fetcher,
        *,
        bot_app_id: str,
        tokens: ConnectorTokenSource | None,
        timeout_s: float = 15.0,
    ) -> None:
        self._http = http
        self._bot_app_id = bot_app_id
        self._tokens = tokens
        self._timeout_s = timeout_s

    @property
    def bot_id(self) -> str:
        return f"28:{self._bot_app_id}" if self._bot_app_id else "28:bot"

    async def create_personal_conversation(
        self, *, service_url: str, tenant_id: str, user_id: str
    ) -> Conversation:
        """Create (or get) the 1:1 chat with a user; ``user_id`` may be the Entra object id."""
        body = {
            "isGroup": False,
            "bot": {"id": self.bot_id},
            "members": [{"id": user_id}],
            "tenantId": tenant_id,
            "channelData": {"tenant": {"id": tenant_id}},
        }
        answer = await self._call("POST", service_url, "/v3/conversations", body)
        conversation_id = str(answer.get("id") or "")
        if not conversation_id:
            raise ConnectorError("createConversation answered without an id", status=200)
        return Conversation(
            id=conversation_id,
            service_url=str(answer.get("serviceUrl") or service_url),
            activity_id=answer.get("activityId"),
        )

    async def send(
        self, *, service_url: str, conversation_id: str, activity: Mapping[str, Any]
    ) -> str:
        """Post an activity to a conversation; return its activity id."""
        path = f"/v3/conversations/{quote(conversation_id, safe=':@')}/activities"
        answer = await self._call(
            "POST", service_url, path, dict(activity), conversation_id=conversation_id
        )
        return str(answer.get("id") or "")

    async def update(
        self,
        *,
        service_url: str,
        conversation_id: str,
        activity_id: str,
        activity: Mapping[str, Any],
    ) -> str:
        """Replace an activity the bot sent (a card edit)."""
        path = (
            f"/v3/conversations/{quote(conversation_id, safe=':@')}"
            f"/activities/{quote(activity_id, safe=':@')}"
        )
        answer = await self._call(
            "PUT",
            service_url,
            path,
            {**activity, "id": activity_id},
            conversation_id=conversation_id,
        )
        return str(answer.get("id") or activity_id)

    async def _call(
        self,
        method: str,
        service_url: str,
        path: str,
        body: Mapping[str, Any],
        *,
        conversation_id: str | None = None,
    ) -> dict[str, Any]:
        try:
            return await self._call_once(method, service_url, path, body)
        except ConnectorError as exc:
            exc.conversation_id = conversation_id
            raise

    async def _call_once(
        self, method: str, service_url: str, path: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        url = service_url.rstrip("/") + path
        token = await self._tokens.get_token() if self._tokens else None
        response = await self._send(method, url, body, token)
        if response.status_code == 401 and self._tokens is not None and token is not None:
            # An expired or revoked token: refresh once.
            token = await self._tokens.refresh_token(token)
            response = await self._send(method, url, body, token)
        if response.status_code < 300:
            try:
                answer = response.json() if response.content else {}
            except ValueError:
                answer = {}
            return answer if isinstance(answer, dict) else {}
        code, message = _error_code(response)
        text = f"{method} {path}: {response.status_code} {code} {message}".strip()
        if response.status_code == 429:
            raise ConnectorThrottled(
                text, retry_after_s=_retry_after_s(response), code=code or "Throttled"
            )
        if response.status_code in TRANSIENT_STATUSES:
            raise ConnectorRetryable(text, status=response.status_code, code=code)
        if response.status_code == 403:
            raise ConnectorForbidden(text, status=403, code=code)
        if response.status_code == 404:
            raise ConnectorNotFound(text, status=404, code=code)
        raise ConnectorError(text, status=response.status_code, code=code)

    async def _send(
        self, method: str, url: str, body: Mapping[str, Any], token: str | None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return await self._http.fetch(
                method,
                url,
                headers=headers,
                content=json.dumps(body, separators=(",", ":")).encode(),
                timeout_s=self._timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ConnectorRetryable(f"{method} {url}: {type(exc).__name__}", status=0) from exc
