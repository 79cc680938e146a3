"""The status page in a real browser (headless Chromium, the system's build, through Playwright)."""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.web.keys import DISCOVERY, OUTBOX
from emulator.seeds import demo_id
from tests.bot_harness import BotOnEmulator, bot_on_emulator
from tests.browser import skip_or_fail

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
JOHANNA = demo_id("user", "johanna")
ROLE = demo_id("review", "user_admin_role")


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; scripts/test does it as root)"
    return None


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[BotOnEmulator]:
    async with bot_on_emulator(tmp_path, admin_token="status-token") as running:
        await running.app[DISCOVERY].run_once()
        await running.app[OUTBOX].run_once()
        yield running


async def test_status_page_renders_and_shows_a_decision_after_one_refresh(
    harness: BotOnEmulator, tmp_path: Path
) -> None:
    problem = _browser_missing()
    skip_or_fail(problem)
    from playwright.async_api import async_playwright

    url = str(harness.client.make_url("/"))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=ARGS, headless=True
        )
        try:
            context = await browser.new_context(
                extra_http_headers={"Authorization": "Bearer status-token"}
            )
            page = await context.new_page()
            await page.goto(url)
            assert await page.title() == "Access Review Bot — status"
            reviews = await page.locator("#reviews").inner_text()
            assert reviews.startswith("8 reviews in progress")
            row = page.locator("#review-table tr", has_text="User Administrator role")
            assert "0 of 2 items decided" in await row.inner_text()
            # The ids an admin needs for the command line are on the page.
            assert f"instance {ROLE}" in await row.inner_text()
            assert "No decision yet" in await page.locator("#decisions").inner_text()
            # Every number is labelled, and the total agrees with the per-review counts.
            per_review = [
                await r.inner_text() for r in await page.locator("#review-table .count").all()
            ]
            left = sum(
                int(total) - int(done)
                for done, total in (re.match(r"(\d+) of (\d+)", c).groups() for c in per_review)
            )
            pending = await page.locator("#pending").inner_text()
            assert pending == f"{left} items to decide"
            # Reviewers by name, with the object id in a detail line.
            reviewers = await page.locator("#reviewers").inner_text()
            assert "Johanna Lorenz" in reviewers and JOHANNA in reviewers
            await page.screenshot(path=str(tmp_path / "status-before.png"))

            # Johanna approves one item in Teams.
            item = demo_id("decision", f"user_admin_role:{demo_id('user', 'megan')}")
            answer = await harness.teams.card_action(
                JOHANNA,
                "decide",
                {"instanceId": ROLE, "itemId": item, "decision": "Approve", "page": 0},
                sso=True,
            )
            assert answer.body["statusCode"] == 200

            await page.reload()
            assert "1 of 2 items decided" in await row.inner_text()
            decisions = await page.locator("#decisions").inner_text()
            # Who and about whom, by name: not object ids and item GUIDs.
            assert "Approve" in decisions and "Johanna Lorenz" in decisions
            assert "Megan Bowen" in decisions and item not in decisions
            assert JOHANNA not in decisions

            # The review's audit link downloads the trail with that decision in it.
            link = row.get_by_role("link", name="CSV")
            async with page.expect_download() as download_info:
                await link.click()
            download = await download_info.value
            assert download.suggested_filename == f"audit-{ROLE}.csv"
            saved = tmp_path / "audit.csv"
            await download.save_as(saved)
            rows = list(csv.DictReader(saved.open(encoding="utf-8")))
            assert [r["item_id"] for r in rows if r["action"] == "decision"] == [item]
        finally:
            await browser.close()
