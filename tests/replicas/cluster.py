"""Several ``app.py`` replicas on one PostgreSQL database and one emulated cloud, and the checks.

The pieces of the three-replica test (issue 10), kept apart from the scenario so each can be
read, and the checks unit-tested, on its own:

* :func:`fresh_database` — a PostgreSQL database of its own per run (``CREATE DATABASE t_<random>``
  on the server of ``TEST_DATABASE_URL``), dropped at the end; skip (or fail with
  ``REQUIRE_POSTGRES=1``) when the server is unreachable.
* :class:`Replica` — one ``python app.py serve`` subprocess,
  configured for the emulator exactly as an operator configures it for Microsoft, its output in a
  file, ended by its own pid.
* :class:`LeaseRecorder` — samples the ``leases`` table every few milliseconds, so the test can
  say afterwards who held which lease when, and that fences only grew.
* :class:`GraphLog` — follows the emulator's bounded Graph request log so no PATCH is missed.
* Pure checks over what was recorded: :func:`held_intervals`, :func:`outside_intervals`,
  :func:`fence_problems`, :func:`discovery_cycles`, review-card counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from emulator.connector import Connector
from emulator.server import EmulatorCloud
from emulator.threaded import EmulatorThread
from tests.bot_harness import bot_settings, settings_environment

APP = Path(__file__).resolve().parents[2] / "app.py"
#: How long a claim on a queued message lasts: a killed replica's rows are taken again after it.
CLAIM_CAP_VARIABLE = "CLAIM_LEASE_S"

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# CI sets REQUIRE_POSTGRES=1 so that a missing server fails the run instead of skipping.
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"

Pair = tuple[str, str]  # (reviewer oid, lower-case; instance id)
Interval = tuple[datetime, datetime]


# -- waiting ----------------------------------------------------------------------------------


async def eventually(
    predicate: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.05,
    describe: Callable[[], Awaitable[str]] | None = None,
) -> float:
    """Poll ``predicate`` until it holds (return the seconds it took) or fail after ``timeout_s``."""
    started = time.monotonic()
    while not await predicate():
        if time.monotonic() - started > timeout_s:
            detail = f": {await describe()}" if describe is not None else ""
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}{detail}")
        await asyncio.sleep(interval_s)  # the gap between two looks, not a synchronisation
    return time.monotonic() - started


# -- the database -----------------------------------------------------------------------------


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@contextlib.asynccontextmanager
async def fresh_database(base_url: str = TEST_DATABASE_URL) -> AsyncIterator[str]:
    """Create ``t_<random>`` on the server of ``base_url``, yield its URL, drop it at the end."""
    import asyncpg

    admin_url = with_database(base_url, "postgres")
    try:
        admin = await asyncio.wait_for(asyncpg.connect(admin_url), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        problem = f"PostgreSQL at {admin_url} unreachable: {type(exc).__name__}: {exc}"
        if REQUIRE_POSTGRES:
            pytest.fail(problem)
        pytest.skip(problem)
    name = f"t_{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(base_url, name)
        finally:
            # FORCE (PostgreSQL 13+) ends the sessions a killed replica may have left behind.
            version = int(await admin.fetchval("SHOW server_version_num"))
            force = " WITH (FORCE)" if version >= 130000 else ""
            if not force:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    name,
                )
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
    finally:
        await admin.close()


# -- replicas ---------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def replica_environment(
    cloud: EmulatorCloud,
    *,
    database_url: str,
    token_cache_key: str,
    port: int,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one replica: the emulator as its Microsoft side, the shared database.

    Every replica gets the same ``DATABASE_URL`` and ``TOKEN_CACHE_KEY`` (any replica may act
    for a reviewer whose sign-in another one cached), and a port of its own.
    """
    settings = bot_settings(
        cloud, Path("unused"), token_cache_key=token_cache_key, database_url=database_url
    )
    env = settings_environment(
        settings,
        PORT=str(port),
        LOG_LEVEL="INFO",
        # One JSON object per line: the test reads the cycle times back from the logs.
        LOG_FORMAT="json",
    )
    env.update(extra or {})
    return env


class Replica:
    """One ``python app.py serve`` process; output (stdout and stderr) goes to ``log_path``."""

    def __init__(self, name: str, env: Mapping[str, str], *, port: int, workdir: Path) -> None:
        self.name = name
        self.env = dict(env)
        self.port = port
        # A working directory of its own: app.py reads ``.env`` from there, and there is none.
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.killed_at: datetime | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """The replica's ``/api/messages``."""
        return f"{self.base_url}/api/messages"

    def start(self) -> None:
        assert self._process is None, "already started"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, str(APP), "serve"],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    async def wait_healthy(self, http: httpx.AsyncClient, *, timeout_s: float = 40.0) -> None:
        """Wait until ``GET /healthz`` answers 200; fail early if the process exits."""

        async def healthy() -> bool:
            if not self.alive():
                raise AssertionError(f"replica {self.name} exited early:\n{self.log_tail()}")
            try:
                response = await http.get(f"{self.base_url}/healthz", timeout=2.0)
            except httpx.TransportError:
                return False
            return response.status_code == 200

        await eventually(healthy, timeout_s=timeout_s, what=f"/healthz of replica {self.name}")

    async def leases(self, http: httpx.AsyncClient) -> dict[str, Any]:
        """``checks.leases`` of ``GET /readyz`` (holder, expires_in_s, fence, mine per lease)."""
        response = await http.get(f"{self.base_url}/readyz", timeout=20.0)
        assert response.status_code == 200, f"{self.name} /readyz: {response.text}"
        leases: dict[str, Any] = response.json()["checks"]["leases"]
        return leases

    def kill(self) -> None:
        """SIGKILL the process (nothing of its own cleanup runs) and reap it."""
        assert self._process is not None, "not started"
        if self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGKILL)
            self.killed_at = datetime.now(UTC)
        self._process.wait(timeout=30)

    def stop(self) -> None:
        """End the process if it still runs (for ``finally`` blocks)."""
        if self._process is not None and self._process.poll() is None:
            self.kill()


# -- what the database says about leases ------------------------------------------------------


@dataclass(frozen=True)
class LeaseSample:
    """One look at one lease row."""

    seen_at: datetime
    name: str
    holder: str
    expires_at: datetime
    fence: int


@dataclass
class LeaseRecorder:
    """Samples every row of the ``leases`` table every ``interval_s`` until stopped."""

    database_url: str
    interval_s: float = 0.02
    samples: list[LeaseSample] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.database_url)
        self._task = asyncio.create_task(self._run(connection), name="lease-recorder")

    async def _run(self, connection: Any) -> None:
        try:
            while not self._stop.is_set():
                try:
                    rows = await connection.fetch(
                        "SELECT name, holder, expires_at, fence FROM leases"
                    )
                except Exception as exc:  # the table appears with the first replica's migration
                    if "leases" not in str(exc):
                        raise
                    rows = []
                seen_at = datetime.now(UTC)
                self.samples.extend(
                    LeaseSample(
                        seen_at=seen_at,
                        name=row["name"],
                        holder=row["holder"],
                        expires_at=row["expires_at"].astimezone(UTC),
                        fence=int(row["fence"]),
                    )
                    for row in rows
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)
        finally:
            await connection.close()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def of(self, name: str) -> list[LeaseSample]:
        return [s for s in self.samples if s.name == name]

    def changes(self) -> list[LeaseSample]:
        """The samples where a lease row differed from the one seen before (renewals, moves)."""
        last: dict[str, tuple[str, datetime, int]] = {}
        changed: list[LeaseSample] = []
        for sample in self.samples:
            state = (sample.holder, sample.expires_at, sample.fence)
            if last.get(sample.name) != state:
                changed.append(sample)
                last[sample.name] = state
        return changed

    def write(self, path: Path) -> None:
        """The changes, one line each, for reading after a failure."""
        path.write_text(
            "".join(
                f"{s.seen_at.isoformat(timespec='milliseconds')} {s.name} {s.holder} "
                f"fence={s.fence} expires={s.expires_at.isoformat(timespec='milliseconds')}\n"
                for s in self.changes()
            )
        )


def held_intervals(samples: Iterable[LeaseSample], *, ttl_s: float) -> dict[str, list[Interval]]:
    """Per holder, the times it held the lease: each seen expiry ``e`` means ``[e - ttl, e]``.

    (The store sets ``expires_at = now + ttl`` at every acquire and renewal, so ``e - ttl`` is
    when that renewal happened.) Overlapping spans of one holder are merged.
    """
    spans: dict[str, set[Interval]] = {}
    ttl = timedelta(seconds=ttl_s)
    for sample in samples:
        spans.setdefault(sample.holder, set()).add((sample.expires_at - ttl, sample.expires_at))
    merged: dict[str, list[Interval]] = {}
    for holder, holder_spans in spans.items():
        out: list[Interval] = []
        for start, end in sorted(holder_spans):
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((start, end))
        merged[holder] = out
    return merged


def outside_intervals(
    intervals: Sequence[Interval], start: datetime, end: datetime, *, slack_s: float = 0.0
) -> bool:
    """True unless ``[start, end]`` lies within one of ``intervals`` (widened by ``slack_s``)."""
    slack = timedelta(seconds=slack_s)
    return not any(lo - slack <= start and end <= hi + slack for lo, hi in intervals)


def fence_problems(samples: Sequence[LeaseSample]) -> list[str]:
    """Where one lease's fence went down, or its holder changed without the fence going up."""
    problems: list[str] = []
    previous: LeaseSample | None = None
    for sample in sorted(samples, key=lambda s: s.seen_at):
        if previous is not None:
            if sample.fence < previous.fence:
                problems.append(
                    f"{sample.name}: fence fell {previous.fence} -> {sample.fence} "
                    f"at {sample.seen_at.isoformat()}"
                )
            elif sample.holder != previous.holder and sample.fence == previous.fence:
                problems.append(
                    f"{sample.name}: holder {previous.holder} -> {sample.holder} kept fence "
                    f"{sample.fence} at {sample.seen_at.isoformat()}"
                )
        previous = sample
    return problems


# -- what the replicas logged -----------------------------------------------------------------


def log_entries(text: str) -> list[dict[str, Any]]:
    """The JSON log records of a replica's output (other lines, e.g. tracebacks, are skipped)."""
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def entry_time(entry: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["time"])).astimezone(UTC)


def discovery_cycles(entries: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """``[start, end]`` of every discovery cycle the replica finished (from ``discovery cycle done``).

    The record's time is the end; ``duration_ms`` reaches back to the start.
    """
    cycles: list[Interval] = []
    for entry in entries:
        if entry.get("message") == "discovery cycle done":
            end = entry_time(entry)
            cycles.append((end - timedelta(milliseconds=float(entry["duration_ms"])), end))
    return cycles


def lease_lost_lines(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Log lines saying the replica stopped polling because its lease moved (``LeaseLost``)."""
    return [
        f"{entry.get('time')} {entry.get('message')}"
        for entry in entries
        if str(entry.get("message", "")).startswith("stopped polling")
        or "LeaseLost" in str(entry.get("exception", ""))
    ]


# -- what the emulator saw --------------------------------------------------------------------


def review_card_pair(activity: Any, user_oid: str | None) -> Pair | None:
    """(reviewer, instance) of a review card activity; None for anything else (reminders...)."""
    if not isinstance(activity, Mapping) or user_oid is None:
        return None
    for attachment in activity.get("attachments") or []:
        content = attachment.get("content") if isinstance(attachment, Mapping) else None
        if not isinstance(content, Mapping):
            continue
        data = ((content.get("refresh") or {}).get("action") or {}).get("data") or {}
        if data.get("card") == "review" and data.get("instanceId"):
            return (user_oid.lower(), str(data["instanceId"]))
    return None


@dataclass(frozen=True)
class CardSend:
    """One new review card the connector accepted."""

    pair: Pair
    at: datetime
    #: (conversation id, activity id): activity ids are unique only within a conversation.
    message: tuple[str, str]


def review_card_sends(connector: Connector) -> list[CardSend]:
    """Every new review card the connector accepted, oldest first.

    Posts (send, or the activity of a create-conversation) answered 201; edits are not counted.
    Run on the emulator's thread (its records grow there).
    """
    sends: list[CardSend] = []
    for record in list(connector.records):
        if record.operation not in ("send", "create_conversation") or record.status != 201:
            continue
        pair = review_card_pair(record.activity, record.user_oid)
        if pair is not None:
            message = (record.conversation_id or "", record.activity_id or "")
            sends.append(CardSend(pair, record.at.astimezone(UTC), message))
    return sends


def accepted_review_cards(connector: Connector) -> Counter[Pair]:
    """How many new review cards the connector accepted per (reviewer, review)."""
    return Counter(send.pair for send in review_card_sends(connector))


def sends_outside_lease(
    sends: Iterable[CardSend],
    senders: Mapping[tuple[str, str], str],
    held: Mapping[str, Sequence[Interval]],
    *,
    slack_s: float,
) -> list[str]:
    """Sends made while their sender did not hold the delivery lease.

    ``senders`` maps a message to the worker whose outbox row recorded it as sent. A send
    no row recorded (its sender died before writing it down; the row was finished later by
    another worker, or the card was sent again) has no known sender: it must then fall inside
    the lease of *some* holder.
    """
    anyone = [span for spans in held.values() for span in spans]
    outside: list[str] = []
    for send in sends:
        worker = senders.get(send.message)
        spans = held.get(worker, []) if worker is not None else anyone
        if outside_intervals(spans, send.at, send.at, slack_s=slack_s):
            outside.append(f"{send.pair} by {worker or 'an unrecorded sender'} at {send.at}")
    return outside


def visible_review_cards(connector: Connector, reviewers: Iterable[str]) -> Counter[Pair]:
    """Review cards in the reviewers' chats now (what the people see)."""
    counts: Counter[Pair] = Counter()
    for reviewer in reviewers:
        for message in connector.messages_to(reviewer):
            pair = review_card_pair(message.activity, message.user_oid)
            if pair is not None:
                counts[pair] += 1
    return counts


@dataclass
class GraphLog:
    """Every Graph request the emulator answered, read from its bounded log as it grows.

    The emulator keeps the last 10 000 requests; polling every 2 s for a minute comes close, so
    this follows the log while the test runs and fails if it ever fell behind.
    """

    emulator: EmulatorThread
    interval_s: float = 0.1
    requests: list[tuple[str, str, str, int]] = field(default_factory=list)
    _seen: int = 0
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._seen = await self.emulator.arun(lambda: self.emulator.cloud.graph.request_count)
        self._task = asyncio.create_task(self._run(), name="graph-log")

    def _take(self) -> tuple[int, list[tuple[str, str, str, int]]]:
        graph = self.emulator.cloud.graph
        count, log = graph.request_count, graph.request_log
        new = count - self._seen
        if new > len(log):
            raise AssertionError(f"the Graph request log dropped {new - len(log)} requests")
        return count, list(log)[len(log) - new :] if new else []

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self.collect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)

    async def collect(self) -> None:
        count, entries = await self.emulator.arun(self._take)
        self._seen = count
        self.requests.extend(entries)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self.collect()

    def patches_of(self, decision_id: str) -> list[tuple[str, str, str, int]]:
        """PATCH requests on one decision item (plain or inside a ``$batch``)."""
        return [
            r for r in self.requests if r[0] == "PATCH" and r[2].rstrip("/").endswith(decision_id)
        ]
