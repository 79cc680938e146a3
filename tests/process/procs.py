"""Real bot processes for crash tests: start ``app.py`` as a subprocess, SIGKILL it, start it again.

The emulated Microsoft cloud runs on a thread of the test process (:class:`EmulatorThread`): its
connector keeps what it received in memory and has no HTTP route to read it back, so only the
bot is a separate process. The bot is configured exactly as an operator configures it for
Microsoft (``tests.bot_harness.bot_settings`` as environment variables), listens on a port found
by binding port 0, and is watched through ``/healthz`` and through what the emulator recorded.

What the connector accepted is read here too (:class:`AcceptedCards`), and who is owed a review
card (:func:`expected_pairs`): the crash tests and ``python -m bench soak`` share them.

Every process is started with :meth:`BotProcess.start` and ended by its own pid
(``os.kill(pid, SIGKILL)`` then ``wait``), also when a test fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from emulator.connector import Connector
from emulator.server import EmulatorCloud
from emulator.tenant import Tenant
from emulator.threaded import EmulatorThread
from tests.bot_harness import bot_settings, settings_environment

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parents[2] / "app.py"

#: How long a claim on a queued message lasts, so that a restart takes over a killed process's
#: claims in seconds instead of the default two minutes.
LEASE_CAP_VARIABLE = "CLAIM_LEASE_S"


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def bot_environment(
    cloud: EmulatorCloud,
    data_dir: Path,
    *,
    token_cache_key: str,
    port: int,
    lease_s: float = 20.0,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a bot process configured for ``cloud`` with its store in ``data_dir``.

    ``token_cache_key`` must stay the same across restarts: the reviewers' cached sign-ins in
    the store are encrypted with it. ``lease_s`` bounds how long what a killed process held
    stays blocked: the role leases (``LEASE_TTL_S``: discovery, and delivery at half of it) and,
    through the launcher, the outbox claims.
    """
    settings = bot_settings(cloud, data_dir, token_cache_key=token_cache_key)
    env = settings_environment(
        settings,
        PORT=str(port),
        # One discovery at start is all these tests need; later cycles would only add noise.
        POLL_INTERVAL_S="3600",
        LEASE_TTL_S=str(lease_s),
        CLAIM_LEASE_S=str(lease_s),
        LOG_LEVEL="INFO",
    )
    env.update(extra or {})
    return env


class BotProcess:
    """One ``python app.py serve`` process (through the lease-capping launcher).

    Output goes to ``log_path`` (a file, so a chatty process can never block on a full pipe);
    :meth:`log_tail` shows its end in assertion messages.
    """

    def __init__(self, env: Mapping[str, str], *, port: int, log_path: Path, cwd: Path) -> None:
        self.env = dict(env)
        self.port = port
        self.log_path = log_path
        # A working directory of its own: app.py reads ``.env`` from there, and there is none.
        self.cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """The bot's ``/api/messages``."""
        return f"{self.base_url}/api/messages"

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def start(self) -> None:
        assert self._process is None, "already started"
        self.cwd.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, str(APP), "serve"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    async def wait_healthy(self, http: httpx.AsyncClient, *, timeout_s: float = 30.0) -> None:
        """Wait until ``GET /healthz`` answers 200; fail early if the process exits."""

        async def healthy() -> bool:
            if not self.alive():
                raise AssertionError(f"bot process exited early:\n{self.log_tail()}")
            try:
                response = await http.get(f"{self.base_url}/healthz", timeout=2.0)
            except httpx.TransportError:
                return False
            return response.status_code == 200

        await eventually(healthy, timeout_s=timeout_s, what=f"bot /healthz on port {self.port}")

    async def frozen_objects(self, http: httpx.AsyncClient) -> float:
        """What ``bot_heap_frozen_objects`` of its ``/metrics`` says (see bot.heap)."""
        return await heap_frozen_objects(http, self.base_url)

    def kill(self) -> None:
        """SIGKILL the process (no cleanup of any kind runs in it) and reap it."""
        assert self._process is not None, "not started"
        if self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=30)

    def stop(self) -> None:
        """End the process if it still runs (for ``finally`` blocks)."""
        if self._process is not None and self._process.poll() is None:
            self.kill()


async def eventually(
    predicate: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    describe: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Poll ``predicate`` until it holds or ``timeout_s`` passes (then fail, saying ``what``)."""
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            detail = f": {await describe()}" if describe is not None else ""
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}{detail}")
        await asyncio.sleep(interval_s)  # a poll interval, not a synchronisation


async def on_emulator(emulator: EmulatorThread, fn: Callable[[], Any]) -> Any:
    """Read emulator state on the emulator's own loop (its dicts change on that thread)."""
    return await emulator.arun(fn)


Pair = tuple[str, str]  # (reviewer oid, instance id)


def expected_pairs(tenant: Tenant) -> set[Pair]:
    """Who is owed a review card, by the emulator's own resolution of the review scopes (running
    instances only: recurring reviews also list their earlier, ended recurrences)."""
    return {
        (reviewer.lower(), instance.id)
        for instance in tenant.instances.values()
        if tenant.instance_status(instance) == "InProgress"
        for reviewer in tenant.assignments(instance)
    }


def review_card_pair(activity: Any, user_oid: str | None) -> Pair | None:
    """(reviewer, instance) of a review card activity; None for anything else (reminders...)."""
    if not isinstance(activity, dict) or user_oid is None:
        return None
    for attachment in activity.get("attachments") or []:
        content = attachment.get("content") if isinstance(attachment, dict) else None
        if not isinstance(content, dict):
            continue
        data = ((content.get("refresh") or {}).get("action") or {}).get("data") or {}
        if data.get("card") == "review" and data.get("instanceId"):
            return (user_oid.lower(), str(data["instanceId"]))
    return None


class AcceptedCards:
    """How many times the connector accepted a new review card for each (reviewer, review).

    Counts posts (send, or the first activity of create-conversation) answered 201; edits of an
    existing message are not new messages. Reads only the records added since the last call,
    on the emulator's thread (:meth:`update` runs there).
    """

    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._seen = 0
        self.counts: Counter[Pair] = Counter()
        self.times: dict[Pair, list[datetime]] = {}
        #: The connector's activity id of each accepted copy, in the order of ``times``.
        self.activity_ids: dict[Pair, list[str]] = {}

    def update(self) -> Counter[Pair]:
        records = self._connector.records
        for record in records[self._seen :]:
            if record.operation in ("send", "create_conversation") and record.status == 201:
                pair = review_card_pair(record.activity, record.user_oid)
                if pair is not None:
                    self.counts[pair] += 1
                    self.times.setdefault(pair, []).append(record.at)
                    self.activity_ids.setdefault(pair, []).append(record.activity_id or "")
        self._seen = len(records)
        return Counter(self.counts)


async def heap_frozen_objects(http: httpx.AsyncClient, base_url: str) -> float:
    """``bot_heap_frozen_objects`` of the ``/metrics`` served at ``base_url`` (through ``http``,
    so a kept-alive client reads the worker it is connected to)."""
    response = await http.get(f"{base_url}/metrics", timeout=10.0)
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        if family.name == "bot_heap_frozen_objects":
            return float(family.samples[0].value)
    raise AssertionError("no bot_heap_frozen_objects in /metrics")
