"""Typed keys for everything the aiohttp application shares between handlers."""

from __future__ import annotations

import httpx
from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.clock import Clock
from bot.graph import (
    AccessReviewsApi,
    AppTokenProvider,
    DirectoryApi,
    GraphClient,
    OboTokenProvider,
)
from bot.http import AiohttpTransport
from bot.notify.delivery import OutboxWorker
from bot.notify.language import MailboxLanguages
from bot.notify.notifier import ReviewNotifier
from bot.notify.ratelimit import RateLimiter
from bot.notify.reminders import ReminderScheduler
from bot.reviews import Discovery, Poller
from bot.reviews.decisions import DecisionService, DecisionWorker
from bot.settings import Settings
from bot.store import SqlStore
from bot.teams.actions import ActionRouter
from bot.teams.adapter import BotAdapter
from bot.teams.bot import ReviewBot
from bot.teams.connector import ConnectorClient
from bot.web.metrics import Metrics
from bot.wiring import MicrosoftSide

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", SqlStore)
ADAPTER = web.AppKey("adapter", BotAdapter)
BOT = web.AppKey("bot", ReviewBot)
HTTP = web.AppKey("http", httpx.AsyncClient)
# The aiohttp pool under HTTP; the connector client sends through it directly.
HTTP_TRANSPORT = web.AppKey("http_transport", AiohttpTransport)
APP_TOKENS = web.AppKey("app_tokens", AppTokenProvider)
OBO_TOKENS = web.AppKey("obo_tokens", OboTokenProvider)
GRAPH = web.AppKey("graph", GraphClient)
REVIEWS_API = web.AppKey("reviews_api", AccessReviewsApi)
DIRECTORY_API = web.AppKey("directory_api", DirectoryApi)
DISCOVERY = web.AppKey("discovery", Discovery)
POLLER = web.AppKey("poller", Poller)
CONNECTOR = web.AppKey("connector", ConnectorClient)
LIMITER = web.AppKey("limiter", RateLimiter)
OUTBOX = web.AppKey("outbox", OutboxWorker)
NOTIFIER = web.AppKey("notifier", ReviewNotifier)
DECISIONS = web.AppKey("decisions", DecisionService)
DECISION_WORKER = web.AppKey("decision_worker", DecisionWorker)
ACTIONS = web.AppKey("actions", ActionRouter)
MICROSOFT = web.AppKey("microsoft", MicrosoftSide)
REMINDERS = web.AppKey("reminders", ReminderScheduler)
MAILBOX_LANGUAGES = web.AppKey("mailbox_languages", MailboxLanguages)
