"""Demo mode: the emulated Microsoft cloud in-process, the bot wired to it, nothing from Azure.

``python app.py`` without ``MicrosoftAppId`` lands here. The emulator (Graph, Entra ID, Bot
Connector with the ``demo`` tenant) runs on a thread of its own, the bot talks to it through the
real msal, botbuilder and httpx code paths, and the store is a real SQLite file reset at each start
(the emulated tenant is new every time, so yesterday's chats and cards would point nowhere).

The bot and the emulator share one :class:`~bot.clock.DemoClock`: ``python app.py demo clock +3d``
(``POST /admin/demo/clock``) moves both forward, so reminders, snoozes and escalations that come due
days into a review can be watched in minutes.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from bot.clock import DemoClock
from bot.graph import GraphSettings
from bot.settings import Settings
from bot.wiring import MicrosoftSide
from emulator.server import EmulatorCloud, EmulatorConfig
from emulator.threaded import EmulatorThread

__all__ = ["DemoCloud", "start_demo_cloud"]

log = logging.getLogger(__name__)

DEMO_DATABASE = "data/demo.db"


@dataclass
class DemoCloud:
    emulator: EmulatorThread
    cloud: EmulatorCloud
    side: MicrosoftSide
    settings: Settings
    clock: DemoClock

    def stop(self) -> None:
        self.emulator.stop()


def start_demo_cloud(
    settings: Settings, *, bot_endpoint: str, clock: DemoClock | None = None
) -> DemoCloud:
    """Start the emulator with the demo tenant and describe it as the bot's Microsoft side.

    ``clock`` (default: a :class:`DemoClock` at the current time) is the emulator's; pass the
    returned ``DemoCloud.clock`` to ``create_app`` so the bot keeps the same time.
    """
    if not settings.demo_mode:
        raise RuntimeError("the demo cloud is only for runs without MicrosoftAppId")
    clock = clock or DemoClock()
    emulator = EmulatorThread(
        EmulatorConfig(
            seed="demo", anonymous_connector=True, bot_endpoint=bot_endpoint, clock=clock
        )
    )
    cloud = emulator.start()
    database_url = settings.database_url
    if database_url == Settings().database_url:
        # The default file belongs to real runs; the demo keeps its own and starts it afresh.
        database_url = f"sqlite:///{DEMO_DATABASE}"
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
    return DemoCloud(
        emulator=emulator,
        cloud=cloud,
        side=side,
        settings=replace(settings, database_url=database_url),
        clock=clock,
    )


def banner(demo: DemoCloud, *, port: int) -> str:
    cloud = demo.cloud
    users = sorted(cloud.tenant.users.values(), key=lambda u: u.display_name)[:6]
    people = ", ".join(f"{u.display_name}" for u in users)
    return (
        "\n"
        "Access Review Bot — demo mode (no Azure needed)\n"
        f"  bot endpoint    http://127.0.0.1:{port}/api/messages (anonymous: no MicrosoftAppId)\n"
        f"  status page     http://127.0.0.1:{port}/\n"
        f"  emulated Graph  {cloud.graph_url}   tenant {cloud.tenant_id} (Contoso)\n"
        f"  emulated Teams  {cloud.connector_url}\n"
        f"  demo people     {people}, …\n"
        "Next: chat with the bot as Alex Wilber in Microsoft 365 Agents Playground:\n"
        f"  npx @microsoft/m365agentsplayground -e http://127.0.0.1:{port}/api/messages -c msteams\n"
        "  (run it in this folder: .m365agentsplayground.yml makes you Alex), then type 'pending'.\n"
        "Watch reminders and escalations come due: move the demo's clock forward with\n"
        "  python app.py demo clock +1d      (README: 'A tour of reminders with the demo clock')\n"
    )
