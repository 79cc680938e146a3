"""Typed keys for everything the aiohttp application shares between handlers."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from bot.clock import Clock
from bot.settings import Settings
from bot.store import SqlStore
from bot.teams import BotAdapter, ReviewBot
from bot.web.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", Metrics)
STORE = web.AppKey("store", SqlStore)
ADAPTER = web.AppKey("adapter", BotAdapter)
BOT = web.AppKey("bot", ReviewBot)
