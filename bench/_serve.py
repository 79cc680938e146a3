"""The bot, or the framework's floor, served in processes of their own for ``bench decide``.

``python -m bench._serve '<config JSON>'`` serves on 127.0.0.1 with :func:`bot.workers.serve_workers`
(the machinery of ``WORKERS=N``: N processes on one port with ``SO_REUSEPORT``), so that the
benchmark reads their CPU time apart from its own, the emulator's and the Teams client's. It
prints one JSON line ``{"port": P}``, then ``{"worker": i, "pid": p}`` as each worker serves.
SIGTERM ends it (the workers too).

Config: ``app`` (``"bot"`` or ``"floor"``), ``workers``, ``info`` (the cloud's description),
``data_dir``, ``database_url`` (the store the set-up filled), ``token_cache_key`` (the one the set-up's
discovery used, so that the app token it cached is read, not fetched again).

- ``bot``: ``create_app(settings, workers=False)`` in every worker — the real application, without
  its background loops (the benchmark measures clicks; discovery ran before, in the benchmark's
  own process, and the first cards it queued are not sent).
- ``floor``: the least a signed ``adaptiveCard/action`` can cost here: botbuilder's
  ``CloudAdapter`` built by :func:`bot.teams.adapter.create_adapter` from the same settings (the
  same JWT validation against the same channel OpenID metadata), its stock ``process`` (parse,
  authenticate, turn), and a bot whose invoke handler returns a fixed small card.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.schema import AdaptiveCardInvokeResponse

from bench._common import bot_settings
from bot.settings import Settings
from bot.teams.adapter import create_adapter
from bot.workers import serve_workers

CARD_TYPE = "application/vnd.microsoft.card.adaptive"

#: The floor's answer: a small card, as an ``adaptiveCard/action`` invoke response carries it.
FLOOR_ANSWER: dict[str, Any] = {
    "statusCode": 200,
    "type": CARD_TYPE,
    "value": {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": "Saved.", "wrap": True}],
    },
}


class FloorBot(ActivityHandler):
    """Answers every invoke with :data:`FLOOR_ANSWER`; nothing else."""

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        # botbuilder serializes the body as an msrest model, as for any adaptive-card invoke.
        body = AdaptiveCardInvokeResponse(
            status_code=FLOOR_ANSWER["statusCode"],
            type=FLOOR_ANSWER["type"],
            value=FLOOR_ANSWER["value"],
        )
        return InvokeResponse(status=200, body=body)


def floor_app(settings: Settings) -> web.Application:
    adapter = create_adapter(settings)
    bot = FloorBot()

    async def messages(request: web.Request) -> web.StreamResponse:
        response = await adapter.process(request, bot)
        return response if response is not None else web.Response(status=201)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "pid": os.getpid()})

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    return app


def _write(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = json.loads(sys.argv[1])
    settings = bot_settings(
        config["info"],
        Path(config["data_dir"]),
        token_cache_key=config["token_cache_key"],
        database_url=config["database_url"],
    )
    if config["app"] == "bot":
        from app import create_app

        def make_app(_index: int) -> web.Application:
            return create_app(settings, workers=False)
    else:

        def make_app(_index: int) -> web.Application:
            return floor_app(settings)

    sys.exit(
        serve_workers(
            count=int(config.get("workers", 1)),
            host="127.0.0.1",
            port=0,
            make_app=make_app,
            on_listening=lambda port: _write({"port": port}),
            on_ready=lambda index: _write({"worker": index, "pid": os.getpid()}),
        )
    )


if __name__ == "__main__":
    main()
