"""Demo mode: the emulated Microsoft cloud in-process, the bot wired to it, nothing from Azure.

``python app.py`` without ``MicrosoftAppId`` lands here. The emulator (Graph, Entra ID, Bot
Connector with the ``demo`` tenant) runs on a thread of its own, the bot talks to it through the
real msal, botbuilder and httpx code paths, and the store is a real SQLite file reset at each start
(the emulated tenant is new every time, so yesterday's chats and cards would point nowhere).

While it runs, the demo writes :data:`DEMO_STATE_FILE`: where its emulated cloud is (URLs, CA,
tenant, the bot app's credentials there) and a refresh token per demo person, so that
``python -m emulator token --app|--user NAME`` in another terminal can get a token for the
emulated Graph and read what the bot wrote (``reviewedBy`` of a decision). All of it is the
emulator's, made up for this run; the file is readable by its owner only and removed at exit.

The bot and the emulator share one :class:`~bot.clock.DemoClock`: ``python app.py demo clock +3d``
(``POST /admin/demo/clock``) moves both forward, so reminders, snoozes and escalations that come due
days into a review can be watched in minutes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from bot.clock import DemoClock
from bot.graph import GraphSettings
from bot.settings import Settings
from bot.wiring import MicrosoftSide
from emulator.server import BOT_DELEGATED_PERMISSIONS, EmulatorCloud, EmulatorConfig
from emulator.threaded import EmulatorThread

__all__ = [
    "DEMO_DATABASE",
    "DEMO_STATE_FILE",
    "DemoCloud",
    "banner",
    "demo_database_url",
    "next_steps",
    "playground_command",
    "read_state",
    "start_demo_cloud",
    "wait_until_settled",
]

log = logging.getLogger(__name__)

DEMO_DATABASE = "data/demo.db"
DEMO_STATE_FILE = "data/demo-state.json"

GRAPH_RESOURCE = "https://graph.microsoft.com"


def demo_database_url(settings: Settings) -> str:
    """The store the demo uses for ``settings``: ``DATABASE_URL`` when it is set to something
    other than the default, else :data:`DEMO_DATABASE` (the default file belongs to real runs).

    The command line calls this too, so ``python app.py audit …`` in demo mode reads the store
    the running demo writes.
    """
    if settings.database_url == Settings().database_url:
        return f"sqlite:///{DEMO_DATABASE}"
    return settings.database_url


@dataclass
class DemoCloud:
    emulator: EmulatorThread
    cloud: EmulatorCloud
    side: MicrosoftSide
    settings: Settings
    clock: DemoClock
    state_file: Path | None = None

    def stop(self) -> None:
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)
        self.emulator.stop()


def start_demo_cloud(
    settings: Settings,
    *,
    bot_endpoint: str,
    state_file: str | Path | None = None,
    clock: DemoClock | None = None,
) -> DemoCloud:
    """Start the emulator with the demo tenant and describe it as the bot's Microsoft side.

    With ``state_file`` (the command line passes :data:`DEMO_STATE_FILE`) the emulator's
    whereabouts and the demo people's refresh tokens are written there for
    ``python -m emulator token``. ``clock`` (default: a :class:`DemoClock` at the current time)
    is the emulator's; pass the returned ``DemoCloud.clock`` to ``create_app`` so the bot keeps
    the same time.
    """
    if not settings.demo_mode:
        raise RuntimeError("the demo cloud is only for runs without MicrosoftAppId")
    clock = clock or DemoClock()
    emulator = EmulatorThread(
        EmulatorConfig(
            seed="demo",
            anonymous_connector=True,
            bot_endpoint=bot_endpoint,
            profile="realistic",
            clock=clock,
        )
    )
    cloud = emulator.start()
    database_url = demo_database_url(settings)
    if database_url == f"sqlite:///{DEMO_DATABASE}":
        # The demo's own file starts afresh with the new emulated tenant. Only the server does
        # this; the command line reads the file as the server left it.
        for suffix in ("", "-wal", "-shm"):
            Path(DEMO_DATABASE + suffix).unlink(missing_ok=True)
    identity = cloud.identity
    bot_app_id = cloud.bot_app_id

    def simulated_sso(user_oid: str) -> str:
        # What Teams would hand over after SSO; Agents Playground and the Bot Framework
        # Emulator do no SSO, so the demo mints it. Refused with real credentials (bot.wiring).
        return identity.issue_sso_token(user_oid=user_oid, app_id=bot_app_id)

    side = MicrosoftSide(
        graph=GraphSettings(
            tenant_id=cloud.tenant_id,
            client_id=bot_app_id,
            client_secret=cloud.bot_app_secret,
            graph_base_url=cloud.graph_url,
            authority_host=cloud.login_url,
            ca_bundle_path=cloud.ca_pem_path,
            token_cache_keys=(base64.urlsafe_b64encode(os.urandom(32)).decode(),),
        ),
        tenant_id=cloud.tenant_id,
        bot_app_id=bot_app_id,
        service_url=cloud.connector_url,
        connector_auth=False,
        simulated_sso=simulated_sso,
        ca_bundle=cloud.ca_pem_path,
    )
    demo = DemoCloud(
        emulator=emulator,
        cloud=cloud,
        side=side,
        settings=replace(settings, database_url=database_url),
        clock=clock,
    )
    if state_file is not None:
        try:
            demo.state_file = _write_state(demo, Path(state_file), bot_endpoint=bot_endpoint)
        except BaseException:
            demo.stop()
            raise
    return demo


# -- the state file ---------------------------------------------------------------------------


async def _refresh_tokens(cloud: EmulatorCloud) -> dict[str, str]:
    """One refresh token per demo person, through the real on-behalf-of grant.

    The person's Teams SSO token is minted in-process (as the demo's simulated SSO does), then
    exchanged at the emulated token endpoint with ``offline_access``; the refresh token lets
    another process get that person's Graph token later with the ``refresh_token`` grant.
    """
    context = ssl.create_default_context(cafile=cloud.ca_pem_path)
    scope = " ".join(
        [f"{GRAPH_RESOURCE}/{name}" for name in sorted(BOT_DELEGATED_PERMISSIONS)]
        + ["offline_access"]
    )
    tokens: dict[str, str] = {}
    async with httpx.AsyncClient(verify=context, trust_env=False, timeout=10.0) as http:
        for user in cloud.tenant.users.values():
            if not user.account_enabled or user.user_type != "Member":
                continue
            assertion = cloud.identity.issue_sso_token(user_oid=user.id, app_id=cloud.bot_app_id)
            response = await http.post(
                f"{cloud.login_url}/{cloud.tenant_id}/oauth2/v2.0/token",
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "requested_token_use": "on_behalf_of",
                    "client_id": cloud.bot_app_id,
                    "client_secret": cloud.bot_app_secret,
                    "assertion": assertion,
                    "scope": scope,
                },
            )
            body = response.json() if response.status_code == 200 else {}
            if isinstance(body.get("refresh_token"), str):
                tokens[user.id] = body["refresh_token"]
            else:
                # Not fatal: `token --user` will say this person has no token.
                log.debug("no demo token for %s (HTTP %s)", user.id, response.status_code)
    return tokens


def _write_state(demo: DemoCloud, path: Path, *, bot_endpoint: str) -> Path:
    cloud = demo.cloud
    refresh = asyncio.run(_refresh_tokens(cloud))
    people = [
        {
            "id": user.id,
            "name": user.display_name,
            "userPrincipalName": user.user_principal_name,
            "refresh_token": refresh.get(user.id),
        }
        for user in sorted(cloud.tenant.users.values(), key=lambda u: u.display_name)
    ]
    state: dict[str, Any] = {
        "pid": os.getpid(),
        "started_at": time.time(),
        "bot_endpoint": bot_endpoint,
        "database_url": demo.settings.database_url,
        "graph_url": cloud.graph_url,
        "login_url": cloud.login_url,
        "connector_url": cloud.connector_url,
        "ca_pem_path": cloud.ca_pem_path,
        "tenant_id": cloud.tenant_id,
        "bot_app_id": cloud.bot_app_id,
        "bot_app_secret": cloud.bot_app_secret,
        "people": people,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    # Owner-only from the first byte: it holds the emulator's secret and refresh tokens.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    temporary.replace(path)
    return path


def read_state(path: str | Path = DEMO_STATE_FILE) -> Mapping[str, Any] | None:
    """The running demo's state file, or None when there is none."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


# -- what the terminal shows ------------------------------------------------------------------


def banner(demo: DemoCloud, *, host: str, port: int) -> str:
    """Where everything is: printed as soon as the demo serves."""
    cloud = demo.cloud
    users = sorted(cloud.tenant.users.values(), key=lambda u: u.display_name)[:6]
    people = ", ".join(f"{u.display_name}" for u in users)
    shown_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104
    return (
        "\n"
        "Access Review Bot — demo mode (no Azure needed)\n"
        f"  bot endpoint    http://{shown_host}:{port}/api/messages (anonymous: no MicrosoftAppId)"
        f"{'' if host == '127.0.0.1' else f'  listening on {host}'}\n"
        f"  status page     http://{shown_host}:{port}/\n"
        f"  emulated Graph  {cloud.graph_url}   tenant {cloud.tenant_id} (Contoso)\n"
        f"  emulated Teams  {cloud.connector_url}\n"
        f"  demo people     {people}, …\n"
        f"  store           {demo.settings.database_url}\n"
    )


def playground_command(port: int, host: str = "127.0.0.1") -> str:
    """The command that starts the pinned Agents Playground against the bot on ``host:port``."""
    if port == DEFAULT_PORT and host == "127.0.0.1":
        return "npm run playground"
    return (
        f"npx --no agentsplayground -e http://{host}:{port}/api/messages -c msteams"
        " --disable-telemetry"
    )


DEFAULT_PORT = 3978


def next_steps(*, port: int, reviews: int, cards: int, host: str = "127.0.0.1") -> str:
    """The "Next:" block, printed once the first discovery and the first cards are done."""
    return (
        f"\nReady: {reviews} reviews in progress found, {cards} review cards sent.\n"
        "Next:\n"
        "  1. Chat with the bot as Alex Wilber: in another terminal, in this folder (npm ci once;\n"
        "     .m365agentsplayground.yml makes you Alex), run\n"
        f"       {playground_command(port, host)}\n"
        "     open the page it prints, type 'pending', open a review and click Approve.\n"
        f"  2. Watch it on the status page http://{host}:{port}/ or list the reviews:\n"
        "       .venv/bin/python app.py reviews\n"
        "  3. The review's audit trail (its instance id is in that list):\n"
        "       .venv/bin/python app.py audit export --instance ID\n"
        "  4. The decision in the emulated Graph, reviewedBy included (ids from step 2):\n"
        "       .venv/bin/python -m emulator token --app --curl DEFINITION-ID INSTANCE-ID | sh\n"
        "  5. Watch reminders and escalations come due (README: 'A tour of reminders with the\n"
        "     demo clock'): move the demo's clock forward a day at a time with\n"
        "       .venv/bin/python app.py demo clock +1d\n"
    )


async def wait_until_settled(
    *,
    cycles_run: Callable[[], int],
    queued: Callable[[], Awaitable[int]],
    timeout_s: float = 60.0,
    every_s: float = 0.2,
) -> bool:
    """Wait until the first discovery has run and the outbox is empty (the first cards are out).

    False when ``timeout_s`` passed first: the caller prints its block anyway, since a slow
    start must not leave the user without the next step.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cycles_run() >= 1 and await queued() == 0:
            return True
        await asyncio.sleep(every_s)
    return False
