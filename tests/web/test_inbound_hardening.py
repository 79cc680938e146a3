"""Unauthenticated input that used to cost a 500 and an ERROR with a stack trace, each pinned:
a 4xx with a short reason and at most one WARNING line, over loopback, signed and anonymous."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization

from app import create_app
from bot.settings import Settings
from bot.teams.adapter import MAX_CACHED_CONNECTORS
from bot.web.keys import ADAPTER
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator

JOHANNA = demo_id("user", "johanna")


@pytest.fixture
async def signed(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path) as running:
        yield running


@pytest.fixture
async def anonymous(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}", port=0)
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0)) as client:
        yield client


class Lines:
    """WARNING-or-worse records of the bot's side (the emulator's thread is the other side)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    def clear(self) -> None:
        self._caplog.clear()

    @property
    def records(self) -> list[logging.LogRecord]:
        return [
            r
            for r in self._caplog.records
            if r.levelno >= logging.WARNING
            and not r.name.startswith("emulator")
            and not r.threadName.startswith("emulator")
        ]

    def assert_one_warning_at_most(self) -> None:
        records = self.records
        assert not [r for r in records if r.levelno >= logging.ERROR], [
            r.getMessage() for r in records
        ]
        assert len(records) <= 1, [r.getMessage() for r in records]
        assert all(r.exc_info is None for r in records)


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Iterator[Lines]:
    caplog.set_level(logging.WARNING)
    yield Lines(caplog)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(
    harness: BotOnEmulator,
    *,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    signature: bytes | None = None,
) -> str:
    """A token with the given header and claims over a genuine channel token's defaults,
    signed with the channel's own key unless ``signature`` is given."""
    teams = harness.teams
    now = int(time.time())
    jose = {"alg": "RS256", "kid": teams.channel_key_id, "typ": "JWT", **(header or {})}
    body = {
        "serviceurl": teams.connector_url,
        "nbf": now - 5,
        "iat": now - 5,
        "exp": now + 3600,
        "iss": "https://api.botframework.com",
        "aud": teams.bot_app_id,
        **(claims or {}),
    }
    signing_input = f"{_b64(json.dumps(jose).encode())}.{_b64(json.dumps(body).encode())}"
    if signature is None:
        signature = teams.sign_with_channel_key(signing_input.encode())
    return f"{signing_input}.{_b64(signature)}"


async def post_activity(
    harness: BotOnEmulator, activity: dict[str, Any], authorization: str
) -> tuple[int, dict[str, Any]]:
    response = await harness.client.post(
        "/api/messages",
        data=json.dumps(activity),
        headers={"Content-Type": "application/json", "Authorization": authorization},
    )
    body = await response.json() if response.content_type == "application/json" else {}
    return response.status, body


def help_message(harness: BotOnEmulator) -> dict[str, Any]:
    activity = harness.teams.base_activity(JOHANNA, "message")
    activity["text"] = "help"
    return activity


async def raw_request(port: int, request: bytes, *, half_close: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        if half_close:
            writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


def status_of(answer: bytes) -> int | None:
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else None


# -- tokens ----------------------------------------------------------------------------------


async def test_a_genuine_token_still_works(signed: BotOnEmulator, lines: Lines) -> None:
    token = signed.teams.channel_token()
    for authorization in (f"Bearer {token}", f"Bearer  {token} ", f"bearer {token}"):
        status, _body = await post_activity(signed, help_message(signed), authorization)
        assert status == 201
    assert not [r for r in lines.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("alg none, no signature", "not a signed JWT"),
        ("alg none, a signature", "alg not allowed"),
        ("alg HS256 keyed with the channel's public key", "alg not allowed"),
        ("alg an object", "alg not allowed"),
        ("unknown kid", "token refused"),
        ("no kid", "no usable kid"),
        ("iss a list", "iss is not a string"),
        ("exp a string", "exp is not a time"),
        ("exp beyond a float", "exp is not a time"),
        ("a header nested 3,000 deep", "JWT header too long"),
        ("claims nested 100 deep", "claims is not a small JSON object"),
        ("Basic credentials", "Bearer"),
        ("a foreign key", "token refused"),
    ],
)
async def test_bad_tokens_are_a_401_with_one_warning(
    signed: BotOnEmulator, lines: Lines, case: str, reason: str
) -> None:
    teams = signed.teams
    genuine = teams.channel_token()
    header, claims, _signature = genuine.split(".")
    public_pem = teams.identity.channel_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tokens = {
        "alg none, no signature": f"{ALG_NONE}.{claims}.",
        "alg none, a signature": forge(signed, header={"alg": "none"}),
        "alg HS256 keyed with the channel's public key": _hs256(
            f"{ALG_HS256}.{claims}", public_pem
        ),
        "alg an object": forge(signed, header={"alg": {}}),
        "unknown kid": forge(signed, header={"kid": "not-a-published-key"}),
        "no kid": forge(signed, header={"kid": None}),
        "iss a list": forge(signed, claims={"iss": ["https://api.botframework.com"]}),
        "exp a string": forge(signed, claims={"exp": "tomorrow"}),
        "exp beyond a float": forge(signed, claims={"exp": 10**400}),
        "a header nested 3,000 deep": f"{_b64(b'[' * 3000)}.{claims}.{_signature}",
        "claims nested 100 deep": f"{header}.{_b64(b'[' * 100 + b']' * 100)}.{_signature}",
        "Basic credentials": "",
        "a foreign key": forge(signed, signature=b"\x01" * 256),
    }
    authorization = (
        "Basic " + base64.b64encode(b"a:b").decode()
        if case == "Basic credentials"
        else f"Bearer {tokens[case]}"
    )
    status, body = await post_activity(signed, help_message(signed), authorization)
    assert status == 401
    assert reason in body["error"]
    lines.assert_one_warning_at_most()


ALG_NONE = _b64(b'{"alg":"none"}')
ALG_HS256 = _b64(b'{"alg":"HS256","typ":"JWT"}')


def _hs256(signing_input: str, key: bytes) -> str:
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


@pytest.mark.parametrize("channel_id", ["skype", "emulator", "webchat"])
async def test_a_key_endorsed_for_another_channel_is_refused(
    signed: BotOnEmulator, lines: Lines, channel_id: str
) -> None:
    """The channel's key is endorsed for msteams only; an activity claiming another channel
    with that key is refused (botbuilder raises a bare Exception for it)."""
    activity = help_message(signed)
    activity["channelId"] = channel_id
    status, body = await post_activity(signed, activity, f"Bearer {signed.teams.channel_token()}")
    assert status == 401 and "token refused" in body["error"]
    lines.assert_one_warning_at_most()


# -- bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"type": "message", "value": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper"),
        (b"[" * 200_000, "nested deeper"),
        # Deeper than the limit, well within what Python's parser itself would take.
        (b'{"type": "message", "value": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper"),
        (b'{"type": "message", "text": "\\ud800"}', "lone surrogate"),
        (b'{"type": "message", "text": NaN}', "not valid JSON"),
        (b'{"type": "message", "id": ' + b"1" * 5000 + b"}", "not valid JSON"),
        (b'{"type": "message", "text": "\xff"}', "UTF-8"),
    ],
)
async def test_bodies_that_broke_the_parser_are_a_400(
    signed: BotOnEmulator, lines: Lines, body: bytes, reason: str
) -> None:
    response = await signed.client.post(
        "/api/messages",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {signed.teams.channel_token()}",
        },
    )
    assert response.status == 400
    assert reason in (await response.json())["error"]
    lines.assert_one_warning_at_most()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"channelData": None}, "channelData must be an object"),
        ({"channelData": "x"}, "channelData must be an object"),
        ({"channelData": {"tenant": "x"}}, "malformed activity"),
        ({"membersAdded": [1]}, "membersAdded must be a list of objects"),
        ({"from": "nobody"}, "from must be an object"),
        ({"conversation": {"conversationType": "personal"}}, "conversation.id missing"),
        ({"serviceUrl": "javascript:alert(1)"}, "serviceUrl"),
    ],
)
async def test_envelope_fields_of_the_wrong_type_are_a_400(
    signed: BotOnEmulator, lines: Lines, change: dict[str, Any], reason: str
) -> None:
    activity = signed.teams.conversation_update_activity(JOHANNA)
    activity.update(change)
    token = signed.teams.channel_token()
    status, body = await post_activity(signed, activity, f"Bearer {token}")
    assert status == 400 and reason in body["error"]
    lines.assert_one_warning_at_most()


@pytest.mark.parametrize(
    ("field", "reason"),
    [("channelData", "channelData missing"), ("conversation", "conversation.id missing")],
)
async def test_members_added_without_a_required_field_is_a_400(
    signed: BotOnEmulator, lines: Lines, field: str, reason: str
) -> None:
    """A member other than the bot makes botbuilder look the member up in the conversation."""
    activity = signed.teams.conversation_update_activity(JOHANNA)
    activity["membersAdded"] = [{"id": "29:someone"}]
    del activity[field]
    status, body = await post_activity(signed, activity, f"Bearer {signed.teams.channel_token()}")
    assert status == 400 and reason in body["error"]
    lines.assert_one_warning_at_most()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("task/fetch", {}),
        ("composeExtension/query", []),
        ("config/fetch", "x"),
        ("healthCheck", None),
        ("", None),
    ],
)
async def test_an_invoke_the_bot_does_not_offer_is_a_400(
    signed: BotOnEmulator, lines: Lines, name: str, value: Any
) -> None:
    activity = signed.teams.base_activity(JOHANNA, "invoke")
    activity["name"] = name
    activity["value"] = value
    status, body = await post_activity(signed, activity, f"Bearer {signed.teams.channel_token()}")
    assert status == 400 and body == {"error": "unsupported invoke"}
    lines.assert_one_warning_at_most()


# -- HTTP itself -----------------------------------------------------------------------------


async def test_odd_expect_headers_are_a_417_on_every_path(
    anonymous: TestClient, lines: Lines
) -> None:
    port = anonymous.server.port
    assert port is not None
    for target in (b"POST /api/messages", b"GET /healthz", b"POST /healthz", b"GET /nowhere"):
        answer = await raw_request(
            port,
            target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: \x90\xff\r\n"
            b"Content-Length: 0\r\n\r\n",
        )
        assert status_of(answer) == 417, answer[:80]
    # The one Expect there is still works.
    answer = await raw_request(
        port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200")
    lines.assert_one_warning_at_most()


async def test_unserved_paths_and_methods_are_a_404_and_a_405(anonymous: TestClient) -> None:
    response = await anonymous.get("/nowhere")
    assert response.status == 404 and (await response.json()) == {"error": "not found"}
    response = await anonymous.put("/healthz")
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD"


async def test_an_oversized_header_is_one_warning_without_a_stack(
    anonymous: TestClient, lines: Lines
) -> None:
    port = anonymous.server.port
    assert port is not None
    answer = await raw_request(
        port,
        b"POST /api/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + b"a" * 9000 + b"\r\nContent-Length: 0\r\n\r\n",
    )
    assert status_of(answer) in (400, 431)
    lines.assert_one_warning_at_most()
    assert "malformed HTTP request refused" in lines.records[0].getMessage()


async def test_a_body_cut_short_is_neither_an_error_nor_a_5xx(
    anonymous: TestClient, lines: Lines
) -> None:
    """The caller promises 100 bytes, sends 2 and hangs up: a warning or a 499 in the metrics
    (depending on when the server notices), never an ERROR or a counted 500."""
    port = anonymous.server.port
    assert port is not None
    await raw_request(
        port,
        b"POST /api/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}",
        half_close=True,
    )
    counted = 'bot_http_requests_total{method="POST",route="/api/messages",status='
    deadline = time.monotonic() + 10
    while counted not in (text := await (await anonymous.get("/metrics")).text()):
        assert time.monotonic() < deadline, "the cut-short request was never counted"
        await asyncio.sleep(0.01)  # the server notices the closed connection on its own time
    assert counted + '"500"}' not in text
    assert counted + '"400"}' in text or counted + '"499"}' in text
    lines.assert_one_warning_at_most()


async def test_a_caller_hanging_up_after_expect_is_not_an_error(
    anonymous: TestClient, lines: Lines
) -> None:
    port = anonymous.server.port
    assert port is not None
    for _ in range(5):  # whether aiohttp or the handler notices first varies: try both ways
        await raw_request(
            port,
            b"POST /api/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: 10\r\n\r\n",
            half_close=True,
        )
    # Wait until the server has finished all five (each is counted once, whatever its status).
    deadline = time.monotonic() + 10
    while await _counted(anonymous, "/api/messages") < 5:
        assert time.monotonic() < deadline, "the server did not finish the requests"
        await asyncio.sleep(0.01)
    assert not [r for r in lines.records if r.levelno >= logging.ERROR]


async def _counted(client: TestClient, route: str) -> float:
    """Requests to ``route`` the metrics have counted so far, any method and status."""
    text = await (await client.get("/metrics")).text()
    prefix = "bot_http_requests_total{"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(prefix) and f'route="{route}"' in line
    )


async def test_odd_methods_share_one_metrics_label(anonymous: TestClient) -> None:
    port = anonymous.server.port
    assert port is not None
    # (aiohttp's parser answers 400 to a method it does not know; these it knows.)
    for method in (b"PROPFIND", b"MKCOL", b"LOCK"):
        await raw_request(
            port, method + b" /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
    text = await (await anonymous.get("/metrics")).text()
    assert 'method="other",route="/{path}",status="404"} 3.0' in text
    assert "PROPFIND" not in text


# -- anonymous mode --------------------------------------------------------------------------


async def test_anonymous_mode_refuses_any_bearer(anonymous: TestClient, lines: Lines) -> None:
    response = await anonymous.post(
        "/api/messages",
        json={"type": "message", "text": "help"},
        headers={"Authorization": "Bearer a.b.c"},
    )
    assert response.status == 401
    assert "send no Authorization header" in (await response.json())["error"]
    lines.assert_one_warning_at_most()


@pytest.mark.parametrize("answer", ["json 404", "text 404"])
async def test_a_reply_the_service_url_cannot_take_is_one_warning(
    anonymous: TestClient, lines: Lines, answer: str
) -> None:
    """Anyone may name the serviceUrl in anonymous mode; one that answers 404 (as JSON, or as
    text msrest cannot read) is the sender's problem, logged once, not an ERROR."""
    if answer == "json 404":
        await _reply_to(anonymous, lines, str(anonymous.make_url("/nowhere/")), "ErrorResponse")
        return
    # aiohttp's own 404 page is text/plain.
    async with TestServer(web.Application(), host="127.0.0.1", port=0) as empty:
        await _reply_to(anonymous, lines, str(empty.make_url("/")), "DeserializationError")


async def _reply_to(anonymous: TestClient, lines: Lines, nowhere: str, error: str) -> None:
    activity = {
        "type": "message",
        "id": "m1",
        "channelId": "msteams",
        "serviceUrl": nowhere,
        "text": "help",
        "from": {"id": "29:x", "aadObjectId": str(uuid.uuid4())},
        "recipient": {"id": "28:bot"},
        "conversation": {"id": "a:x", "conversationType": "personal", "tenantId": "t"},
        "channelData": {"tenant": {"id": "t"}},
    }
    lines.clear()
    response = await anonymous.post("/api/messages", json=activity)
    assert response.status == 201
    messages = [r.getMessage() for r in lines.records if r.name == "bot.teams.adapter"]
    assert len(messages) == 1 and messages[0].startswith("could not answer through the channel")
    assert error in messages[0]
    assert not [r for r in lines.records if r.levelno >= logging.ERROR]


async def test_service_urls_do_not_pile_up(anonymous: TestClient) -> None:
    base = str(anonymous.make_url("/nowhere/"))
    for n in range(MAX_CACHED_CONNECTORS + 8):
        activity = {
            "type": "message",
            "id": f"m{n}",
            "channelId": "msteams",
            "serviceUrl": f"{base}{n}/",
            "text": "help",
            "from": {"id": "29:x"},
            "recipient": {"id": "28:bot"},
            "conversation": {"id": "a:x", "conversationType": "personal"},
            "channelData": {},
        }
        assert (await anonymous.post("/api/messages", json=activity)).status == 201
    cached = anonymous.app[ADAPTER].bot_framework_authentication._connectors
    assert len(cached) == MAX_CACHED_CONNECTORS


async def test_admin_query_strings_are_checked(tmp_path: Path, lines: Lines) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}", port=0)
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1", port=0)) as client:
        port = client.server.port
        assert port is not None
        for query in (
            b"instance=%00",
            b"instance=a%0d%0ab",
            b"instance=%ff",
            b"instance=" + b"a" * 65,
        ):
            for method in (b"GET", b"HEAD"):
                answer = await raw_request(
                    port,
                    method + b" /admin/audit?" + query + b" HTTP/1.1\r\nHost: x\r\n"
                    b"Connection: close\r\n\r\n",
                )
                assert status_of(answer) == 400, (query, answer[:100])
        response = await client.post("/admin/remind?instance=a%0a")
        assert response.status == 400
        lines.assert_one_warning_at_most()


async def test_admin_credentials_with_bytes_that_are_not_utf8_are_a_401(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        port=0,
        app_id="00000000-0000-0000-0000-0000000000b0",
        app_password="pw",
        app_tenant_id="11111111-1111-1111-1111-111111111111",
        token_cache_key="q1Vh0dYQxGk2mDq4iYV6Yt3bq6r0p9O8c7n6m5l4k3I=",
        admin_token="s3cret",
    )
    server = TestServer(create_app(settings, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        port = client.server.port
        assert port is not None
        for credentials in (b"Bearer \xff\xfes3cret", b"Basic " + base64.b64encode(b"a:\xff")):
            answer = await raw_request(
                port,
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: "
                + credentials
                + b"\r\n\r\n",
            )
            assert status_of(answer) == 401, answer[:80]
        assert (await client.get("/", headers={"Authorization": "Bearer s3cret"})).status == 200


async def test_unreachable_channel_keys_are_a_503_not_a_401(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot cannot fetch the channel's signing keys: the channel should retry (503 with
    Retry-After), and the operator sees one ERROR line without a stack; it is not a bad token."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app_id = "00000000-0000-0000-0000-0000000000b0"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        port=0,
        app_id=app_id,
        app_password="pw",
        app_tenant_id="11111111-1111-1111-1111-111111111111",
        token_cache_key="q1Vh0dYQxGk2mDq4iYV6Yt3bq6r0p9O8c7n6m5l4k3I=",
        authority_host="https://127.0.0.1:1",
        # A URL of its own: botbuilder caches metadata per URL for the whole process.
        channel_openid_metadata_url=(
            f"http://127.0.0.1:{closed_port}/v1/.well-known/openidconfiguration?t={uuid.uuid4()}"
        ),
    )
    now = int(time.time())
    jose = _b64(json.dumps({"alg": "RS256", "kid": "k1"}).encode())
    claims = _b64(
        json.dumps(
            {"iss": "https://api.botframework.com", "aud": app_id, "exp": now + 600, "nbf": now}
        ).encode()
    )
    token = f"{jose}.{claims}.{_b64(b'x' * 256)}"
    caplog.set_level(logging.WARNING)
    server = TestServer(create_app(settings, workers=False), host="127.0.0.1", port=0)
    async with TestClient(server) as client:
        response = await client.post(
            "/api/messages",
            json={
                "type": "message",
                "channelId": "msteams",
                "channelData": {},
                "conversation": {"id": "a:1"},
                "text": "hi",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage().split(":")[0] for r in errors] == ["cannot validate channel tokens"]
    assert errors[0].exc_info is None
