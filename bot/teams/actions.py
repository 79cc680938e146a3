"""``adaptiveCard/action`` invokes: validated, authorized, routed by a verb table.

Each verb maps to one handler returning an :class:`ActionResult` in the Universal Actions shapes
(card, message, error, loginRequest, preconditionFailed). Card data is untrusted input: every id is
checked for shape here and against the store in :mod:`bot.reviews.decisions` before anything is
written; malformed data is a 400 error response with a log line.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from bot.clock import Clock
from bot.graph import (
    ConsentRequired,
    InteractionRequired,
    NoCachedToken,
    Priority,
    SsoTokenExpired,
    SsoTokenInvalid,
    TokenAcquisitionError,
    graph_priority,
)
from bot.notify.language import LanguageDefaults, normalize_zone, turn_language
from bot.notify.reminders import ReminderScheduler, reminder_request
from bot.notify.schedule import NUDGE_INTERVAL, SnoozeError, nudge_key, parse_snooze, snooze_until
from bot.notify.views import (
    ReviewerContext,
    build_review_card_view,
    escalation_view,
    pending_list_view,
)
from bot.reviews.decisions import (
    JUSTIFICATION_MAX_CHARS,
    DecisionOutcome,
    DecisionRequest,
    DecisionService,
    Refusal,
)
from bot.reviews.poller import request_targeted_poll
from bot.store import AuditEvent, InstanceRecord, OnceWork, Store
from cards import (
    BACK_KEY,
    HelpCardView,
    MessageCardView,
    MessageKey,
    Notice,
    NoticeKind,
    ReviewCardView,
    SignInCardView,
    SignInReason,
    render_accept_preview_card,
    render_escalation_card,
    render_help_card,
    render_message_card,
    render_pending_list_card,
    render_review_card,
    render_signin_card,
    selected_item_ids,
)
from cards.i18n import normalize_locale, pick_locale
from cards.strings import S, Strings

__all__ = ["ActionContext", "ActionResult", "ActionRouter", "SsoConfig"]

log = logging.getLogger(__name__)

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"
ERROR_TYPE = "application/vnd.microsoft.error"
LOGIN_TYPE = "application/vnd.microsoft.activity.loginRequest"
PRECONDITION_TYPE = "application/vnd.microsoft.error.preconditionFailed"

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_DECISIONS = frozenset({"Approve", "Deny", "DontKnow"})
_MAX_PAGE = 10_000


class BadData(ValueError):
    """The action's data does not have the shape its verb needs."""


@dataclass(frozen=True)
class SsoConfig:
    """What a loginRequest names: the Application ID URI, and where a non-SSO sign-in goes."""

    app_id: str
    app_id_uri: str
    authority: str  # https://login.microsoftonline.com/{tenant}
    redirect_uri: str = ""
    connection_name: str = "sso"

    def sign_in_url(self, *, prompt: str = "select_account") -> str:
        query = {
            "client_id": self.app_id,
            "response_type": "code",
            "scope": f"{self.app_id_uri}/access_as_user openid profile",
            "prompt": prompt,
        }
        if self.redirect_uri:
            query["redirect_uri"] = self.redirect_uri
        return f"{self.authority}/oauth2/v2.0/authorize?{urlencode(query)}"


@dataclass(frozen=True)
class ActionContext:
    """One click, as far as the router is concerned."""

    tenant_id: str
    actor_oid: str
    actor_teams_id: str
    actor_name: str
    verb: str
    data: Mapping[str, Any]
    trigger: str = "manual"
    activity_id: str = ""
    sso_token: str | None = field(default=None, repr=False)
    # What the clicking client said of its language and zone (untrusted; checked where used).
    locale: str | None = None
    time_zone: str | None = None


class AnswerCard(dict[str, Any]):
    """A rendered card going out as an invoke's answer.

    botbuilder deep-copies every activity it sends, the invoke answer with its card included:
    for a page of ten items that copy cost more CPU than rendering the card. Nothing changes an
    answer card once it is rendered (the renderers build a new one for every answer, and reused
    item blocks are parsed afresh for each, see ``cards.review``), so its copy is the card.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> AnswerCard:
        return self


@dataclass(frozen=True)
class ActionResult:
    """The body of the invoke response (``statusCode``, ``type``, ``value``)."""

    status_code: int
    type: str
    value: Any

    @classmethod
    def card(cls, card: Mapping[str, Any]) -> ActionResult:
        return cls(200, CARD_TYPE, AnswerCard(card))

    @classmethod
    def message(cls, text: str) -> ActionResult:
        return cls(200, MESSAGE_TYPE, text)

    @classmethod
    def error(cls, status: int, code: str, message: str) -> ActionResult:
        return cls(status, ERROR_TYPE, {"code": code, "message": message})

    def body(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "type": self.type, "value": self.value}


Handler = Callable[[ActionContext], Awaitable[ActionResult]]

_REFUSAL_MESSAGES: dict[str, MessageKey] = {
    "unknown_review": MessageKey.NOT_A_REVIEWER,
    "not_a_reviewer": MessageKey.NOT_A_REVIEWER,
    "review_ended": MessageKey.REVIEW_ENDED,
    "justification_required": MessageKey.JUSTIFICATION_REQUIRED,
    "justification_too_long": MessageKey.JUSTIFICATION_TOO_LONG,
    "nothing_selected": MessageKey.NOTHING_SELECTED,
    "bad_decision": MessageKey.GENERIC_ERROR,
    "wrong_tenant": MessageKey.FORBIDDEN,
}


def _id(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not _ID.match(value):
        raise BadData(f"{key} must be an id")
    return value


def _page(data: Mapping[str, Any]) -> int:
    value = data.get("page", 0)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_PAGE:
        raise BadData("page must be a small whole number")
    return value


def _decision(data: Mapping[str, Any]) -> str:
    value = data.get("decision")
    if value not in _DECISIONS:
        raise BadData("decision must be Approve, Deny or DontKnow")
    return str(value)


#: C0 controls and DEL, except tab, line feed and carriage return (a reason may have lines).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _justification(data: Mapping[str, Any]) -> str | None:
    value = data.get("justification")
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadData("justification must be text")
    if len(value) > JUSTIFICATION_MAX_CHARS * 4:
        raise BadData("justification is far too long")
    if _CONTROL_CHARACTERS.search(value):
        # Nobody types them, and PostgreSQL's text cannot hold U+0000 at all: refused before
        # anything is written to Graph, never half-recorded.
        raise BadData("justification must not contain control characters")
    return value


class ActionRouter:
    """The verb table and the handlers behind it."""

    def __init__(
        self,
        *,
        store: Store,
        decisions: DecisionService | None,
        clock: Clock,
        sso: SsoConfig | None,
        simulated_sso: Callable[[str], str] | None = None,
        reminders: ReminderScheduler | None = None,
        tenant_id: str = "",
        languages: LanguageDefaults | None = None,
    ) -> None:
        self._store = store
        self._decisions = decisions
        self._clock = clock
        self._sso = sso
        # Demo only (bot.wiring refuses it with real credentials): mint the user's SSO token.
        self._simulated_sso = simulated_sso
        self._reminders = reminders
        self._tenant_id = tenant_id
        self._languages = languages or LanguageDefaults()
        self._verbs: dict[str, Handler] = {
            "refresh": self._refresh,
            "page": self._refresh,
            "open_review": self._refresh,
            "decide": self._decide,
            "decide_bulk": self._decide_bulk,
            "accept_recommendations_preview": self._accept_preview,
            "accept_recommendations": self._accept,
            "snooze": self._snooze,
            "nudge": self._nudge,
        }

    @property
    def verbs(self) -> frozenset[str]:
        return frozenset(self._verbs)

    async def handle(self, context: ActionContext) -> ActionResult:
        handler = self._verbs.get(context.verb)
        if handler is None:
            log.warning("unknown card verb", extra={"verb": context.verb[:40]})
            return ActionResult.error(
                400, "BadRequest", self._words(context).text(S.ERROR_UNSUPPORTED_BUTTON)
            )
        try:
            # A reviewer waits on everything a click does: its Graph calls are high priority,
            # never paced or queued behind a poll (bot.graph.pacing).
            with graph_priority(Priority.HIGH):
                return await handler(context)
        except BadData as exc:
            # What was wrong is for the log; the reader gets a sentence in their language.
            log.warning("malformed card data: %s", exc, extra={"verb": context.verb})
            return ActionResult.error(
                400, "BadRequest", self._words(context).text(S.ERROR_MALFORMED_CARD)
            )

    # -- rendering ------------------------------------------------------------------------------
    def _words(self, context: ActionContext) -> Strings:
        """Strings in the clicking client's language, for answers that are not cards."""
        return Strings(pick_locale([context.locale], default=self._languages.locale))

    async def _viewer(self, context: ActionContext) -> ReviewerContext:
        """Who clicked, in the language and zone their client sent (else their own, as for a
        card sent to them: the store is read only then)."""
        person, reference = None, None
        if normalize_locale(context.locale) is None or normalize_zone(context.time_zone) is None:
            person = (await self._store.get_people(user_oids=[context.actor_oid])).get(
                context.actor_oid
            )
            reference = await self._store.get_conversation_reference(
                tenant_id=context.tenant_id, user_oid=context.actor_oid
            )
        language = turn_language(
            locale=context.locale,
            time_zone=context.time_zone,
            person=person,
            reference=reference,
            defaults=self._languages,
        )
        return ReviewerContext(
            reviewer_oid=context.actor_oid,
            teams_user_id=context.actor_teams_id,
            time_zone=language.time_zone,
            locale=language.locale,
        )

    async def _review_card(
        self,
        context: ActionContext,
        instance_id: str,
        *,
        page: int,
        notice: Notice | None = None,
        instance: InstanceRecord | None = None,
    ) -> ActionResult:
        """The viewer's review card, read now (``instance``: the record this click was just
        authorized against, not read again)."""
        viewer = await self._viewer(context)
        view = await self._review_view(
            viewer, instance_id, page=page, notice=notice, instance=instance
        )
        if view is None:
            return await self._message_card(
                context, MessageKey.NOT_A_REVIEWER, NoticeKind.WARNING, None
            )
        # Opened from the pending list (or an action of a card that was): offer the way back.
        if context.verb == "open_review" or context.data.get(BACK_KEY) == "pending_list":
            view = replace(view, back_to_list=True)
        # Most of its blocks were rendered for the card that was clicked: reused (cards.review).
        card = render_review_card(view, reuse=True)
        return ActionResult.card(card)

    async def _review_view(
        self,
        viewer: ReviewerContext,
        instance_id: str,
        *,
        page: int,
        notice: Notice | None = None,
        instance: InstanceRecord | None = None,
    ) -> ReviewCardView | None:
        """What :func:`~bot.notify.views.review_card_view` gives, in two reads (the instance,
        and the viewer's items through one join) or one when the instance is at hand."""
        if instance is None:
            instance = await self._store.get_instance(instance_id=instance_id)
            if instance is None:
                return None
        items = await self._store.list_reviewer_items(
            instance_id=instance_id, reviewer_oid=viewer.reviewer_oid
        )
        return build_review_card_view(
            instance, items, viewer=viewer, now=self._clock.now(), page=page, notice=notice
        )

    async def _message_card(
        self,
        context: ActionContext,
        key: MessageKey,
        kind: NoticeKind,
        instance_id: str | None,
        *,
        page: int = 0,
        detail: str | None = None,
    ) -> ActionResult:
        view = MessageCardView(
            context=(await self._viewer(context)).card_context(self._clock.now()),
            message=key,
            kind=kind,
            instance_id=instance_id,
            page=page,
            detail=detail,
        )
        return ActionResult.card(render_message_card(view))

    # -- navigation -----------------------------------------------------------------------------
    async def _refresh(self, context: ActionContext) -> ActionResult:
        data = context.data
        card_kind = data.get("card", "review")
        now = self._clock.now()
        if card_kind == "help":
            return ActionResult.card(
                render_help_card(
                    HelpCardView(context=(await self._viewer(context)).card_context(now))
                )
            )
        if card_kind == "pending_list":
            view = await pending_list_view(self._store, viewer=await self._viewer(context), now=now)
            return ActionResult.card(render_pending_list_card(view))
        if card_kind == "escalation":
            return await self._escalation(context, _id(data, "instanceId"), _id(data, "reviewerId"))
        if card_kind not in ("review", "reminder"):
            raise BadData("card must be review, reminder, escalation, pending_list or help")
        return await self._review_card(context, _id(data, "instanceId"), page=_page(data))

    # -- decisions ------------------------------------------------------------------------------
    async def _decide(self, context: ActionContext) -> ActionResult:
        data = context.data
        instance_id = _id(data, "instanceId")
        return await self._record(
            context,
            instance_id,
            {_id(data, "itemId"): _decision(data)},
            _justification(data),
            page=_page(data),
        )

    async def _decide_bulk(self, context: ActionContext) -> ActionResult:
        data = context.data
        instance_id = _id(data, "instanceId")
        decision = _decision(data)
        item_ids = selected_item_ids(data)
        for item_id in item_ids:
            if not _ID.match(item_id):
                raise BadData("a selected item is not an id")
        if not item_ids:
            return await self._message_card(
                context,
                MessageKey.NOTHING_SELECTED,
                NoticeKind.WARNING,
                instance_id,
                page=_page(data),
            )
        return await self._record(
            context,
            instance_id,
            dict.fromkeys(item_ids, decision),
            _justification(data),
            page=_page(data),
        )

    async def _accept_preview(self, context: ActionContext) -> ActionResult:
        data = context.data
        instance_id = _id(data, "instanceId")
        view = await self._review_view(await self._viewer(context), instance_id, page=_page(data))
        if view is None:
            return await self._message_card(
                context, MessageKey.NOT_A_REVIEWER, NoticeKind.WARNING, None
            )
        return ActionResult.card(render_accept_preview_card(view))

    async def _accept(self, context: ActionContext) -> ActionResult:
        data = context.data
        instance_id = _id(data, "instanceId")
        rows = await self._store.list_assignments(
            instance_id=instance_id, reviewer_oid=context.actor_oid
        )
        items = await self._store.list_items(
            instance_id=instance_id, item_ids=[i for _r, _n, i in rows]
        )
        decisions = {
            item.item_id: item.recommendation
            for item in items
            if item.decision == "NotReviewed" and item.recommendation in ("Approve", "Deny")
        }
        if not decisions:
            return await self._message_card(
                context, MessageKey.NOTHING_SELECTED, NoticeKind.INFO, instance_id, page=_page(data)
            )
        return await self._record(
            context, instance_id, decisions, _justification(data), page=_page(data)
        )

    async def _record(
        self,
        context: ActionContext,
        instance_id: str,
        decisions: dict[str, str],
        justification: str | None,
        *,
        page: int,
    ) -> ActionResult:
        if self._decisions is None:
            return await self._message_card(
                context, MessageKey.FORBIDDEN, NoticeKind.ERROR, instance_id, page=page
            )
        checked = await self._decisions.authorize(
            tenant_id=context.tenant_id,
            actor_oid=context.actor_oid,
            instance_id=instance_id,
            item_ids=list(decisions),
            justification=justification,
        )
        if isinstance(checked, Refusal):
            log.info("action refused: %s", checked.reason, extra={"verb": context.verb})
            await self._refusal_audit(context, instance_id, decisions, checked)
            key = _REFUSAL_MESSAGES[checked.reason]
            return await self._message_card(
                context,
                key,
                NoticeKind.WARNING,
                None if checked.reason in ("unknown_review", "wrong_tenant") else instance_id,
                page=page,
                detail=str(JUSTIFICATION_MAX_CHARS)
                if key is MessageKey.JUSTIFICATION_TOO_LONG
                else None,
            )
        instance, _items = checked
        sso_token = context.sso_token
        if sso_token is None and self._simulated_sso is not None:
            sso_token = self._simulated_sso(context.actor_oid)
        try:
            await self._decisions.ensure_token(actor_oid=context.actor_oid, sso_token=sso_token)
        except (NoCachedToken, SsoTokenExpired, SsoTokenInvalid):
            return self._login_request(context)
        except ConsentRequired:
            return self._precondition_failed(self._words(context).text(S.ERROR_CONSENT_NEEDED))
        except InteractionRequired:
            return await self._sign_in_card(context, SignInReason.MFA_REQUIRED, instance_id, page)
        except TokenAcquisitionError as exc:
            log.warning("token acquisition failed: %s", type(exc).__name__)
            return await self._message_card(
                context, MessageKey.GENERIC_ERROR, NoticeKind.ERROR, instance_id, page=page
            )
        outcome = await self._decisions.record(
            DecisionRequest(
                tenant_id=context.tenant_id,
                actor_oid=context.actor_oid,
                actor_name=context.actor_name,
                instance_id=instance.instance_id,
                decisions=decisions,
                justification=justification,
                idempotency=context.activity_id,
                sso_token=sso_token,
            ),
            instance,
        )
        if outcome.status == "failed" and outcome.error in ("bad_request", "not_found"):
            # Graph refused the write itself: the review may have ended (a recurring review
            # rolled over to its next instance) since the last poll. Poll this review now, so
            # its cards say so within a tick instead of at the next full poll.
            await request_targeted_poll(
                self._store,
                clock=self._clock,
                definition_id=instance.definition_id,
                instance_id=instance.instance_id,
            )
        return await self._review_card(
            context, instance_id, page=page, notice=self._notice(outcome), instance=instance
        )

    def _notice(self, outcome: DecisionOutcome) -> Notice | None:
        if outcome.status == "saving":
            return Notice(kind=NoticeKind.INFO, message=MessageKey.SAVING)
        if outcome.status == "failed":
            key = (
                MessageKey.FORBIDDEN if outcome.error == "forbidden" else MessageKey.DECISION_FAILED
            )
            return Notice(kind=NoticeKind.ERROR, message=key)
        return None

    async def _refusal_audit(
        self,
        context: ActionContext,
        instance_id: str,
        decisions: Mapping[str, str],
        refusal: Refusal,
    ) -> None:
        from bot.store import AuditEvent

        await self._store.append_audit(
            event=AuditEvent(
                action="decision_refused",
                actor=context.actor_oid,
                instance_id=instance_id,
                result=refusal.reason,
                detail={"items": sorted(decisions)[:50], "verb": context.verb},
            )
        )

    # -- reminders ------------------------------------------------------------------------------
    async def snooze(
        self, context: ActionContext, instance_id: str, choice_text: object
    ) -> datetime | Refusal:
        """Snooze the reminders of one review for the actor; the end of the snooze, or why not."""
        if self._reminders is None:
            return Refusal("unknown_review")
        try:
            choice = parse_snooze("tomorrow" if choice_text == "tomorrow_0900" else choice_text)
        except SnoozeError as exc:
            raise BadData(str(exc)) from None
        instance = await self._store.get_instance(instance_id=instance_id)
        if instance is None or instance.end_at is None:
            return Refusal("unknown_review")
        rows = await self._store.list_assignments(
            instance_id=instance_id, reviewer_oid=context.actor_oid
        )
        if not rows:
            return Refusal("not_a_reviewer")
        now = self._clock.now()
        if instance.status != "InProgress" or instance.end_at <= now:
            return Refusal("review_ended")
        hours = await self._reminders.hours_for(context.actor_oid)
        result = snooze_until(
            choice,
            now=now,
            hours=hours,
            policy=self._reminders.schedule.policy_for(
                instance.definition_id, instance.display_name
            ),
            instance_start=instance.start_at or now,
            instance_end=instance.end_at,
            assigned_at=await self._reminders.assigned_at(instance, context.actor_oid),
        )
        await self._store.set_snooze(
            reviewer_oid=context.actor_oid, instance_id=instance_id, until=result.until
        )
        await self._store.append_audit(
            event=AuditEvent(
                action="snooze",
                actor=context.actor_oid,
                instance_id=instance_id,
                detail={"until": result.until.isoformat(), "capped": result.capped},
            )
        )
        return result.until

    async def _snooze(self, context: ActionContext) -> ActionResult:
        instance_id = _id(context.data, "instanceId")
        outcome = await self.snooze(context, instance_id, context.data.get("until"))
        if isinstance(outcome, Refusal):
            return await self._message_card(
                context, _REFUSAL_MESSAGES[outcome.reason], NoticeKind.WARNING, None
            )
        view = MessageCardView(
            context=(await self._viewer(context)).card_context(self._clock.now()),
            message=MessageKey.SNOOZED,
            kind=NoticeKind.SUCCESS,
            at=outcome,
            instance_id=instance_id,
        )
        return ActionResult.card(render_message_card(view))

    async def _escalation(
        self,
        context: ActionContext,
        instance_id: str,
        reviewer: str,
        *,
        nudged_at: datetime | None = None,
    ) -> ActionResult:
        """The manager's escalation card, current; only for whoever received it."""
        recipients = await self._store.escalation_recipients(
            instance_id=instance_id, reviewer_oid=reviewer
        )
        if context.actor_oid not in recipients:
            return await self._message_card(context, MessageKey.FORBIDDEN, NoticeKind.WARNING, None)
        view = await escalation_view(
            self._store,
            viewer=await self._viewer(context),
            instance_id=instance_id,
            subject_oid=reviewer,
            now=self._clock.now(),
            nudged_at=nudged_at,
        )
        if view is None:
            return await self._message_card(
                context, MessageKey.NO_PENDING_REVIEWS, NoticeKind.INFO, None
            )
        return ActionResult.card(render_escalation_card(view))

    async def _nudge(self, context: ActionContext) -> ActionResult:
        """A manager asks for a reminder to their report now (at most once a day per review)."""
        instance_id = _id(context.data, "instanceId")
        reviewer = _id(context.data, "reviewerId")
        recipients = await self._store.escalation_recipients(
            instance_id=instance_id, reviewer_oid=reviewer
        )
        if context.actor_oid not in recipients:
            # Not a decision, and not "not a reviewer": this person got no escalation about
            # this reviewer, which is what the audit and the answer say.
            await self._store.append_audit(
                event=AuditEvent(
                    action="nudge_refused",
                    actor=context.actor_oid,
                    instance_id=instance_id,
                    result="not_escalation_recipient",
                    detail={"reviewer": reviewer},
                )
            )
            return ActionResult.message(self._words(context).text(S.MSG_NUDGE_NOT_RECIPIENT))
        now = self._clock.now()
        day = now.date().isoformat()
        # Like any reminder a person asks for, a nudge reaches the reviewer in their working
        # hours and after their snooze (bot.notify.reminders settles the request). The day's key,
        # the request and its audit line are one transaction: a failed click can be clicked again.
        request = reminder_request(
            tenant_id=self._tenant_id or context.tenant_id,
            reviewer_oid=reviewer,
            instance_id=instance_id,
            key=f"nudge-request|{reviewer}|{instance_id}|{day}",
            card_key=f"nudge|{reviewer}|{instance_id}|{day}",
            reason="nudge",
            by=context.actor_oid,
            requested_at=now,
        )
        line = AuditEvent(
            action="nudge",
            actor=context.actor_oid,
            instance_id=instance_id,
            detail={"reviewer": reviewer, "mode": "working_hours"},
        )
        taken = await self._store.enqueue_once(
            work=[OnceWork(once_key=nudge_key(reviewer, instance_id), messages=(request,))],
            ttl_s=NUDGE_INTERVAL.total_seconds(),
            audit=lambda taken: [line] if taken else [],
        )
        if taken and self._reminders is not None:
            self._reminders.wake()
        # The card comes back current, with the nudge noted in place of the button.
        return await self._escalation(context, instance_id, reviewer, nudged_at=now)

    # -- sign-in answers ------------------------------------------------------------------------
    def _login_request(self, context: ActionContext) -> ActionResult:
        words = self._words(context)
        if self._sso is None:
            return ActionResult.error(401, "Unauthorized", words.text(S.ERROR_SSO_NOT_CONFIGURED))
        return ActionResult(
            401,
            LOGIN_TYPE,
            {
                "text": words.text(S.LOGIN_PROMPT),
                "connectionName": self._sso.connection_name,
                "tokenExchangeResource": {
                    "id": str(uuid.uuid4()),
                    "uri": self._sso.app_id_uri,
                    "providerId": "",
                },
                "buttons": [
                    {
                        "type": "signin",
                        "title": words.text(S.SIGNIN_BUTTON),
                        "text": words.text(S.SIGNIN_BUTTON),
                        "value": self._sso.sign_in_url(),
                    }
                ],
            },
        )

    def _precondition_failed(self, message: str) -> ActionResult:
        return ActionResult(412, PRECONDITION_TYPE, {"code": "412", "message": message})

    async def _sign_in_card(
        self, context: ActionContext, reason: SignInReason, instance_id: str, page: int
    ) -> ActionResult:
        url = (
            self._sso.sign_in_url(prompt="login")
            if self._sso
            else "https://myaccess.microsoft.com/"
        )
        view = SignInCardView(
            context=(await self._viewer(context)).card_context(self._clock.now()),
            reason=reason,
            sign_in_url=url,
            instance_id=instance_id,
            page=page,
        )
        return ActionResult.card(render_signin_card(view))
