"""``ReviewBot``: the Teams activity handler. The only class that sees botbuilder's turn context."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, ChannelAccount

from bot.clock import Clock
from bot.store import Store
from bot.teams.commands import HELP_TEXT, normalize_command

__all__ = ["ReviewBot", "activity_tenant_id"]

log = logging.getLogger(__name__)

WELCOME_TEXT = (
    "Hi, I'm Access Review Bot. When an access review needs your decision, I'll send it here "
    "so you can approve or deny in one click. Type **help** to see what I can do."
)


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


class ReviewBot(TeamsActivityHandler):  # type: ignore[misc]
    """Answers chat commands, greets on install, and remembers where to reach each user."""

    def __init__(self, *, store: Store, clock: Clock) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._commands: dict[str, Callable[[TurnContext], Awaitable[None]]] = {
            "help": self._help,
            "hi": self._help,
            "hello": self._help,
        }

    async def on_turn(self, turn_context: TurnContext) -> None:
        await self._remember_conversation(turn_context)
        await super().on_turn(turn_context)

    # -- messages ---------------------------------------------------------------------------
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        command = normalize_command(turn_context.activity.text)
        handler = self._commands.get(command, self._unknown)
        log.info("chat command", extra={"command": command if command in self._commands else "?"})
        await handler(turn_context)

    async def _help(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(
            Activity(type="message", text=HELP_TEXT, text_format="markdown")
        )

    async def _unknown(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(
            Activity(
                type="message",
                text="I didn't catch that.\n\n" + HELP_TEXT,
                text_format="markdown",
            )
        )

    # -- installation -----------------------------------------------------------------------
    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        if (
            turn_context.activity.conversation
            and turn_context.activity.conversation.conversation_type
            in (
                None,
                "personal",
            )
        ):
            await turn_context.send_activity(WELCOME_TEXT)

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
            if turn_context.activity.conversation.conversation_type in (None, "personal"):
                await turn_context.send_activity(WELCOME_TEXT)

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
        reference = TurnContext.get_conversation_reference(activity).serialize()
        reference["conversation"]["tenantId"] = tenant_id
        changed = await self._store.save_conversation_reference(
            tenant_id=tenant_id, user_oid=user_oid, reference=reference
        )
        if changed:
            log.info("conversation reference stored", extra={"user_oid": user_oid})
