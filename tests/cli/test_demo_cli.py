"""The demo from the terminal: ``python app.py serve --port 0`` in a fresh folder, then the other
commands against it, each a subprocess, as the README tells a newcomer to use them.

One run covers: the listening address (127.0.0.1 unless told otherwise), a short start-up whose
"Next:" block comes after the first discovery and cards, a decision, ``reviews`` and
``audit export`` showing it, and ``python -m emulator token`` reading ``reviewedBy`` from the
emulated Graph.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.store import open_store
from emulator.seeds import demo_id
from tests.cli.test_cli import ROOT, cli_env, run_app

ALEX = demo_id("user", "alex")
pytestmark = pytest.mark.slow


@dataclass
class RunningDemo:
    folder: Path
    process: subprocess.Popen[bytes]
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    async def wait_for(self, pattern: str, *, timeout_s: float = 60.0) -> re.Match[str]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            if (found := re.search(pattern, self.text(), re.M)) is not None:
                return found
            if self.process.poll() is not None:
                raise AssertionError(f"the demo exited ({self.process.returncode}):\n{self.text()}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout_s}s:\n{self.text()}")
            await asyncio.sleep(0.05)  # re-read the process's output file

    @property
    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.folder / "data/demo-state.json").read_text())
        return data


async def start_demo(folder: Path, *args: str) -> RunningDemo:
    output = folder / "demo.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "serve", "--port", "0", *args],
            cwd=folder,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return RunningDemo(folder=folder, process=process, output=output)


async def stop_demo(demo: RunningDemo) -> None:
    if demo.process.poll() is None:
        demo.process.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(demo.process.wait, 30)
        except subprocess.TimeoutExpired:
            demo.process.kill()
            await asyncio.to_thread(demo.process.wait, 10)


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[RunningDemo]:
    running = await start_demo(tmp_path)
    try:
        yield running
    finally:
        await stop_demo(running)


def listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a listening TCP socket on ``port`` (from /proc/net/tcp)."""
    found: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, _remote, state = line.split()[1:4]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


def _activity(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "invoke",
        "id": uuid.uuid4().hex,
        "channelId": "msteams",
        "serviceUrl": state["connector_url"],
        "from": {"id": f"29:{ALEX}", "name": "Alex Wilber", "aadObjectId": ALEX},
        "recipient": {"id": "28:bot", "name": "Access Review Bot"},
        "conversation": {
            "id": "a:cli-test-alex",
            "conversationType": "personal",
            "tenantId": state["tenant_id"],
        },
        "channelData": {"tenant": {"id": state["tenant_id"]}},
        **extra,
    }


async def _graph_get(state: dict[str, Any], command: str) -> Any:
    """Run the curl line that ``python -m emulator token --curl`` printed, with httpx."""
    argv = shlex.split(command)
    assert argv[:3] == ["curl", "-s", "--cacert"]
    ca, header, url = argv[3], argv[5], argv[6]
    assert ca == state["ca_pem_path"] and header.startswith("Authorization: Bearer ey")
    context = ssl.create_default_context(cafile=ca)
    async with httpx.AsyncClient(verify=context, trust_env=False) as http:
        response = await http.get(url, headers={"Authorization": header.split(": ", 1)[1]})
    assert response.status_code == 200, response.text
    return response.json()


def run_module(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args],
        cwd=folder,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_demo_from_the_terminal_to_an_audited_decision(demo: RunningDemo) -> None:
    port = int((await demo.wait_for(r"bot endpoint +http://127\.0\.0\.1:(\d+)/api/messages"))[1])
    await demo.wait_for(r"^Next:$")
    # Demo mode is unauthenticated: it listens on loopback only.
    assert listening_addresses(port) == {"127.0.0.1"}
    text = demo.text()
    # The start-up is a few lines, and "Next:" comes after the first discovery and cards.
    before_next = text[: text.index("\nReady:")]
    info_lines = [line for line in before_next.splitlines() if " INFO " in line]
    assert len(info_lines) <= 4, info_lines
    # Nothing about a "client secret" a newcomer never configured: the emulator's is made up.
    assert "credential:" not in before_next and "client secret" not in before_next
    assert "discovery cycle done" in before_next
    ready = re.search(r"Ready: (\d+) reviews in progress found, (\d+) review cards sent", text)
    assert ready is not None and int(ready[1]) > 0 and int(ready[2]) > 0
    assert "--curl DEFINITION-ID INSTANCE-ID | sh" in text
    assert text.rstrip().endswith("app.py demo clock +1d")

    # reviews: the ids an admin needs.
    listed = run_app(demo.folder, "reviews", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    reviews = {r["instance_id"]: r for r in json.loads(listed.stdout)}
    assert len(reviews) == int(ready[1])

    # Alex approves one of their items (an unsigned invoke, as the playground sends it).
    store = await open_store(f"sqlite:///{demo.folder / 'data/demo.db'}", migrate=False)
    try:
        rows = await store.list_assignments(reviewer_oid=ALEX)
        _reviewer, instance_id, item_id = sorted(rows)[0]
    finally:
        await store.close()
    state = demo.state
    invoke = _activity(
        state,
        name="adaptiveCard/action",
        value={
            "action": {
                "type": "Action.Execute",
                "verb": "decide",
                "data": {
                    "instanceId": instance_id,
                    "itemId": item_id,
                    "decision": "Approve",
                    "page": 0,
                },
            },
            "trigger": "manual",
        },
    )
    async with httpx.AsyncClient(trust_env=False) as http:
        answer = await http.post(f"http://127.0.0.1:{port}/api/messages", json=invoke)
    assert answer.status_code == 200, answer.text
    assert answer.json()["statusCode"] == 200

    # The audit command shows the decision, by Alex.
    audit = run_app(demo.folder, "audit", "export", "--instance", instance_id, "--format", "json")
    assert audit.returncode == 0, audit.stderr
    decisions = [r for r in json.loads(audit.stdout) if r["action"] == "decision"]
    assert [(d["actor"], d["item_id"], d["result"]) for d in decisions] == [
        (ALEX, item_id, "recorded")
    ]

    # The emulated Graph has it too, reviewedBy Alex: read with the app's token...
    definition_id = reviews[instance_id]["definition_id"]
    app_curl = run_module(demo.folder, "token", "--app", "--curl", definition_id, instance_id)
    assert app_curl.returncode == 0, app_curl.stderr
    listing = await _graph_get(state, app_curl.stdout)
    item = next(d for d in listing["value"] if d["id"] == item_id)
    assert item["decision"] == "Approve" and item["reviewedBy"]["id"] == ALEX
    # ...and with Alex's own, through filterByCurrentUser as Graph requires of a reviewer.
    alex_curl = run_module(
        demo.folder, "token", "--user", "alex", "--curl", definition_id, instance_id
    )
    assert alex_curl.returncode == 0, alex_curl.stderr
    assert shlex.split(alex_curl.stdout)[-1].endswith("/filterByCurrentUser(on='reviewer')")
    mine = await _graph_get(state, alex_curl.stdout)
    assert item_id in {d["id"] for d in mine["value"]}
    # The bare token is one line on stdout, for TOKEN=$(...).
    bare = run_module(demo.folder, "token", "--app")
    assert bare.returncode == 0 and re.fullmatch(r"ey[\w-]+\.[\w-]+\.[\w-]+\n", bare.stdout)
    unknown = run_module(demo.folder, "token", "--user", "nobody")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: no single demo person")

    # "Next:" step 5 reaches this demo on its own port (not PORT's 3978), from its state file.
    shown = run_app(demo.folder, "demo", "clock")
    assert shown.returncode == 0 and "ahead of the wall clock" in shown.stdout, shown.stderr

    # The state file is the running demo's only: gone when it stops, and then the command says so.
    await stop_demo(demo)
    assert not (demo.folder / "data/demo-state.json").exists()
    after = run_module(demo.folder, "token", "--app")
    assert after.returncode == 1 and "start the demo first" in after.stderr
    # The store is still there for the admin commands after the demo stopped.
    again = run_app(demo.folder, "audit", "export", "--instance", instance_id)
    assert again.returncode == 0 and item_id in again.stdout


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("--host", "127.0.0.2"), {}, "127.0.0.2"),
        ((), {"HOST": "127.0.0.3"}, "127.0.0.3"),
    ],
)
async def test_the_listening_address_follows_host_and_the_flag(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    output = tmp_path / "demo.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", "0", *args],
            cwd=tmp_path,
            env=cli_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    running = RunningDemo(folder=tmp_path, process=process, output=output)
    try:
        found = await running.wait_for(r"bot endpoint +http://[\d.]+:(\d+)/api/messages")
        assert f"listening on {expected}" in running.text()
        assert listening_addresses(int(found[1])) == {expected}
        # The commands find the demo where it listens, whatever HOST and --port said.
        shown = run_app(tmp_path, "demo", "clock", env=cli_env(**env))
        assert shown.returncode == 0 and "ahead of the wall clock" in shown.stdout, shown.stderr
    finally:
        await stop_demo(running)
