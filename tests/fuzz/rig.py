"""The bot under fuzzing: two real apps over loopback, a raw HTTP client, a log tap, RSS.

:class:`FuzzRig` runs, on an event loop of its own thread (Hypothesis drives tests
synchronously), two instances of the real application served on 127.0.0.1 port 0, each on a
SQLite file:

- **signed**: an app id set, every activity's JWT validated by botbuilder against the emulated
  channel's OpenID metadata (as ``tests/bot_harness.py`` configures it); admin routes need the
  admin token; ``/api/notifications`` has a secret;
- **demo**: no app id (anonymous), the demo's emulated cloud (``bot.demo``), open admin routes.

Discovery has run on both, so activities can name real reviewers, reviews and items. Requests go
out as raw bytes over a socket (:meth:`FuzzRig.send`): headers with bytes no HTTP client would
send, any method, broken framing. Every log record of the bot's side is kept (the emulator's
are not the bot's), so each case can be judged on its status and its log lines.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
import tempfile
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx
from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bot.settings import Settings
from bot.store import Store
from bot.web.keys import DISCOVERY, STORE
from emulator.teams_client import TeamsClient
from tests.bot_harness import bot_on_emulator

T = TypeVar("T")

NOTIFICATIONS_SECRET = "fuzz-notifications-secret"
ADMIN_TOKEN = "fuzz-admin-token"
#: Longest a case may take before it counts as a hang.
CASE_TIMEOUT_S = 30.0

TargetName = Literal["signed", "demo"]


@dataclass
class Target:
    """One app under test and what cases need to address it."""

    name: TargetName
    port: int
    app: Any
    teams: TeamsClient
    tenant_id: str
    reviewers: list[str]
    instances: list[str]
    items: list[str]
    # (reviewer, instance, item) triples, for clicks that reach the store.
    assignments: list[tuple[str, str, str]]

    @property
    def store(self) -> Store:
        store: Store = self.app[STORE]
        return store


@dataclass(frozen=True)
class LogLine:
    level: int
    logger: str
    message: str
    has_stack: bool
    # For a record with an exception: its type and message, and where it was raised.
    exception: str = ""


@dataclass(frozen=True)
class Outcome:
    """What one case produced: the HTTP status (None: no answer) and the bot's log lines."""

    status: int | None
    lines: tuple[LogLine, ...]

    @property
    def errors(self) -> list[LogLine]:
        return [line for line in self.lines if line.level >= logging.ERROR]

    @property
    def warnings(self) -> list[LogLine]:
        return [line for line in self.lines if line.level == logging.WARNING]


class _Tap(logging.Handler):
    """Keeps every WARNING-or-worse record from the bot's side of the process."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.lines: list[LogLine] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        # The emulated Microsoft cloud runs on threads named "emulator*" and logs as emulator.*;
        # its records are the other side's, not the bot's.
        if record.name.startswith("emulator") or record.threadName.startswith("emulator"):
            return
        has_stack = record.exc_info is not None and record.exc_info[0] is not None
        line = LogLine(
            level=record.levelno,
            logger=record.name,
            message=record.getMessage()[:300],
            has_stack=has_stack,
            exception=_exception_summary(record) if has_stack else "",
        )
        with self._lock:
            self.lines.append(line)

    def mark(self) -> int:
        with self._lock:
            return len(self.lines)

    def since(self, mark: int) -> tuple[LogLine, ...]:
        with self._lock:
            return tuple(self.lines[mark:])


def _exception_summary(record: logging.LogRecord) -> str:
    assert record.exc_info is not None
    _type, error, tb = record.exc_info
    frames = traceback.extract_tb(tb)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {str(error)[:200]}{where}"


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


@dataclass
class FuzzRig:
    """``with FuzzRig() as rig:`` — both targets running; :meth:`send` one request to one."""

    data_dir: Path | None = None
    targets: dict[str, Target] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fuzz-bot", daemon=True)
        self._stop: asyncio.Event | None = None
        self._runner: Any = None
        self._tap = _Tap()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._root_level = logging.NOTSET

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FuzzRig:
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="arb-fuzz-")
            self.data_dir = Path(self._tmp.name)
        root = logging.getLogger()
        root.addHandler(self._tap)
        # WARNING records must reach the tap whatever the caller configured.
        self._root_level = root.level
        if root.level > logging.WARNING:
            root.setLevel(logging.WARNING)
        self._thread.start()
        ready: asyncio.Future[None] = self._loop.create_future()

        async def start() -> None:
            self._stop = asyncio.Event()
            self._runner = asyncio.ensure_future(self._serve(ready))
            await ready

        try:
            self.run(start(), timeout_s=300)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._stop is not None and self._runner is not None:

                async def stop() -> None:
                    assert self._stop is not None
                    self._stop.set()
                    await self._runner

                self.run(stop(), timeout_s=120)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
            logging.getLogger().removeHandler(self._tap)
            logging.getLogger().setLevel(self._root_level)
            if self._tmp is not None:
                self._tmp.cleanup()

    def run(self, coroutine: Coroutine[Any, Any, T], *, timeout_s: float = CASE_TIMEOUT_S) -> T:
        """Run ``coroutine`` on the rig's loop and wait for it (from the calling thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    async def _serve(self, ready: asyncio.Future[None]) -> None:
        assert self.data_dir is not None and self._stop is not None
        try:
            async with AsyncExitStack() as stack:
                signed_dir = self.data_dir / "signed"
                signed_dir.mkdir(parents=True, exist_ok=True)
                self.targets["signed"] = await stack.enter_async_context(_signed(signed_dir))
                demo_dir = self.data_dir / "demo"
                demo_dir.mkdir(parents=True, exist_ok=True)
                self.targets["demo"] = await stack.enter_async_context(_demo(demo_dir))
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    # ------------------------------------------------------------------ cases
    def send(
        self,
        target: TargetName,
        request: Callable[[Target], Awaitable[bytes]] | bytes,
        *,
        half_close: bool = False,
    ) -> Outcome:
        """Send one raw request (bytes, or built from the target) and collect what it caused."""
        mark = self._tap.mark()
        status = self.run(self._send(self.targets[target], request, half_close))
        return Outcome(status=status, lines=self._tap.since(mark))

    async def _send(
        self,
        target: Target,
        request: Callable[[Target], Awaitable[bytes]] | bytes,
        half_close: bool,
    ) -> int | None:
        raw = request if isinstance(request, bytes) else await request(target)
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        try:
            writer.write(raw)
            if half_close:
                writer.write_eof()
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), CASE_TIMEOUT_S)
            while status_line.startswith(b"HTTP/1.1 1"):  # 100 Continue, then the answer
                while (await asyncio.wait_for(reader.readline(), CASE_TIMEOUT_S)).strip():
                    pass
                status_line = await asyncio.wait_for(reader.readline(), CASE_TIMEOUT_S)
            # Connection: close — read the rest so the server finishes the request's work.
            await asyncio.wait_for(reader.read(), CASE_TIMEOUT_S)
        except (ConnectionError, TimeoutError):
            return None
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
        parts = status_line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            return None
        return int(parts[1])

    def measure_rss(self) -> int:
        """RSS after a full collection (so only what is still referenced is counted)."""
        gc.collect()
        return rss_bytes()


# ---------------------------------------------------------------------- the two targets
async def _ids(app: Any) -> dict[str, Any]:
    store: Store = app[STORE]
    triples = list(await store.list_assignments())
    return {
        "reviewers": sorted({r for r, _i, _d in triples}),
        "instances": sorted({i for _r, i, _d in triples}),
        "items": sorted({d for _r, _i, d in triples}),
        "assignments": sorted(triples),
    }


@asynccontextmanager
async def _signed(data_dir: Path) -> AsyncIterator[Target]:
    async with bot_on_emulator(
        data_dir, notifications_secret=NOTIFICATIONS_SECRET, admin_token=ADMIN_TOKEN
    ) as harness:
        await harness.app[DISCOVERY].run_once()
        port = harness.client.server.port
        assert port is not None
        yield Target(
            name="signed",
            port=port,
            app=harness.app,
            teams=harness.teams,
            tenant_id=harness.cloud.tenant_id,
            **await _ids(harness.app),
        )


@asynccontextmanager
async def _demo(data_dir: Path) -> AsyncIterator[Target]:
    from bot.demo import start_demo_cloud

    settings = Settings(
        database_url=f"sqlite:///{data_dir / 'demo.db'}",
        notifications_secret=NOTIFICATIONS_SECRET,
        port=0,
    )
    demo = await asyncio.to_thread(
        start_demo_cloud, settings, bot_endpoint="http://127.0.0.1:1/api/messages"
    )
    try:
        server = TestServer(
            create_app(demo.settings, microsoft=demo.side, workers=False), host="127.0.0.1", port=0
        )
        async with TestClient(server) as client, httpx.AsyncClient() as http:
            endpoint = str(client.make_url("/api/messages"))
            demo.cloud.connector.bot_endpoint = endpoint
            await client.app[DISCOVERY].run_once()
            teams = TeamsClient(
                demo.cloud.identity,
                demo.cloud.connector_url,
                endpoint,
                demo.cloud.bot_app_id,
                demo.cloud.tenant_id,
                http,
                unsigned=True,
                conversation_id_for=demo.cloud.connector.conversation_id_for,
            )
            assert server.port is not None
            yield Target(
                name="demo",
                port=server.port,
                app=client.app,
                teams=teams,
                tenant_id=demo.cloud.tenant_id,
                **await _ids(client.app),
            )
    finally:
        await asyncio.to_thread(demo.stop)


def basic_auth(token: str) -> str:
    return "Basic " + base64.b64encode(f"admin:{token}".encode()).decode()
