"""The emulated Bot Connector (Teams flavour), plain http on loopback.

Serves the ``/v3/conversations`` REST surface the bot calls (create conversation, send, reply,
update, delete, get member, members, paged members) with Teams' response and error shapes,
enforces the Teams rate limits with 429 (without ``Retry-After``, as Teams documents none),
validates the bot's bearer token (unless anonymous), and records every call for tests and the
demo. When the bot app is installed for a user (through Graph), it delivers
``installationUpdate`` and ``conversationUpdate`` to the bot, signed like the real channel.
Under the ``realistic`` profile (:mod:`emulator.profiles`) it also answers some requests with
the transient 412, 502 and 504 the Teams rate-limit page lists as retryable.

Choices where the Teams docs are silent (written down here as the brief asks):

* **Rate windows are sliding logs.** A request is admitted when every window of its buckets
  (per app per tenant: 50 in any 1 s; per bot per conversation: 7/1 s, 8/2 s, 60/30 s,
  1800/3600 s) holds fewer than its limit in ``(now - period, now]``.
* **Rejected requests do not count.** The Bot Connector counts the requests it accepted; a 429
  consumes no quota, so a client gets in as soon as a slot frees.
  (Unlike Graph, whose docs say usage keeps counting while throttled.) Requests refused before
  the throttle (401, unknown conversation, app not installed) are not counted either; requests
  that pass the throttle and then fail (403 blocked, 404 activity, 413) do count.
* **No Retry-After by default.** Teams documents no ``Retry-After`` on its throttling answers
  and asks bots to back off exponentially with random jitter (the rate-limit page), so a 429
  carries none. With ``retry_after_header=True`` (for tests that need it) it carries the time
  until the earliest moment at which this request would be admitted (the oldest entry that has
  to leave the fullest window, plus that window's period, minus now), rounded *up* to whole
  seconds and at least 1, so waiting exactly that long always succeeds. The recorded call keeps
  that time either way (``RecordedCall.retry_after_s``).
* **Which bucket:** create conversation, send, reply, update and delete are message operations
  on the thread (the "send" limits); member reads use the "get members" limits (14/1 s, 16/2 s,
  120/30 s, 3600/3600 s). All of them count toward the per-tenant 50/s. The per-thread limits
  for all bots together are not modelled (there is one bot).
* **Size limit:** the raw JSON body of a message (send, reply, update, create-with-activity)
  must not exceed 28 KB (28 672 bytes), else 413 ``MessageSizeTooBig``.
* Activity ids are the emulator clock's epoch milliseconds (as Teams' look), made unique per
  conversation.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import httpx
from aiohttp import web

from emulator.clock import Clock
from emulator.faults import Faults
from emulator.identity import BOT_FRAMEWORK_AUDIENCE, Identity, TokenError
from emulator.teams_client import (
    TeamsClient,
    personal_chat_id,
    personal_conversation_id,
    user_mri,
)

__all__ = [
    "Connector",
    "MessageState",
    "RateWindow",
    "RecordedCall",
    "TeamsLimits",
]

log = logging.getLogger(__name__)

# A bot without an app id (anonymous demo) still needs stable ids for its chats.
_ANONYMOUS_BOT_ID = "00000000-0000-0000-0000-000000000000"
_DELIVERY_TIMEOUT_S = 15.0  # the channel gives up on a bot after 10-15 s


@dataclass(frozen=True)
class RateWindow:
    """At most ``max_requests`` in any ``period_s`` seconds."""

    period_s: float
    max_requests: int


@dataclass(frozen=True)
class TeamsLimits:
    """The Teams bot rate limits (defaults = the documented values) and the message size cap.

    Benchmarks can scale them (:meth:`scaled`) or lift them (:meth:`unlimited`).
    """

    per_app_per_tenant: tuple[RateWindow, ...] = (RateWindow(1.0, 50),)
    per_conversation_send: tuple[RateWindow, ...] = (
        RateWindow(1.0, 7),
        RateWindow(2.0, 8),
        RateWindow(30.0, 60),
        RateWindow(3600.0, 1800),
    )
    per_conversation_members: tuple[RateWindow, ...] = (
        RateWindow(1.0, 14),
        RateWindow(2.0, 16),
        RateWindow(30.0, 120),
        RateWindow(3600.0, 3600),
    )
    max_message_bytes: int = 28 * 1024

    @classmethod
    def unlimited(cls) -> TeamsLimits:
        """No rate limits at all (the size cap stays)."""
        return cls(per_app_per_tenant=(), per_conversation_send=(), per_conversation_members=())

    def scaled(self, factor: float) -> TeamsLimits:
        """Every request limit multiplied by ``factor`` (periods unchanged)."""

        def scale(windows: tuple[RateWindow, ...]) -> tuple[RateWindow, ...]:
            return tuple(
                RateWindow(w.period_s, max(1, math.floor(w.max_requests * factor))) for w in windows
            )

        return replace(
            self,
            per_app_per_tenant=scale(self.per_app_per_tenant),
            per_conversation_send=scale(self.per_conversation_send),
            per_conversation_members=scale(self.per_conversation_members),
        )


class _SlidingLog:
    """Timestamps of admitted requests for one bucket, checked against several windows."""

    def __init__(self, windows: Sequence[RateWindow]) -> None:
        self._windows = tuple(windows)
        self._longest_s = max((w.period_s for w in self._windows), default=0.0)
        self._times: list[float] = []

    def wait_s(self, now_s: float) -> float:
        """Seconds until a request would be admitted (0 = now)."""
        if not self._windows:
            return 0.0
        self._prune(now_s)
        wait = 0.0
        for window in self._windows:
            first = bisect.bisect_right(self._times, now_s - window.period_s)
            in_window = len(self._times) - first
            if in_window >= window.max_requests:
                # This entry must leave the window before the count drops below the limit.
                blocking = self._times[len(self._times) - window.max_requests]
                wait = max(wait, blocking + window.period_s - now_s)
        return wait

    def record(self, now_s: float) -> None:
        if self._windows:
            bisect.insort(self._times, now_s)

    def _prune(self, now_s: float) -> None:
        stale = bisect.bisect_right(self._times, now_s - self._longest_s)
        if stale:
            del self._times[:stale]


Operation = Literal[
    "create_conversation",
    "send",
    "reply",
    "update",
    "delete",
    "get_member",
    "get_members",
    "paged_members",
    "deliver_to_bot",
]


@dataclass(frozen=True)
class RecordedCall:
    """One call the connector received (or one delivery it made to the bot).

    ``status`` 0 means the delivery could not reach the bot (``error_code`` says why).
    """

    at: datetime
    method: str
    path: str
    operation: Operation
    status: int
    conversation_id: str | None = None
    activity_id: str | None = None
    activity: Mapping[str, Any] | None = None
    user_oid: str | None = None
    error_code: str | None = None
    retry_after_s: int | None = None
    direction: Literal["to_connector", "to_bot"] = "to_connector"


@dataclass
class MessageState:
    """The current state of a message the bot posted (after any updates or deletion)."""

    activity_id: str
    conversation_id: str
    user_oid: str
    activity: dict[str, Any]
    sent_at: datetime
    updated_at: datetime
    update_count: int = 0
    deleted: bool = False
    reply_to_id: str | None = None
    #: Order of posting across all conversations of the connector.
    sequence: int = 0


@dataclass
class _Install:
    user_oid: str
    user_name: str
    installation_id: str
    installed: bool = True
    blocked: bool = False
    generation: int = 0


@dataclass
class _Conversation:
    id: str
    user_oid: str
    messages: dict[str, MessageState] = field(default_factory=dict)
    last_activity_ms: int = 0
    send_log: _SlidingLog | None = None
    members_log: _SlidingLog | None = None


class _ConnectorError(Exception):
    def __init__(
        self, status: int, code: str, message: str, retry_after_s: int | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


_HTTP_CLIENT_KEY: web.AppKey[httpx.AsyncClient] = web.AppKey("connector_http", httpx.AsyncClient)


class Connector:
    """The emulated Bot Connector for one tenant and one bot.

    Set :attr:`service_url` (the URL the connector site listens on, used as ``serviceUrl``) and
    :attr:`bot_endpoint` (the bot's ``/api/messages``) after the sites start, so installs can be
    delivered to the bot.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        identity: Identity,
        tenant_id: str,
        bot_app_id: str | None,
        limits: TeamsLimits | None = None,
        anonymous: bool = False,
        retry_after_header: bool = False,
    ) -> None:
        self._clock = clock
        #: Send ``Retry-After`` on throttling answers (Teams documents none; off by default).
        self.retry_after_header = retry_after_header
        self.identity = identity
        self.tenant_id = tenant_id
        self.bot_app_id = bot_app_id
        self.limits = limits or TeamsLimits()
        self.anonymous = anonymous
        self.records: list[RecordedCall] = []
        self.bot_endpoint: str | None = None
        self.service_url: str | None = None
        self._installs: dict[str, _Install] = {}
        self._conversations: dict[str, _Conversation] = {}
        self._aliases: dict[str, str] = {}  # Graph chat id -> current conversation id
        self._mri_to_oid: dict[str, str] = {}
        self._tenant_log = _SlidingLog(self.limits.per_app_per_tenant)
        self._http: httpx.AsyncClient | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._changed: asyncio.Event | None = None
        # Conversations dropped by forget_conversation stay visible to messages_to().
        self._retired: list[_Conversation] = []
        self._message_sequence = itertools.count(1)
        # Per user: the locale and time zone their Teams client sends (shared with every
        # TeamsClient made for this connector, so installs and messages agree).
        self.client_languages: dict[str, tuple[str, str]] = {}

    @property
    def _bot_id(self) -> str:
        return self.bot_app_id or _ANONYMOUS_BOT_ID

    # ------------------------------------------------------------------ installs (from Graph)
    def note_app_installed(self, *, user_oid: str, user_name: str, installation_id: str) -> None:
        """The bot's app was installed for a user (Graph ``installedApps`` POST).

        Opens the 1:1 chat (CreateConversation for the user stops answering 403) and, when
        :attr:`bot_endpoint` is set, delivers ``installationUpdate`` (add) and
        ``conversationUpdate`` (membersAdded) to the bot in the background.
        """
        key = user_oid.lower()
        install = self._installs.get(key)
        if install is None:
            install = _Install(
                user_oid=user_oid, user_name=user_name, installation_id=installation_id
            )
            self._installs[key] = install
        else:
            install.installed = True
            install.user_name = user_name
            install.installation_id = installation_id
        self._mri_to_oid[user_mri(self._bot_id, user_oid)] = user_oid
        self._ensure_conversation(install)
        self._schedule_install_delivery(user_oid)

    def note_app_uninstalled(self, user_oid: str) -> None:
        """The app was removed for the user: sends to the chat answer 403 from now on."""
        install = self._installs.get(user_oid.lower())
        if install is not None:
            install.installed = False

    def set_blocked(self, user_oid: str, blocked: bool = True) -> None:
        """The user blocked (or unblocked) the bot in the chat: sends answer 403."""
        install = self._installs.get(user_oid.lower())
        if install is None:
            raise KeyError(user_oid)
        install.blocked = blocked

    def forget_conversation(self, user_oid: str) -> None:
        """Drop the user's 1:1 conversation (as when a chat is deleted): the stored id answers
        404 ``ConversationNotFound`` and CreateConversation hands out a new id."""
        install = self._installs.get(user_oid.lower())
        if install is None:
            raise KeyError(user_oid)
        old = self._conversations.pop(self.conversation_id_for(user_oid), None)
        if old is not None:
            self._retired.append(old)
        install.generation += 1
        if install.installed:
            self._ensure_conversation(install)

    def is_installed(self, user_oid: str) -> bool:
        """Whether the bot's app is installed for the user."""
        install = self._installs.get(user_oid.lower())
        return install is not None and install.installed

    def chat_id_for(self, user_oid: str) -> str | None:
        """The Graph chat id of the user's 1:1 chat with the bot (``None`` if not installed)."""
        if not self.is_installed(user_oid):
            return None
        return personal_chat_id(self._bot_id, user_oid)

    def conversation_id_for(self, user_oid: str) -> str:
        """The current ``a:`` conversation id of the user's 1:1 chat (as in activities)."""
        install = self._installs.get(user_oid.lower())
        generation = install.generation if install else 0
        return personal_conversation_id(self._bot_id, self.tenant_id, user_oid, generation)

    def user_mri(self, user_oid: str) -> str:
        """The user's ``29:`` id for this bot."""
        return user_mri(self._bot_id, user_oid)

    def _ensure_conversation(self, install: _Install) -> _Conversation:
        conversation_id = self.conversation_id_for(install.user_oid)
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            conversation = _Conversation(id=conversation_id, user_oid=install.user_oid)
            self._conversations[conversation_id] = conversation
        self._aliases[personal_chat_id(self._bot_id, install.user_oid)] = conversation_id
        return conversation

    # ------------------------------------------------------------------ queries for tests
    def messages_to(self, user_oid: str, *, include_deleted: bool = False) -> list[MessageState]:
        """Every message the bot posted to the user's 1:1 chats, in current state, oldest first."""
        found = [
            message
            for conversation in self._all_conversations()
            if conversation.user_oid.lower() == user_oid.lower()
            for message in conversation.messages.values()
            if include_deleted or not message.deleted
        ]
        return sorted(found, key=lambda m: m.sequence)

    def _all_conversations(self) -> list[_Conversation]:
        return list(self._conversations.values()) + list(self._retired)

    def calls(
        self, operation: Operation | None = None, *, status: int | None = None
    ) -> list[RecordedCall]:
        """Recorded calls, filtered by operation and/or status."""
        return [
            r
            for r in self.records
            if (operation is None or r.operation == operation)
            and (status is None or r.status == status)
        ]

    def throttled(self) -> list[RecordedCall]:
        """Calls answered 429."""
        return self.calls(status=429)

    def deliveries(self) -> list[RecordedCall]:
        """Activities the connector delivered to the bot, with the bot's status."""
        return [r for r in self.records if r.direction == "to_bot"]

    async def wait_until(self, predicate: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
        """Wait until ``predicate()`` holds, re-checking after each recorded call.

        Raises ``TimeoutError`` after ``timeout_s``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("condition not reached in time")
            event = self._changed_event()
            await asyncio.wait_for(event.wait(), remaining)

    async def drain_deliveries(self) -> None:
        """Wait for all background deliveries to the bot to finish."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    def _changed_event(self) -> asyncio.Event:
        if self._changed is None or self._changed.is_set():
            self._changed = asyncio.Event()
        return self._changed

    def _record(self, call: RecordedCall) -> None:
        self.records.append(call)
        if self._changed is not None:
            self._changed.set()

    # ------------------------------------------------------------------ aiohttp app
    def make_app(self, faults: Faults) -> web.Application:
        """The connector service (serve it over plain http, like the Emulator's serviceUrl)."""
        app = web.Application(client_max_size=1024 * 1024)
        faults.install(app, "connector")
        app.cleanup_ctx.append(self._http_client_ctx)
        router = app.router
        router.add_post("/v3/conversations", self._create_conversation)
        router.add_post("/v3/conversations/{cid}/activities", self._send)
        router.add_post("/v3/conversations/{cid}/activities/{aid}", self._reply)
        router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update)
        router.add_delete("/v3/conversations/{cid}/activities/{aid}", self._delete)
        router.add_get("/v3/conversations/{cid}/members", self._get_members)
        router.add_get("/v3/conversations/{cid}/members/{uid}", self._get_member)
        router.add_get("/v3/conversations/{cid}/pagedmembers", self._paged_members)
        self.identity.add_channel_metadata_routes(app)
        return app

    async def _http_client_ctx(self, app: web.Application) -> AsyncIterator[None]:
        client = httpx.AsyncClient(timeout=_DELIVERY_TIMEOUT_S)
        self._http = client
        app[_HTTP_CLIENT_KEY] = client
        try:
            yield
        finally:
            for task in list(self._deliveries):
                task.cancel()
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)
            self._http = None
            await client.aclose()

    # ------------------------------------------------------------------ request plumbing
    async def _handle(
        self,
        request: web.Request,
        operation: Operation,
        work: Callable[[], Awaitable[web.Response]],
    ) -> web.Response:
        """Authenticate, run ``work`` (which raises _ConnectorError), record the outcome."""
        conversation_id = request.match_info.get("cid")
        try:
            self._authenticate(request)
            return await work()
        except _ConnectorError as error:
            self._record(
                RecordedCall(
                    at=self._clock.now(),
                    method=request.method,
                    path=request.path,
                    operation=operation,
                    status=error.status,
                    conversation_id=conversation_id,
                    activity_id=request.match_info.get("aid"),
                    error_code=error.code,
                    retry_after_s=error.retry_after_s,
                    user_oid=self._user_of(conversation_id),
                )
            )
            return self._error_response(error)

    def _error_response(self, error: _ConnectorError) -> web.Response:
        headers = {}
        if error.retry_after_s is not None and self.retry_after_header:
            headers["Retry-After"] = str(error.retry_after_s)
        if error.status == 401:
            # The connector's ASP.NET front answers 401 with this body, not an ErrorResponse.
            return web.json_response({"message": error.message}, status=401)
        return web.json_response(
            {"error": {"code": error.code, "message": error.message}},
            status=error.status,
            headers=headers,
        )

    def _authenticate(self, request: web.Request) -> None:
        if self.anonymous:
            return
        denied = _ConnectorError(
            401, "Unauthorized", "Authorization has been denied for this request."
        )
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise denied
        try:
            access = self.identity.validate_access_token(
                token.strip(), audience=BOT_FRAMEWORK_AUDIENCE
            )
        except TokenError as exc:
            log.info("connector rejected a bearer token: %s", exc.message)
            raise denied from exc
        if self.bot_app_id and access.app_id.lower() != self.bot_app_id.lower():
            log.info("connector rejected a token for app %s", access.app_id)
            raise denied

    def _user_of(self, conversation_id: str | None) -> str | None:
        if conversation_id is None:
            return None
        conversation = self._conversation_or_none(conversation_id)
        return conversation.user_oid if conversation else None

    def _conversation_or_none(self, conversation_id: str) -> _Conversation | None:
        resolved = self._aliases.get(conversation_id, conversation_id)
        return self._conversations.get(resolved)

    def _conversation(self, conversation_id: str) -> _Conversation:
        conversation = self._conversation_or_none(conversation_id)
        if conversation is None:
            raise _ConnectorError(404, "ConversationNotFound", "Conversation not found.")
        return conversation

    def _now_s(self) -> float:
        return self._clock.now().timestamp()

    def _throttle(self, conversation_log: _SlidingLog | None) -> None:
        """Admit the request or raise 429; an admitted request is counted in both buckets."""
        now_s = self._now_s()
        wait_s = self._tenant_log.wait_s(now_s)
        if conversation_log is not None:
            wait_s = max(wait_s, conversation_log.wait_s(now_s))
        if wait_s > 0:
            raise _ConnectorError(
                429,
                "Throttled",
                "Too many requests",
                retry_after_s=max(1, math.ceil(wait_s - 1e-9)),
            )
        self._tenant_log.record(now_s)
        if conversation_log is not None:
            conversation_log.record(now_s)

    def _send_log(self, conversation: _Conversation) -> _SlidingLog:
        if conversation.send_log is None:
            conversation.send_log = _SlidingLog(self.limits.per_conversation_send)
        return conversation.send_log

    def _members_log(self, conversation: _Conversation) -> _SlidingLog:
        if conversation.members_log is None:
            conversation.members_log = _SlidingLog(self.limits.per_conversation_members)
        return conversation.members_log

    def _check_writable(self, conversation: _Conversation) -> None:
        install = self._installs.get(conversation.user_oid.lower())
        if install is None or not install.installed:
            raise _ConnectorError(
                403, "BotNotInConversationRoster", "The bot is not part of the conversation roster."
            )
        if install.blocked:
            raise _ConnectorError(
                403, "ConversationBlockedByUser", "User blocked the conversation with the bot."
            )

    async def _read_activity(self, request: web.Request) -> tuple[dict[str, Any], int]:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _ConnectorError(400, "BadArgument", "The request body is not JSON.") from exc
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise _ConnectorError(400, "BadArgument", "Activity must have a type.")
        return body, len(raw)

    def _check_size(self, size_bytes: int) -> None:
        if size_bytes > self.limits.max_message_bytes:
            raise _ConnectorError(413, "MessageSizeTooBig", "Message size too large.")

    def _next_activity_id(self, conversation: _Conversation) -> str:
        now_ms = int(self._now_s() * 1000)
        activity_ms = max(now_ms, conversation.last_activity_ms + 1)
        conversation.last_activity_ms = activity_ms
        return str(activity_ms)

    def _store_message(
        self, conversation: _Conversation, activity: dict[str, Any], reply_to_id: str | None
    ) -> MessageState:
        activity_id = self._next_activity_id(conversation)
        now = self._clock.now()
        stored = dict(activity)
        stored["id"] = activity_id
        stored["timestamp"] = now.isoformat()
        stored["conversation"] = {**dict(activity.get("conversation") or {}), "id": conversation.id}
        if reply_to_id is not None:
            stored["replyToId"] = reply_to_id
        message = MessageState(
            activity_id=activity_id,
            conversation_id=conversation.id,
            user_oid=conversation.user_oid,
            activity=stored,
            sent_at=now,
            updated_at=now,
            reply_to_id=reply_to_id,
            sequence=next(self._message_sequence),
        )
        conversation.messages[activity_id] = message
        return message

    def _ok(
        self,
        request: web.Request,
        operation: Operation,
        status: int,
        body: Any,
        *,
        conversation: _Conversation | None,
        activity_id: str | None = None,
        activity: Mapping[str, Any] | None = None,
    ) -> web.Response:
        self._record(
            RecordedCall(
                at=self._clock.now(),
                method=request.method,
                path=request.path,
                operation=operation,
                status=status,
                conversation_id=conversation.id if conversation else None,
                activity_id=activity_id,
                activity=activity,
                user_oid=conversation.user_oid if conversation else None,
            )
        )
        if body is None:
            return web.Response(status=status)
        return web.json_response(body, status=status)

    # ------------------------------------------------------------------ routes
    async def _create_conversation(self, request: web.Request) -> web.Response:
        async def work() -> web.Response:
            raw = await request.read()
            try:
                params = json.loads(raw)
            except ValueError as exc:
                raise _ConnectorError(400, "BadArgument", "The request body is not JSON.") from exc
            if not isinstance(params, dict):
                raise _ConnectorError(400, "BadArgument", "Invalid conversation parameters.")
            if params.get("isGroup"):
                raise _ConnectorError(
                    400, "BadArgument", "Bots cannot create group chats; use isGroup false."
                )
            tenant = params.get("tenantId") or (
                (params.get("channelData") or {}).get("tenant") or {}
            ).get("id")
            if not tenant:
                raise _ConnectorError(400, "BadArgument", "Tenant id is required.")
            if str(tenant).lower() != self.tenant_id.lower():
                raise _ConnectorError(
                    403, "ForbiddenOperationException", "The bot is not allowed in this tenant."
                )
            members = params.get("members")
            if (
                not isinstance(members, list)
                or len(members) != 1
                or not isinstance(members[0], dict)
            ):
                raise _ConnectorError(
                    400, "BadArgument", "A personal conversation needs exactly one member."
                )
            member_id = str(members[0].get("id") or "")
            if not member_id:
                # Teams only takes the Entra object id in members[].id (msteams-docs#14079).
                raise _ConnectorError(400, "BadArgument", "Member id is required.")
            user_oid = self._mri_to_oid.get(member_id, member_id)
            if self.identity.lookup_user(user_oid) is None:
                raise _ConnectorError(400, "BadArgument", "Invalid member id.")
            install = self._installs.get(user_oid.lower())
            if install is None or not install.installed:
                raise _ConnectorError(
                    403,
                    "ForbiddenOperationException",
                    "Bot is not installed in user's personal scope",
                )
            conversation = self._ensure_conversation(install)
            self._throttle(self._send_log(conversation))
            if install.blocked:
                raise _ConnectorError(
                    403, "ConversationBlockedByUser", "User blocked the conversation with the bot."
                )
            body: dict[str, Any] = {"id": conversation.id}
            first = params.get("activity")
            stored: MessageState | None = None
            if isinstance(first, dict) and first.get("type"):
                self._check_size(len(json.dumps(first).encode()))
                stored = self._store_message(conversation, first, None)
                body["activityId"] = stored.activity_id
            return self._ok(
                request,
                "create_conversation",
                201,
                body,
                conversation=conversation,
                activity_id=stored.activity_id if stored else None,
                activity=stored.activity if stored else None,
            )

        return await self._handle(request, "create_conversation", work)

    async def _post_activity(
        self, request: web.Request, operation: Operation, reply_to_id: str | None
    ) -> web.Response:
        async def work() -> web.Response:
            conversation = self._conversation(request.match_info["cid"])
            self._throttle(self._send_log(conversation))
            activity, size_bytes = await self._read_activity(request)
            self._check_writable(conversation)
            self._check_size(size_bytes)
            message = self._store_message(conversation, activity, reply_to_id)
            return self._ok(
                request,
                operation,
                201,
                {"id": message.activity_id},
                conversation=conversation,
                activity_id=message.activity_id,
                activity=message.activity,
            )

        return await self._handle(request, operation, work)

    async def _send(self, request: web.Request) -> web.Response:
        return await self._post_activity(request, "send", None)

    async def _reply(self, request: web.Request) -> web.Response:
        return await self._post_activity(request, "reply", request.match_info["aid"])

    def _existing_message(self, conversation: _Conversation, activity_id: str) -> MessageState:
        message = conversation.messages.get(activity_id)
        if message is None or message.deleted:
            raise _ConnectorError(
                404,
                "ActivityNotFoundInConversation",
                "The activity was not found in the conversation.",
            )
        return message

    async def _update(self, request: web.Request) -> web.Response:
        async def work() -> web.Response:
            conversation = self._conversation(request.match_info["cid"])
            self._throttle(self._send_log(conversation))
            activity, size_bytes = await self._read_activity(request)
            self._check_writable(conversation)
            message = self._existing_message(conversation, request.match_info["aid"])
            self._check_size(size_bytes)
            now = self._clock.now()
            updated = dict(activity)
            updated["id"] = message.activity_id
            updated["timestamp"] = message.activity.get("timestamp")
            updated["conversation"] = {
                **dict(activity.get("conversation") or {}),
                "id": conversation.id,
            }
            message.activity = updated
            message.updated_at = now
            message.update_count += 1
            return self._ok(
                request,
                "update",
                200,
                {"id": message.activity_id},
                conversation=conversation,
                activity_id=message.activity_id,
                activity=updated,
            )

        return await self._handle(request, "update", work)

    async def _delete(self, request: web.Request) -> web.Response:
        async def work() -> web.Response:
            conversation = self._conversation(request.match_info["cid"])
            self._throttle(self._send_log(conversation))
            message = self._existing_message(conversation, request.match_info["aid"])
            message.deleted = True
            message.updated_at = self._clock.now()
            return self._ok(
                request,
                "delete",
                200,
                None,
                conversation=conversation,
                activity_id=message.activity_id,
            )

        return await self._handle(request, "delete", work)

    def _member_account(self, user_oid: str) -> dict[str, Any]:
        user = self.identity.lookup_user(user_oid) or {}
        upn = str(user.get("userPrincipalName") or "")
        name = str(user.get("displayName") or upn)
        given, _, surname = name.partition(" ")
        return {
            "id": self.user_mri(user_oid),
            "name": name,
            "aadObjectId": user_oid,
            "givenName": user.get("givenName") or given,
            "surname": user.get("surname") or surname,
            "email": user.get("mail") or upn,
            "userPrincipalName": upn,
            "tenantId": self.tenant_id,
            "userRole": "user",
        }

    async def _get_member(self, request: web.Request) -> web.Response:
        async def work() -> web.Response:
            conversation = self._conversation(request.match_info["cid"])
            self._throttle(self._members_log(conversation))
            member_id = request.match_info["uid"]
            user_oid = self._mri_to_oid.get(member_id, member_id)
            if user_oid.lower() != conversation.user_oid.lower():
                raise _ConnectorError(
                    404,
                    "MemberNotFoundInConversation",
                    "The member was not found in the conversation.",
                )
            return self._ok(
                request,
                "get_member",
                200,
                self._member_account(conversation.user_oid),
                conversation=conversation,
            )

        return await self._handle(request, "get_member", work)

    async def _get_members(self, request: web.Request) -> web.Response:
        async def work() -> web.Response:
            conversation = self._conversation(request.match_info["cid"])
            self._throttle(self._members_log(conversation))
            return self._ok(
                request,
                "get_members",
                200,
                [self._member_account(conversation.user_oid)],
                conversation=conversation,
            )

        return await self._handle(request, "get_members", work)

    async def _paged_members(self, request: web.Request) -> web.Response:
        async def work() -> web.Response:
            conversation = self._conversation(request.match_info["cid"])
            self._throttle(self._members_log(conversation))
            try:
                page_size = int(request.query.get("pageSize", "200"))
                offset = int(request.query.get("continuationToken") or "0")
            except ValueError as exc:
                raise _ConnectorError(400, "BadArgument", "Invalid paging parameters.") from exc
            # Teams serves at least 50 and at most 500 members per page.
            page_size = min(max(page_size, 50), 500)
            roster = [self._member_account(conversation.user_oid)]
            page = roster[offset : offset + page_size]
            body: dict[str, Any] = {"members": page}
            if offset + page_size < len(roster):
                body["continuationToken"] = str(offset + page_size)
            return self._ok(request, "paged_members", 200, body, conversation=conversation)

        return await self._handle(request, "paged_members", work)

    # ------------------------------------------------------------------ delivery to the bot
    def teams_client(self, http: httpx.AsyncClient) -> TeamsClient:
        """A :class:`TeamsClient` addressing this connector's bot (needs service_url and
        bot_endpoint)."""
        if self.service_url is None or self.bot_endpoint is None:
            raise RuntimeError("service_url and bot_endpoint must be set first")
        return TeamsClient(
            self.identity,
            self.service_url,
            self.bot_endpoint,
            self._bot_id,
            self.tenant_id,
            http,
            unsigned=self.bot_app_id is None or self.anonymous,
            clock=self._clock,
            conversation_id_for=self.conversation_id_for,
            client_languages=self.client_languages,
        )

    def _schedule_install_delivery(self, user_oid: str) -> None:
        if self.bot_endpoint is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("no running event loop; install of %s not delivered to the bot", user_oid)
            return
        task = loop.create_task(self._deliver_install(user_oid))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver_install(self, user_oid: str) -> None:
        http = self._http
        problem = (
            "ConnectorNotRunning"
            if http is None
            else "ServiceUrlNotSet"
            if self.service_url is None
            else "BotEndpointNotSet"
            if self.bot_endpoint is None
            else None
        )
        if http is None or self.service_url is None or self.bot_endpoint is None:
            log.warning("install of %s not delivered to the bot: %s", user_oid, problem)
            self._record(
                RecordedCall(
                    at=self._clock.now(),
                    method="POST",
                    path=self.bot_endpoint or "",
                    operation="deliver_to_bot",
                    status=0,
                    user_oid=user_oid,
                    error_code=problem,
                    direction="to_bot",
                    conversation_id=self.conversation_id_for(user_oid),
                )
            )
            return
        client = self.teams_client(http)
        for activity in (
            client.installation_update_activity(user_oid, "add"),
            client.conversation_update_activity(user_oid),
        ):
            status = 0
            error_code: str | None = None
            try:
                response = await client.send_activity(activity)
                status = response.status
            except httpx.HTTPError as exc:
                error_code = type(exc).__name__
                log.warning(
                    "delivering %s for %s to the bot failed: %s", activity["type"], user_oid, exc
                )
            self._record(
                RecordedCall(
                    at=self._clock.now(),
                    method="POST",
                    path=self.bot_endpoint,
                    operation="deliver_to_bot",
                    status=status,
                    user_oid=user_oid,
                    conversation_id=activity["conversation"]["id"],
                    activity_id=activity["id"],
                    activity=activity,
                    error_code=error_code,
                    direction="to_bot",
                )
            )
