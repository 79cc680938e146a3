"""``ReviewBot``: the Teams activity handler. The only class that sees botbuilder's turn context."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
from botbuilder.core import CardFactory, InvokeResponse, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, AdaptiveCardInvokeResponse, ChannelAccount
from msrest.exceptions import ClientRequestError

from bot.clock import Clock
from bot.graph import TokenAcquisitionError
from bot.notify.delivery import reply_message
from bot.notify.language import (
    REFERENCE_LOCALE,
    REFERENCE_TIME_ZONE,
    LanguageDefaults,
    ViewerLanguage,
    activity_language,
    normalize_zone,
    turn_language,
)
from bot.notify.views import ReviewerContext, pending_list_view
from bot.store import Store, is_unavailable
from bot.teams.actions import CARD_TYPE, MESSAGE_TYPE, ActionContext, ActionResult, ActionRouter
from bot.teams.commands import Command, parse_command, snooze_argument
from bot.teams.connector import TRANSIENT_STATUSES
from cards import render_pending_list_card
from cards.i18n import normalize_locale, pick_locale
from cards.strings import S, Strings

__all__ = ["ReviewBot", "activity_tenant_id", "refused_for_now"]

log = logging.getLogger(__name__)


# What a queued reply keeps of the activity (the outbox addresses it to the conversation).
_REPLY_FIELDS = frozenset(
    {"type", "text", "textFormat", "attachments", "attachmentLayout", "summary", "suggestedActions"}
)
_QUEUED_REPLIES = "access_review_bot.queued_replies"
#: How long the conversation reference this process last saw stored is trusted without reading
#: it back: another replica may have changed it meanwhile (a chat created again); then the
#: reference of a later activity is compared with the store again, and written if it differs.
REFERENCE_TRUST_S = 60.0
#: People whose last seen reference is kept (cleared when full).
REMEMBERED_MAX = 50_000


def _status_of(error: BaseException) -> int | None:
    """The HTTP status of a connector call botbuilder failed (None: no answer)."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return int(status) if isinstance(status, int) else None


def refused_for_now(error: BaseException) -> bool:
    """True when a connector call failed in a way worth trying again later: 429 or one of the
    statuses Teams asks bots to retry, or no answer at all (see bot.teams.connector)."""
    status = _status_of(error)
    if status is not None:
        return status == 429 or status in TRANSIENT_STATUSES
    return isinstance(error, ClientRequestError | aiohttp.ClientError | TimeoutError | OSError)


def activity_tenant_id(activity: Activity) -> str:
    """The tenant an activity came from: ``conversation.tenantId`` or ``channelData.tenant.id``."""
    tenant = getattr(activity.conversation, "tenant_id", None) if activity.conversation else None
    if tenant:
        return str(tenant)
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant_info = channel_data.get("tenant")
    if isinstance(tenant_info, dict):
        return str(tenant_info.get("id") or "")
    return ""


def _invoke(http_status: int, result: ActionResult) -> InvokeResponse:
    """The invoke answer: an msrest model body, serialised once by the adapter."""
    return InvokeResponse(
        status=http_status,
        body=AdaptiveCardInvokeResponse(
            status_code=result.status_code, type=result.type, value=result.value
        ),
    )


class ReviewBot(TeamsActivityHandler):  # type: ignore[misc]
    """Answers chat commands, greets on install, and remembers where to reach each user."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        actions: ActionRouter | None = None,
        tenant_id: str = "",
        token_exchange: Callable[[str, str], Awaitable[None]] | None = None,
        on_new_conversation: Callable[[str, str, Mapping[str, Any] | None], Awaitable[None]]
        | None = None,
        languages: LanguageDefaults | None = None,
    ) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._actions = actions
        self._tenant_id = tenant_id
        # (user oid, SSO token) → performs the on-behalf-of exchange, raising token errors.
        self._token_exchange = token_exchange
        self._on_new_conversation = on_new_conversation
        self._languages = languages or LanguageDefaults()
        # (tenant, user) → (fingerprint of the reference last seen stored, the store's write
        # count then, monotonic time): see _remember_conversation.
        self._remembered: dict[tuple[str, str], tuple[str, int, float]] = {}
        self._commands: dict[Command, Callable[[TurnContext, tuple[str, ...]], Awaitable[None]]] = {
            Command.PENDING: self._pending,
            Command.SNOOZE: self._snooze,
            Command.HELP: self._help,
        }

    async def on_turn(self, turn_context: TurnContext) -> None:
        try:
            await self._remember_conversation(turn_context)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            # Kept by the next activity; the turn itself may still be answered (or say busy).
            log.warning("store unavailable, conversation not remembered: %s", type(exc).__name__)
        await super().on_turn(turn_context)

    # -- invokes ----------------------------------------------------------------------------
    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        # Handled here, not in on_adaptive_card_invoke: botbuilder 4.17.1 double-serialises the
        # latter's answer under the aiohttp CloudAdapter and every click becomes a 500.
        name = turn_context.activity.name
        if name == "adaptiveCard/action":
            return await self._card_action(turn_context)
        if name == "signin/tokenExchange":
            return await self._token_exchange_invoke(turn_context)
        if name == "signin/verifyState":
            # Sign-in happens through SSO and on-behalf-of; a magic code has nothing to unlock.
            return InvokeResponse(status=200)
        # botbuilder's other invoke handlers (messaging extensions, task modules, tabs, file
        # consent) read the value into their models, which fails on a malformed one, and answer
        # 501 otherwise. This bot offers none of them: the caller's mistake, a 400.
        log.info("unsupported invoke", extra={"invoke_name": str(name)[:60]})
        return InvokeResponse(status=400, body={"error": "unsupported invoke"})

    async def _card_action(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        value = activity.value if isinstance(activity.value, dict) else None
        action = value.get("action") if value else None
        words = self._words(activity)
        if not isinstance(action, dict) or not isinstance(action.get("verb"), str):
            log.warning("adaptiveCard/action without an action verb")
            return _invoke(
                400, ActionResult.error(400, "BadRequest", words.text(S.ERROR_MALFORMED_CARD))
            )
        data = action.get("data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            log.warning("adaptiveCard/action whose data is not an object")
            return _invoke(
                400, ActionResult.error(400, "BadRequest", words.text(S.ERROR_MALFORMED_CARD))
            )
        if self._actions is None:
            return _invoke(200, ActionResult.error(503, "NotReady", words.text(S.ERROR_NOT_READY)))
        actor_oid = getattr(activity.from_property, "aad_object_id", None) or ""
        if not actor_oid:
            return _invoke(
                200, ActionResult.error(403, "Forbidden", words.text(S.ERROR_UNIDENTIFIED))
            )
        locale, time_zone = activity_language(activity)
        authentication = value.get("authentication") if value else None
        sso_token = authentication.get("token") if isinstance(authentication, dict) else None
        context = ActionContext(
            tenant_id=activity_tenant_id(activity),
            actor_oid=actor_oid,
            actor_teams_id=str(activity.from_property.id or f"8:orgid:{actor_oid}"),
            actor_name=str(activity.from_property.name or ""),
            verb=action["verb"],
            data=data,
            trigger=str(value.get("trigger") or "manual") if value else "manual",
            activity_id=str(activity.id or ""),
            sso_token=sso_token if isinstance(sso_token, str) and sso_token else None,
            locale=locale,
            time_zone=time_zone,
        )
        try:
            result = await self._actions.handle(context)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            # The database is down or overloaded this moment: the reviewer is told to try again
            # (a durable intent recorded before the failure is finished by the decision worker;
            # a repeated click is collapsed), and the log gets one line, not a stack trace.
            log.warning(
                "store unavailable, click not confirmed: %s",
                type(exc).__name__,
                extra={"verb": context.verb[:40]},
            )
            return _invoke(
                200, ActionResult.error(503, "ServiceUnavailable", words.text(S.ERROR_BUSY))
            )
        return _invoke(200, result)

    async def _token_exchange_invoke(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        value = activity.value if isinstance(activity.value, dict) else {}
        exchange_id = str(value.get("id") or "")
        token = value.get("token")
        connection = str(value.get("connectionName") or "")
        user_oid = getattr(activity.from_property, "aad_object_id", None) or ""
        if not exchange_id or not isinstance(token, str) or not user_oid:
            return InvokeResponse(
                status=400,
                body={
                    "id": exchange_id,
                    "connectionName": connection,
                    "failureDetail": "malformed token exchange",
                },
            )
        conversation_id = activity.conversation.id if activity.conversation else ""
        # Teams may deliver the same exchange to several endpoints of the bot: the first one wins.
        first = await self._store.remember_once(
            key=f"token-exchange|{conversation_id}|{exchange_id}", ttl_s=3600
        )
        if not first:
            return InvokeResponse(status=200)
        if self._token_exchange is None:
            return InvokeResponse(
                status=412,
                body={
                    "id": exchange_id,
                    "connectionName": connection,
                    "failureDetail": "sign-in is not configured",
                },
            )
        try:
            await self._token_exchange(user_oid, token)
        except TokenAcquisitionError as exc:
            log.info("token exchange failed: %s", type(exc).__name__)
            return InvokeResponse(
                status=412,
                body={
                    "id": exchange_id,
                    "connectionName": connection,
                    "failureDetail": type(exc).__name__,
                },
            )
        return InvokeResponse(status=200)

    # -- messages ---------------------------------------------------------------------------
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        value = turn_context.activity.value
        if isinstance(value, dict) and isinstance(value.get("verb"), str):
            await self._submit_fallback(turn_context, value)
            return
        parsed = parse_command(turn_context.activity.text)
        handler = self._commands.get(parsed.command, self._unknown)
        log.info("chat command", extra={"command": parsed.command.value or "?"})
        await handler(turn_context, parsed.arguments)

    async def _submit_fallback(self, turn_context: TurnContext, value: dict[str, Any]) -> None:
        """``Action.Submit`` from clients without Universal Actions: same handlers, card edited."""
        activity = turn_context.activity
        actor_oid = getattr(activity.from_property, "aad_object_id", None) or ""
        if self._actions is None or not actor_oid:
            return
        data = {k: v for k, v in value.items() if k != "verb"}
        locale, time_zone = activity_language(activity)
        result = await self._actions.handle(
            ActionContext(
                tenant_id=activity_tenant_id(activity),
                actor_oid=actor_oid,
                actor_teams_id=str(activity.from_property.id or f"8:orgid:{actor_oid}"),
                actor_name=str(activity.from_property.name or ""),
                verb=str(value["verb"]),
                data=data,
                activity_id=str(activity.id or ""),
                locale=locale,
                time_zone=time_zone,
            )
        )
        if result.type == CARD_TYPE:
            reply = MessageFactory.attachment(CardFactory.adaptive_card(result.value))
            if activity.reply_to_id:
                reply.id = activity.reply_to_id
                try:
                    await turn_context.update_activity(reply)
                except Exception as exc:
                    if not refused_for_now(exc):
                        raise
                    # The outbox edits the same card once the decision settles (the notifier's
                    # items_changed): nothing is lost by not retrying this edit here.
                    log.warning("in-turn card edit refused for now: %s", _status_of(exc))
            else:
                await self._say(turn_context, reply)
        elif result.type == MESSAGE_TYPE:
            await self._say(turn_context, str(result.value))
        else:
            message = result.value.get("message") if isinstance(result.value, dict) else None
            await self._say(
                turn_context, str(message or self._words(activity).text(S.ERROR_SIGN_IN_TO_TEAMS))
            )

    async def _say(self, turn_context: TurnContext, reply: Activity | str) -> None:
        """Reply in the turn. If the connector refuses the reply for now (429, 412, 502–504, no
        answer), the outbox delivers it later like any proactive send, rather than dropping it.
        """
        activity = MessageFactory.text(reply) if isinstance(reply, str) else reply
        try:
            await turn_context.send_activity(activity)
        except Exception as exc:
            if not refused_for_now(exc):
                raise
            await self._queue_reply(turn_context, activity, exc)

    async def _queue_reply(
        self, turn_context: TurnContext, activity: Activity, error: BaseException
    ) -> None:
        incoming = turn_context.activity
        conversation_id = incoming.conversation.id if incoming.conversation else ""
        if not conversation_id or not incoming.service_url:
            raise error
        index = int(turn_context.turn_state.get(_QUEUED_REPLIES, 0))
        turn_context.turn_state[_QUEUED_REPLIES] = index + 1
        body = {
            key: value
            for key, value in activity.serialize().items()
            if key in _REPLY_FIELDS and value not in (None, "", [])
        }
        body.setdefault("type", "message")
        key, kind, payload = reply_message(
            reviewer_oid=str(getattr(incoming.from_property, "aad_object_id", None) or ""),
            conversation_id=conversation_id,
            service_url=incoming.service_url,
            activity=body,
            turn_activity_id=str(incoming.id or ""),
            index=index,
            queued_at=self._clock.now().isoformat(),
        )
        await self._store.enqueue_outbox(key=key, kind=kind, payload=payload)
        log.warning("reply refused by the connector (%s); the outbox sends it", _status_of(error))

    async def _pending(self, turn_context: TurnContext, _arguments: tuple[str, ...]) -> None:
        """The user's open reviews with counts, each with a button that opens its card."""
        activity = turn_context.activity
        user_oid = getattr(activity.from_property, "aad_object_id", None) or ""
        language = await self._language(activity, user_oid)
        if not user_oid:
            await self._reply(turn_context, language, S.CHAT_WHO_ARE_YOU)
            return
        viewer = ReviewerContext(
            reviewer_oid=user_oid,
            teams_user_id=str(activity.from_property.id or f"8:orgid:{user_oid}"),
            locale=language.locale,
            time_zone=language.time_zone,
        )
        view = await pending_list_view(self._store, viewer=viewer, now=self._clock.now())
        card = render_pending_list_card(view)
        await self._say(turn_context, MessageFactory.attachment(CardFactory.adaptive_card(card)))

    async def _snooze(self, turn_context: TurnContext, arguments: tuple[str, ...]) -> None:
        """``snooze 4h`` / ``snooze tomorrow`` (in any language): quiet reminders of all of the
        user's open reviews."""
        activity = turn_context.activity
        user_oid = getattr(activity.from_property, "aad_object_id", None) or ""
        language = await self._language(activity, user_oid)
        if self._actions is None or not user_oid:
            await self._reply(turn_context, language, S.CHAT_SNOOZE_UNAVAILABLE)
            return
        context = ActionContext(
            tenant_id=activity_tenant_id(activity),
            actor_oid=user_oid,
            actor_teams_id=str(activity.from_property.id or f"8:orgid:{user_oid}"),
            actor_name=str(activity.from_property.name or ""),
            verb="snooze",
            data={},
            locale=language.locale,
            time_zone=language.time_zone,
        )
        viewer = ReviewerContext(reviewer_oid=user_oid, teams_user_id=context.actor_teams_id)
        reviews = (
            await pending_list_view(self._store, viewer=viewer, now=self._clock.now())
        ).reviews
        if not reviews:
            await self._reply(turn_context, language, S.CHAT_SNOOZE_NOTHING_OPEN)
            return
        until: datetime | None = None
        try:
            for review in reviews:
                outcome = await self._actions.snooze(
                    context, review.instance_id, snooze_argument(arguments)
                )
                if isinstance(outcome, datetime):
                    until = outcome if until is None else max(until, outcome)
        except ValueError:
            await self._reply(turn_context, language, S.CHAT_SNOOZE_USAGE)
            return
        if until is None:
            await self._reply(turn_context, language, S.CHAT_SNOOZE_NOTHING)
            return
        words = Strings(language.locale, language.time_zone)
        await self._reply(
            turn_context,
            language,
            S.CHAT_SNOOZED_UNTIL,
            until=words.when(until, self._clock.now()),
        )

    async def _help(self, turn_context: TurnContext, _arguments: tuple[str, ...]) -> None:
        activity = turn_context.activity
        language = await self._language(activity, self._user_oid(activity))
        await self._reply(turn_context, language, S.CHAT_HELP)

    async def _unknown(self, turn_context: TurnContext, _arguments: tuple[str, ...]) -> None:
        activity = turn_context.activity
        language = await self._language(activity, self._user_oid(activity))
        words = Strings(language.locale)
        text = f"{words.text(S.CHAT_NOT_UNDERSTOOD)}\n\n{words.text(S.CHAT_HELP)}"
        await self._say(turn_context, Activity(type="message", text=text, text_format="markdown"))

    # -- language -------------------------------------------------------------------------------
    @staticmethod
    def _user_oid(activity: Activity) -> str:
        return str(getattr(activity.from_property, "aad_object_id", None) or "")

    def _words(self, activity: Activity) -> Strings:
        """Strings in the activity's language (no store read: for errors and short answers)."""
        locale, _ = activity_language(activity)
        return Strings(pick_locale([locale], default=self._languages.locale))

    async def _language(self, activity: Activity, user_oid: str) -> ViewerLanguage:
        """The language of a reply: what the client sent, else the person's (from the store)."""
        locale, time_zone = activity_language(activity)
        person, reference = None, None
        if user_oid and (normalize_locale(locale) is None or normalize_zone(time_zone) is None):
            person = (await self._store.get_people(user_oids=[user_oid])).get(user_oid)
            reference = await self._store.get_conversation_reference(
                tenant_id=activity_tenant_id(activity), user_oid=user_oid
            )
        return turn_language(
            locale=locale,
            time_zone=time_zone,
            person=person,
            reference=reference,
            defaults=self._languages,
        )

    async def _reply(
        self, turn_context: TurnContext, language: ViewerLanguage, key: S, **params: object
    ) -> None:
        text = Strings(language.locale).text(key, **params)
        await self._say(turn_context, Activity(type="message", text=text, text_format="markdown"))

    # -- installation -----------------------------------------------------------------------
    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._welcome(turn_context)

    async def _welcome(self, turn_context: TurnContext) -> None:
        """Greet once per personal chat: Teams announces an install twice (installationUpdate and
        conversationUpdate), the Bot Framework Emulator and Agents Playground only the latter."""
        conversation = turn_context.activity.conversation
        if conversation is None or conversation.conversation_type not in (None, "personal"):
            return
        if await self._store.remember_once(key=f"welcome|{conversation.id}", ttl_s=365 * 86400):
            activity = turn_context.activity
            language = await self._language(activity, self._user_oid(activity))
            await self._reply(turn_context, language, S.CHAT_WELCOME)

    async def on_installation_update_remove(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        user_oid = getattr(activity.from_property, "aad_object_id", None)
        tenant_id = activity_tenant_id(activity)
        if user_oid and tenant_id:
            await self._store.delete_conversation_reference(tenant_id=tenant_id, user_oid=user_oid)
            log.info("app removed by user; conversation reference dropped")

    async def on_teams_members_added(
        self, teams_members_added: list[Any], team_info: Any, turn_context: TurnContext
    ) -> None:
        # The Bot Framework Emulator and Agents Playground announce the user this way, without
        # an installationUpdate; greet once per user in a personal chat.
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if any(getattr(m, "id", None) != bot_id for m in teams_members_added):
            await self._welcome(turn_context)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        await self.on_teams_members_added(members_added, None, turn_context)

    # -- conversation references ------------------------------------------------------------
    async def _remember_conversation(self, turn_context: TurnContext) -> None:
        """Store the 1:1 conversation reference from any personal activity (install, message, …)."""
        activity = turn_context.activity
        conversation = activity.conversation
        if conversation is None or conversation.conversation_type not in (None, "personal"):
            return
        if activity.type == "installationUpdate" and (activity.action or "").startswith("remove"):
            return
        user_oid = getattr(activity.from_property, "aad_object_id", None)
        tenant_id = activity_tenant_id(activity)
        if not user_oid or not tenant_id or not activity.service_url:
            return
        locale, time_zone = activity_language(activity)
        # Nearly every activity repeats the reference this process last saw stored: known from
        # the fields it is made of, without serializing it or reading the store.
        person = (tenant_id, user_oid)
        fingerprint = _reference_fingerprint(activity, locale, time_zone)
        written = self._store.conversation_references_written
        seen = self._remembered.get(person)
        now = time.monotonic()
        if (
            seen is not None
            and seen[0] == fingerprint
            and seen[1] == written
            and now - seen[2] < REFERENCE_TRUST_S
        ):
            return
        reference = TurnContext.get_conversation_reference(activity).serialize()
        reference.pop("activityId", None)  # per message; the reference is per conversation
        reference["conversation"]["tenantId"] = tenant_id
        previous = await self._store.get_conversation_reference(
            tenant_id=tenant_id, user_oid=user_oid
        )
        # The client's language and zone, for the cards sent to this person later; an activity
        # that does not say keeps what an earlier one said (no write back and forth).
        for key, value in ((REFERENCE_LOCALE, locale), (REFERENCE_TIME_ZONE, time_zone)):
            if isinstance(value, str) and value and len(value) <= 64:
                reference[key] = value
            elif previous and isinstance(previous.get(key), str):
                reference[key] = previous[key]
            else:
                reference.pop(key, None)
        if previous == reference:
            self._remember(person, fingerprint, written, now)
            return  # nothing to write
        changed = await self._store.save_conversation_reference(
            tenant_id=tenant_id, user_oid=user_oid, reference=reference
        )
        # Counted before anything else runs: a reference written by what follows (or by anyone
        # meanwhile) makes the next activity look at the store again.
        written = self._store.conversation_references_written
        if changed:
            log.info("conversation reference stored", extra={"user_oid": user_oid})
            old_id = (previous or {}).get("conversation", {}).get("id")
            if old_id != reference["conversation"]["id"] and self._on_new_conversation is not None:
                # Another chat id (another name of the same chat, a reinstall, another client):
                # the notifier decides whether the review cards must move (with what we knew).
                await self._on_new_conversation(tenant_id, user_oid, previous)
        self._remember(person, fingerprint, written, now)

    def _remember(
        self, key: tuple[str, str], fingerprint: str, written: int, seen_at: float
    ) -> None:
        """Note that the reference ``fingerprint`` stands for is what the store holds for ``key``
        (as of ``written``, at monotonic ``seen_at``)."""
        if len(self._remembered) >= REMEMBERED_MAX:
            self._remembered.clear()
        self._remembered[key] = (fingerprint, written, seen_at)


def _reference_fingerprint(activity: Activity, locale: object, time_zone: object) -> str:
    """Everything a stored conversation reference is made of, from the activity's fields as
    parsed (what ``TurnContext.get_conversation_reference`` reads, and the client's language and
    zone), in a few microseconds instead of msrest's serialization."""
    return repr(
        (
            activity.service_url,
            activity.channel_id,
            activity.locale,
            locale,
            time_zone,
            _fields(activity.from_property),
            _fields(activity.recipient),
            _fields(activity.conversation),
        )
    )


def _fields(model: object) -> object:
    return None if model is None else sorted(vars(model).items())
