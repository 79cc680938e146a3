"""With real credentials: signed activities from the emulated Teams channel, replies through MSAL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme

from emulator.seeds import demo_id
from emulator.teams_client import Forgery
from tests.bot_harness import BotOnEmulator, bot_on_emulator

ALEX = demo_id("user", "johanna")


@pytest.fixture(autouse=True)
def hostile_ca_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """CI sets REQUESTS_CA_BUNDLE: point it at a CA that does not know the emulator."""
    other = trustme.CA()
    path = tmp_path / "unrelated-ca.pem"
    other.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(path))
    yield


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        yield running


async def test_a_signed_help_message_is_answered_through_the_connector(
    harness: BotOnEmulator,
) -> None:
    await harness.emulator.arun(
        harness.cloud.connector.note_app_installed,
        user_oid=ALEX,
        user_name="Johanna",
        installation_id="inst-1",
    )
    await harness.eventually(lambda: len(harness.cloud.connector.deliveries()) >= 1)
    before = len(harness.cloud.connector.messages_to(ALEX))
    response = await harness.teams.message(ALEX, "help")
    assert response.status in (200, 201)
    await harness.eventually(lambda: len(harness.cloud.connector.messages_to(ALEX)) > before)
    reply = harness.cloud.connector.messages_to(ALEX)[-1]
    assert "pending" in reply.activity["text"]


@pytest.mark.parametrize(
    "forgery",
    [Forgery.WRONG_AUDIENCE, Forgery.WRONG_SERVICE_URL, Forgery.EXPIRED, Forgery.BAD_SIGNATURE],
)
async def test_forged_channel_tokens_are_refused(harness: BotOnEmulator, forgery: Forgery) -> None:
    response = await harness.teams.forged(forgery).message(ALEX, "help")
    assert response.status == 401


async def test_unsigned_activities_are_refused_with_credentials(harness: BotOnEmulator) -> None:
    response = await harness.teams.without_auth().message(ALEX, "help")
    assert response.status == 401
