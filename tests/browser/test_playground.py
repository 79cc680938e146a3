"""The real Microsoft 365 Agents Playground (npm, pinned in package.json) against the real demo.

The README's path, end to end: the demo (``app.py serve``, a subprocess in a folder of its own)
and ``npm run playground``'s command started in the repository root, where the playground reads the
project's ``.m365agentsplayground.yml`` — so a config the playground refuses (it exits 1, quietly
without a terminal) fails here. Headless Chromium then opens the playground's page as a user would:
the playground connects (its log), the bot gets its ``conversationUpdate``/``installationUpdate``
(it stores Alex's conversation with the playground's connector), the bot's welcome and review
cards show, ``pending`` lists Alex's reviews, and Approve on a card records the decision as Alex.

The playground's port is chosen with ``-p 0`` (its CLI: "fallback to random if occupied"); it
prints the port it got. Its own log goes to ``devTools/`` in the folder it runs in (ignored by git).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.store import open_store
from emulator.seeds import demo_id
from tests.browser import skip_or_fail
from tests.cli.test_cli import run_app
from tests.cli.test_demo_cli import RunningDemo, start_demo, stop_demo

ROOT = Path(__file__).resolve().parents[2]
PLAYGROUND = ROOT / "node_modules/.bin/agentsplayground"
PLAYGROUND_LOG = ROOT / "devTools/m365agentsplayground.log"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or ROOT / "test-artifacts") / "playground"
ALEX = demo_id("user", "alex")
WELCOME = "Hi, I'm Access Review Bot"

pytestmark = pytest.mark.slow


def playground_command(endpoint: str) -> list[str]:
    """``npm run playground``'s command from package.json, for the bot at ``endpoint``."""
    script = json.loads((ROOT / "package.json").read_text())["scripts"]["playground"]
    argv = shlex.split(script)
    assert argv[0] == "agentsplayground" and "--disable-telemetry" in argv
    argv[argv.index("-e") + 1] = endpoint
    return [str(PLAYGROUND), *argv[1:], "-p", "0"]


class Playground:
    def __init__(self, endpoint: str, output: Path) -> None:
        self.output = output
        self.log_start = PLAYGROUND_LOG.stat().st_size if PLAYGROUND_LOG.exists() else 0
        if PLAYGROUND_LOG.exists():
            # It truncates its log at start: mark this run's beginning so an old log can never
            # pass for this run's.
            PLAYGROUND_LOG.unlink()
            self.log_start = 0
        with output.open("wb") as sink:
            self.process = subprocess.Popen(
                playground_command(endpoint),
                cwd=ROOT,
                env={**os.environ, "BROWSER": "none"},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        """What the playground wrote to its own log during this test."""
        if not PLAYGROUND_LOG.exists():
            return ""
        with PLAYGROUND_LOG.open("rb") as handle:
            # The playground starts its log afresh, or appends to it: read only this run's part.
            if PLAYGROUND_LOG.stat().st_size >= self.log_start:
                handle.seek(self.log_start)
            return handle.read().decode(errors="replace")

    def describe(self) -> str:
        return f"output:\n{self.output.read_text(errors='replace')}\nlog:\n{self.log()[-3000:]}"

    async def port(self, *, timeout_s: float = 60.0) -> int:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = re.search(r"Listening on (\d+)", self.output.read_text(errors="replace"))
            if found:
                return int(found[1])
            if self.process.poll() is not None:
                raise AssertionError(f"the playground exited ({self.process.returncode})")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the playground printed no port:\n{self.describe()}")
            await asyncio.sleep(0.05)  # re-read its output file

    async def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: it and its children
            try:
                await asyncio.to_thread(self.process.wait, 15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                await asyncio.to_thread(self.process.wait, 15)


def _missing() -> str | None:
    for needed in (PLAYGROUND, Path(CHROMIUM)):
        if not needed.exists():
            return f"{needed} is missing (scripts/test runs npm ci and installs Chromium)"
    return None


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[RunningDemo]:
    problem = _missing()
    skip_or_fail(problem)
    running = await start_demo(tmp_path)
    try:
        await running.wait_for(r"^Next:$")
        yield running
    finally:
        await stop_demo(running)


async def _conversation_service_url(demo: RunningDemo) -> str:
    store = await open_store(f"sqlite:///{demo.folder / 'data/demo.db'}", migrate=False)
    try:
        reference = await store.get_conversation_reference(
            tenant_id=demo.state["tenant_id"], user_oid=ALEX
        )
    finally:
        await store.close()
    return str((reference or {}).get("serviceUrl") or "")


async def test_the_real_playground_connects_greets_lists_and_records_a_decision(
    demo: RunningDemo, tmp_path: Path
) -> None:
    port = int((await demo.wait_for(r"bot endpoint +http://127\.0\.0\.1:(\d+)/"))[1])
    playground = Playground(f"http://127.0.0.1:{port}/api/messages", tmp_path / "playground.out")
    try:
        web_port = await playground.port()
        from playwright.async_api import async_playwright

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                try:
                    await page.goto(f"http://127.0.0.1:{web_port}/")
                except Exception as exc:
                    # It prints its port before it reads its config, then exits on a bad one.
                    await asyncio.to_thread(playground.process.wait, 10)
                    raise AssertionError(
                        f"the playground is not serving (exit {playground.process.returncode}):\n"
                        f"{playground.describe()}"
                    ) from exc
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                try:
                    # The bot's welcome (its answer to the playground's conversationUpdate) and
                    # Alex's review cards, moved to the playground's chat.
                    await page.get_by_text(WELCOME).first.wait_for(timeout=45_000)
                    await page.get_by_text("Access review:").first.wait_for(timeout=45_000)
                finally:
                    await page.screenshot(path=str(ARTIFACTS / "connected.png"))

                # The playground's log: it found the bot and connected.
                log = playground.log()
                assert "Waiting for connection of endpoint" in log, playground.describe()
                assert re.search(r"wait-on\(\d+\) complete", log), playground.describe()
                assert "Failed to start" not in log and "ConfigFileParseError" not in log
                # The bot got the playground's conversation: Alex's chat is now there.
                service_url = await _conversation_service_url(demo)
                assert f":{web_port}/" in service_url, service_url

                # The README's path: "pending" lists Alex's reviews, Open shows one (with the
                # way back), Approve records the decision as Alex.
                box = page.locator("[data-lexical-editor='true']")
                await box.click()
                await page.keyboard.type("pending")
                await page.keyboard.press("Enter")
                listing = page.locator(".ac-adaptiveCard", has_text="Your open access reviews")
                await listing.last.wait_for(timeout=30_000)
                await listing.last.get_by_role("button", name="Open", exact=True).first.click()
                review = page.locator(".ac-adaptiveCard", has_text="Back to my reviews").last
                await review.wait_for(timeout=30_000)
                await review.get_by_role("button", name="Approve", exact=True).first.click()
                await review.get_by_text("Approved by you").first.wait_for(timeout=30_000)
                await page.screenshot(path=str(ARTIFACTS / "decided.png"))
            finally:
                await browser.close()
    finally:
        await playground.stop()

    # The README's audit command shows the decision, by Alex.
    listed = json.loads(run_app(demo.folder, "reviews", "--format", "json").stdout)
    decisions: list[dict[str, Any]] = []
    for review in listed:
        exported = run_app(
            demo.folder, "audit", "export", "--instance", review["instance_id"], "--format", "json"
        )
        decisions += [r for r in json.loads(exported.stdout) if r["action"] == "decision"]
    assert [(d["actor"], d["result"], d["detail"]["decision"]) for d in decisions] == [
        (ALEX, "recorded", "Approve")
    ]


async def test_a_config_the_playground_refuses_makes_it_exit(tmp_path: Path) -> None:
    """The check above has teeth: the playground really refuses an incomplete config."""
    problem = _missing()
    skip_or_fail(problem)
    config = (ROOT / ".m365agentsplayground.yml").read_text()
    broken = config[: config.index("personalChat:")]
    (tmp_path / ".m365agentsplayground.yml").write_text(broken)
    done = await asyncio.to_thread(
        subprocess.run,
        playground_command("http://127.0.0.1:9/api/messages"),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    log = (tmp_path / "devTools/m365agentsplayground.log").read_text()
    assert "must have required property 'personalChat'" in log
