"""``WORKERS=N`` (issue 15): N serving processes of one ``app.py serve`` on one port.

Over loopback: the test holds a port-0 socket with ``SO_REUSEPORT`` (so the port is known and
stays its own), then starts ``app.py serve`` with ``WORKERS=2`` on that port, on SQLite (WAL)
or PostgreSQL, against the emulator on a thread of the test. It checks that

- requests are answered by both workers (``/healthz`` names the pid), never by the parent;
- exactly one worker holds every background lease (``/readyz`` says which pid holds them);
- a click sent through each worker (on a connection whose worker ``/healthz`` named) writes its
  decision to Graph exactly once;
- a worker that dies is started again (a new pid serves), and SIGTERM to the parent ends every
  worker and the parent with status 0;
- workers that die at every start make the parent stop with status 1.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.store import open_store
from emulator.server import EmulatorConfig
from emulator.teams_client import TeamsClient
from emulator.threaded import EmulatorThread
from tests.process.procs import heap_frozen_objects
from tests.replicas.cluster import (
    APP,
    GraphLog,
    eventually,
    fresh_database,
    replica_environment,
)

pytestmark = [pytest.mark.slow]

SEED_PARAMS: dict[str, Any] = {"decisions": 60, "reviewers": 20, "instances": 10}
WORKERS = 2
LEASE_NAMES = ("discovery-poll", "delivery", "reminders")
READY_LINE = re.compile(r"worker (\d+) \(pid (\d+)\) ready")


def _reserve_port() -> socket.socket:
    """A port-0 socket bound with SO_REUSEPORT (never listening): the workers bind beside it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Served:
    """``python app.py serve`` with ``WORKERS`` set; output in a file; ended by its own pid."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "serve.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(APP), "serve"],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready_workers(self) -> dict[int, list[int]]:
        """Worker index → the pids that said they were ready, in order (restarts append)."""
        found: dict[int, list[int]] = {}
        for index, pid in READY_LINE.findall(self.log_text()):
            found.setdefault(int(index), []).append(int(pid))
        return found

    def current_pids(self) -> dict[int, int]:
        return {index: pids[-1] for index, pids in self.ready_workers().items()}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        # Workers outlive a SIGKILLed parent: end the ones this test started, by pid.
        for pids in self.ready_workers().values():
            for pid in pids:
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    thread = EmulatorThread(EmulatorConfig(seed="generated", seed_params=SEED_PARAMS))
    yield thread


async def _pid_of(http: httpx.AsyncClient, base: str) -> int:
    response = await http.get(f"{base}/healthz", timeout=10.0)
    assert response.status_code == 200, response.text
    pid: int = response.json()["pid"]
    return pid


async def _clients_per_worker(
    base: str, pids: set[int]
) -> tuple[dict[int, httpx.AsyncClient], list[httpx.AsyncClient]]:
    """One single-connection client per worker pid: a kept-alive connection stays on its worker."""
    per_pid: dict[int, httpx.AsyncClient] = {}
    opened: list[httpx.AsyncClient] = []

    async def found_all() -> bool:
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=20.0)
        opened.append(client)
        pid = await _pid_of(client, base)
        per_pid.setdefault(pid, client)
        return set(per_pid) >= pids

    await eventually(found_all, timeout_s=30, what="a connection to every worker", interval_s=0)
    return per_pid, opened


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_workers_share_the_port_and_one_runs_the_background(
    tmp_path: Path, emulator: EmulatorThread, database: str
) -> None:
    if database == "postgresql":
        async with fresh_database() as url:
            await _scenario(tmp_path, emulator, url)
    else:
        await _scenario(tmp_path, emulator, f"sqlite:///{tmp_path / 'bot.db'}")


async def _scenario(tmp_path: Path, emulator: EmulatorThread, database_url: str) -> None:
    reserved = _reserve_port()
    port = reserved.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    async with emulator as cloud:
        env = replica_environment(
            cloud,
            database_url=database_url,
            token_cache_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
            port=port,
            extra={"WORKERS": str(WORKERS), "LOG_FORMAT": "text", "LEASE_TTL_S": "6"},
        )
        cloud.connector.bot_endpoint = f"{base}/api/messages"
        served = Served(env, tmp_path / "serve")
        opened: list[httpx.AsyncClient] = []
        graph_log = GraphLog(emulator)
        await graph_log.start()
        try:

            async def all_ready() -> bool:
                assert served.process.poll() is None, f"exited early:\n{served.log_text()}"
                return len(served.current_pids()) == WORKERS

            await eventually(all_ready, timeout_s=60, what="every worker ready")
            pids = set(served.current_pids().values())
            assert served.process.pid not in pids and len(pids) == WORKERS

            # 1. Both workers answer, and only they.
            per_pid, opened = await _clients_per_worker(base, pids)
            assert set(per_pid) == pids
            # Each worker set its start-up heap aside from the collector (bot.heap).
            for client in per_pid.values():
                assert await heap_frozen_objects(client, base) > 10_000

            # 2. One process holds every background lease: worker 0.
            holder_pid = served.current_pids()[0]
            views: dict[int, dict[str, Any]] = {}

            async def leases_taken() -> bool:
                for pid, client in per_pid.items():
                    response = await client.get(f"{base}/readyz")
                    assert response.status_code == 200, response.text
                    body = response.json()
                    assert body["pid"] == pid  # the kept-alive connection stayed on its worker
                    views[pid] = body["checks"]["leases"]
                return all(views[holder_pid][name].get("mine") for name in LEASE_NAMES)

            await eventually(leases_taken, timeout_s=30, what="worker 0 holding every lease")
            for pid, leases in views.items():
                if pid != holder_pid:
                    assert not any(leases[name].get("mine") for name in LEASE_NAMES), views
                for name in LEASE_NAMES:
                    assert leases[name]["holder"] == views[holder_pid][name]["holder"], views

            # 3. A click through each worker writes to Graph once.
            store = await open_store(database_url, migrate=False, pool_size=2)
            try:
                expected = await emulator.arun(
                    lambda: {
                        (reviewer, instance.id)
                        for instance in cloud.tenant.instances.values()
                        if cloud.tenant.instance_status(instance) == "InProgress"
                        for reviewer in cloud.tenant.assignments(instance)
                    }
                )
                known: list[tuple[str, str, str]] = []

                async def discovered() -> bool:
                    known[:] = await store.list_assignments()
                    return {(r, i) for r, i, _ in known} >= expected

                await eventually(discovered, timeout_s=60, what="discovery by worker 0")
            finally:
                await store.close()
            clicks: list[tuple[int, str, str, str]] = []
            used: set[str] = set()
            for reviewer, instance_id, item_id in sorted(known):
                if reviewer in used:
                    continue
                used.add(reviewer)
                pid = sorted(pids)[len(clicks) % WORKERS]
                clicks.append((pid, reviewer, instance_id, item_id))
                if len(clicks) == 2 * WORKERS:
                    break
            answers = []
            for pid, reviewer, instance_id, item_id in clicks:
                teams = TeamsClient(
                    cloud.identity,
                    cloud.connector_url,
                    f"{base}/api/messages",
                    cloud.bot_app_id,
                    cloud.tenant_id,
                    per_pid[pid],
                    conversation_id_for=cloud.connector.conversation_id_for,
                )
                answer = await teams.card_action(
                    reviewer,
                    "decide",
                    {"instanceId": instance_id, "itemId": item_id, "decision": "Deny", "page": 0},
                    sso=True,
                )
                answers.append(answer)
                assert await _pid_of(per_pid[pid], base) == pid  # still that worker's connection
            for answer, click in zip(answers, clicks, strict=True):
                assert answer.status == 200, (click, answer)
            await graph_log.stop()
            for _pid, _reviewer, _instance_id, item_id in clicks:
                patches = graph_log.patches_of(item_id)
                assert len(patches) == 1, (item_id, patches)
                assert patches[0][3] == 204, patches

            # 4. A worker that dies is started again.
            victim_index = 1
            victim = served.current_pids()[victim_index]
            os.kill(victim, signal.SIGKILL)

            async def replaced() -> bool:
                assert served.process.poll() is None, f"parent exited:\n{served.log_text()}"
                return served.current_pids()[victim_index] != victim

            await eventually(replaced, timeout_s=60, what="the killed worker started again")
            new_pids = set(served.current_pids().values())
            assert victim not in new_pids
            _clients, more = await _clients_per_worker(base, new_pids)
            opened.extend(more)

            # 5. SIGTERM: every worker stops, the parent exits 0.
            for client in opened:
                await client.aclose()
            opened.clear()
            served.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(served.process.wait, 60)
            assert code == 0, served.log_text()[-3000:]
            for pid in new_pids:
                assert not _alive(pid), f"worker {pid} outlived the parent"
        finally:
            for client in opened:
                await client.aclose()
            served.stop()
            reserved.close()


async def test_workers_that_die_at_every_start_stop_the_parent(
    tmp_path: Path, emulator: EmulatorThread
) -> None:
    # A store the workers cannot open: every start fails the same way.
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the database's folder should be")
    reserved = _reserve_port()
    async with emulator as cloud:
        env = replica_environment(
            cloud,
            database_url=f"sqlite:///{blocked / 'bot.db'}",
            token_cache_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
            port=reserved.getsockname()[1],
            extra={"WORKERS": str(WORKERS), "LOG_FORMAT": "text"},
        )
        served = Served(env, tmp_path / "serve")
        try:
            code = await asyncio.to_thread(served.process.wait, 120)
            assert code == 1, served.log_text()[-3000:]
            assert "starting it again" in served.log_text()
            assert "stopping" in served.log_text()
        finally:
            served.stop()
            reserved.close()
