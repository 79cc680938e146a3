"""Helpers the benchmarks share: the cloud subprocess, bot settings for it, serving the bot.

The emulated cloud runs in a child process (:mod:`bench._cloud`) so the bot's wall time, CPU and
peak RSS are its own. :class:`CloudProcess` starts it and sends it commands.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import socket
import statistics
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from sqlalchemy.engine import make_url

from bot.settings import Settings

#: How long the child may take to seed and start (100,000 decisions take a few seconds).
CLOUD_START_TIMEOUT_S = 300.0
#: The repository root: the child runs ``python -m bench._cloud`` from here.
_REPO_ROOT = Path(__file__).resolve().parent.parent
#: Answers can hold thousands of timings on one line.
_PIPE_LIMIT_BYTES = 64 * 1024 * 1024


class CloudError(RuntimeError):
    """The cloud process failed or answered an error."""


class CloudProcess:
    """``async with CloudProcess({...config...}) as cloud:`` — the emulator in a child process.

    ``cloud.info`` is its description (URLs, tenant and app ids, secret, CA path);
    ``await cloud.call(op, **args)`` runs one command (see :mod:`bench._cloud`).
    """

    def __init__(self, config: dict[str, Any], *, timeout_s: float = CLOUD_START_TIMEOUT_S):
        self._config = config
        self._timeout_s = timeout_s
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.info: dict[str, Any] = {}

    async def __aenter__(self) -> CloudProcess:
        root = _REPO_ROOT
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        }
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench._cloud",
            json.dumps(self._config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(root),
            env=env,
            limit=_PIPE_LIMIT_BYTES,
        )
        try:
            self.info = await self._read(self._timeout_s)
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def call(self, op: str, *, timeout_s: float = 600.0, **args: Any) -> dict[str, Any]:
        """Run one command in the cloud process and return its answer."""
        process = self._process
        if process is None or process.stdin is None:
            raise CloudError("cloud process not running")
        async with self._lock:
            process.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
            await process.stdin.drain()
            answer = await self._read(timeout_s)
        if "error" in answer:
            raise CloudError(f"{op}: {answer['error']}")
        result: dict[str, Any] = answer["ok"]
        return result

    async def _read(self, timeout_s: float) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout_s)
        if not line:
            code = await process.wait()
            raise CloudError(f"cloud process exited with status {code}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None and process.stdin is not None:
            try:
                process.stdin.write(b'{"op": "quit"}\n')
                await process.stdin.drain()
                process.stdin.close()
                await asyncio.wait_for(process.wait(), 30.0)
            except (OSError, TimeoutError):
                pass
        if process.returncode is None:
            process.kill()  # our own child, by its handle
            await process.wait()


def bot_settings(info: dict[str, Any], data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a bot registered in the emulated tenant, as an operator would write them.

    The channel's OpenID metadata is read from the connector's plain-http site: botbuilder
    fetches it with ``requests``, which does not trust the emulator's CA.
    """
    settings = Settings(
        app_id=info["bot_app_id"],
        app_password=info["bot_app_secret"],
        app_type="SingleTenant",
        app_tenant_id=info["tenant_id"],
        graph_base_url=info["graph_url"],
        authority_host=info["login_url"],
        ca_bundle=info["ca_pem_path"],
        channel_openid_metadata_url=info["connector_channel_metadata_url"],
        token_cache_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        database_url=f"sqlite:///{data_dir / 'bot.db'}",
        teams_service_url=info["connector_url"],
        log_level="WARNING",
        port=0,
    )
    return replace(settings, **overrides)


@asynccontextmanager
async def started_app(app: web.Application, *, serve: bool) -> AsyncIterator[str]:
    """Start ``app`` (its cleanup contexts run); with ``serve`` also listen on 127.0.0.1:0.

    Yields the ``/api/messages`` URL ("" when not serving).
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock: socket.socket | None = None
    try:
        url = ""
        if serve:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            site = web.SockSite(runner, sock, backlog=1024)
            await site.start()
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/messages"
        yield url
    finally:
        await runner.cleanup()
        if sock is not None:
            sock.close()


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest-rank, so p99 of 200 values is the second largest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_figures(figures: dict[str, Any]) -> None:
    """The last line of every benchmark: one JSON object."""
    print(json.dumps(figures), flush=True)


@asynccontextmanager
async def fresh_postgres_database(url: str) -> AsyncIterator[str]:
    """A new PostgreSQL database on the server of ``url`` for one run, dropped afterwards."""
    import asyncpg

    parsed = make_url(url)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin_dsn = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
