"""POST /api/notifications: a timestamped signature, a 5-minute window, and no replay — also
after a restart and on another replica — with a clear 4xx for callers of the old scheme."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.clock import Clock, ManualClock
from bot.settings import Settings
from bot.web.keys import STORE
from bot.web.notifications import REPLAY_WINDOW_S, signature_for, signed_headers

SECRET = "a-long-shared-secret"
BODY = json.dumps({"definitionId": "def-1"}).encode()
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, notifications_secret=SECRET, port=0)


async def _client(settings: Settings, clock: Clock | None = None) -> TestClient:
    client = TestClient(TestServer(create_app(settings, clock=clock), host="127.0.0.1", port=0))
    await client.start_server()
    return client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def client(tmp_path: Path, clock: ManualClock) -> AsyncIterator[TestClient]:
    client = await _client(_settings(f"sqlite:///{tmp_path / 'bot.db'}"), clock)
    yield client
    await client.close()


async def _post(client: TestClient, headers: dict[str, str], body: bytes = BODY) -> tuple[int, str]:
    response = await client.post("/api/notifications", data=body, headers=headers)
    return response.status, (await response.json())["error" if response.status >= 400 else "queued"]


async def _queued_polls(client: TestClient) -> int:
    return await client.app[STORE].count_outbox(status="pending")


async def test_a_fresh_signed_request_is_accepted_once(
    client: TestClient, clock: ManualClock
) -> None:
    headers = signed_headers(SECRET, BODY, now_s=clock.now().timestamp())
    assert await _post(client, headers) == (202, True)
    status, reason = await _post(client, headers)
    assert status == 409 and "already used" in reason
    # Later within the window, and from another second: still refused, still one poll queued.
    clock.advance(timedelta(seconds=REPLAY_WINDOW_S - 1))
    assert (await _post(client, headers))[0] == 409
    assert await _queued_polls(client) == 1
    # The same request signed anew is a new request.
    assert (await _post(client, signed_headers(SECRET, BODY, now_s=clock.now().timestamp())))[
        0
    ] == 202


@pytest.mark.parametrize("offset_s", [-REPLAY_WINDOW_S - 1, REPLAY_WINDOW_S + 1, -86400 * 365])
async def test_a_timestamp_outside_the_window_is_refused(
    client: TestClient, clock: ManualClock, offset_s: int
) -> None:
    headers = signed_headers(SECRET, BODY, now_s=clock.now().timestamp() + offset_s)
    status, reason = await _post(client, headers)
    assert status == 401 and "X-Timestamp is more than 300 s" in reason
    assert await _queued_polls(client) == 0


@pytest.mark.parametrize("offset_s", [-REPLAY_WINDOW_S + 1, REPLAY_WINDOW_S - 1])
async def test_a_timestamp_inside_the_window_is_accepted(
    client: TestClient, clock: ManualClock, offset_s: int
) -> None:
    headers = signed_headers(SECRET, BODY, now_s=clock.now().timestamp() + offset_s)
    assert (await _post(client, headers))[0] == 202


async def test_old_style_and_wrong_signatures_are_told_what_to_send(
    client: TestClient, clock: ManualClock
) -> None:
    now_s = int(clock.now().timestamp())
    json_only = {"Content-Type": "application/json"}
    # The former scheme: HMAC of the body alone, no timestamp.
    old = hmac_of_body_alone(BODY)
    status, reason = await _post(client, {**json_only, "X-Signature": old})
    assert status == 401 and "missing X-Timestamp" in reason and "HMAC-SHA256" in reason
    # clientState in the body (the secret itself), retired.
    with_state = json.dumps({"definitionId": "def-1", "clientState": SECRET}).encode()
    status, reason = await _post(client, json_only, with_state)
    assert status == 401 and "clientState is no longer accepted" in reason
    assert "X-Timestamp" in reason
    # Nothing at all.
    status, reason = await _post(client, json_only)
    assert status == 401 and "missing X-Signature" in reason
    # A signature for another timestamp, another body, or with another secret.
    for headers, body in [
        (
            {
                **json_only,
                "X-Timestamp": str(now_s),
                "X-Signature": signature_for(SECRET, BODY, now_s - 1),
            },
            BODY,
        ),
        (signed_headers(SECRET, BODY, now_s=now_s), BODY + b" "),
        (signed_headers("another-secret", BODY, now_s=now_s), BODY),
    ]:
        status, reason = await _post(client, headers, body)
        assert status == 401 and "wrong X-Signature" in reason
    # Odd header values: a clear 401, never a 500.
    for timestamp, signature in [
        ("soon", signature_for(SECRET, BODY, now_s)),
        ("1e9", signature_for(SECRET, BODY, now_s)),
        (str(now_s), "sha256=" + "é" * 64),
        (str(now_s), "sha1=" + "0" * 40),
        (str(now_s), signature_for(SECRET, BODY, now_s) + "00"),
    ]:
        headers = {**json_only, "X-Timestamp": timestamp, "X-Signature": signature}
        assert (await _post(client, headers))[0] == 401
    assert await _queued_polls(client) == 0


def hmac_of_body_alone(body: bytes) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


async def test_a_signed_request_with_a_bad_body_is_a_400_and_is_used_up(
    client: TestClient, clock: ManualClock
) -> None:
    now_s = clock.now().timestamp()
    for body, reason in [
        (b"[" * 5000, "nested deeper"),
        (b"not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"definitionId": "a\\n"}', "must be an id"),
    ]:
        headers = signed_headers(SECRET, body, now_s=now_s)
        status, error = await _post(client, headers, body)
        assert status == 400 and reason in error
        assert (await _post(client, headers, body))[0] == 409


async def test_a_replay_is_refused_after_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    settings = _settings(f"sqlite:///{tmp_path / 'bot.db'}")
    headers = signed_headers(SECRET, BODY, now_s=clock.now().timestamp())
    first = await _client(settings, clock)
    try:
        assert (await _post(first, headers))[0] == 202
    finally:
        await first.close()
    clock.advance(timedelta(seconds=60))
    restarted = await _client(settings, clock)
    try:
        assert (await _post(restarted, headers))[0] == 409
    finally:
        await restarted.close()


@pytest.mark.postgres
async def test_a_replay_is_refused_by_another_replica(clock: ManualClock) -> None:
    from tests.replicas.cluster import fresh_database

    async with fresh_database() as database_url:
        settings = _settings(database_url)
        one, two = await _client(settings, clock), await _client(settings, clock)
        try:
            headers = signed_headers(SECRET, BODY, now_s=clock.now().timestamp())
            assert (await _post(one, headers))[0] == 202
            assert (await _post(two, headers))[0] == 409
            assert (await _post(one, headers))[0] == 409
        finally:
            await one.close()
            await two.close()


@pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("curl") is None,
    reason="the documented recipe needs openssl and curl",
)
async def test_the_documented_curl_recipe_works(tmp_path: Path) -> None:
    """The shell recipe of the README and the module docstring, run as written (real clock)."""
    client = await _client(_settings(f"sqlite:///{tmp_path / 'bot.db'}"))
    try:
        url = str(client.make_url("/api/notifications"))
        script = (
            'body=\'{"definitionId": "def-1"}\'\n'
            "ts=$(date +%s)\n"
            'sig=$(printf \'%s.%s\' "$ts" "$body" | openssl dgst -sha256 -hmac "$SECRET" -r'
            " | cut -d' ' -f1)\n"
            "curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "
            '-H "X-Timestamp: $ts" -H "X-Signature: sha256=$sig" --data-raw "$body" "$URL"\n'
        )
        result = await _run_shell(script, {"SECRET": SECRET, "URL": url})
        assert result == "202"
        assert await _queued_polls(client) == 1
    finally:
        await client.close()


async def _run_shell(script: str, env: dict[str, str]) -> str:
    import asyncio
    import os

    def run() -> str:
        done = subprocess.run(
            ["bash", "-c", script],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.strip()

    return await asyncio.to_thread(run)
