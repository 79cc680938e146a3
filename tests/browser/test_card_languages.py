"""The cards in every language, rendered by the official Adaptive Cards JavaScript renderer (npm
``adaptivecards``, what Teams' web and desktop clients render cards with) in headless Chromium
with Teams' light host config, at a phone's width (360 px) and a desktop chat's (560 px).

- The review card in German (long compound words) and Japanese (no spaces to break at) wraps:
  its long lines take several lines, and no element is wider than the card or clipped.
- Every card kind and state, in every language, fits a phone: no text is clipped and no button
  row runs off the card. Nothing in the layout may count on text being as short as English.

Screenshots of the German and Japanese review cards are kept under ``TEST_ARTIFACTS_DIR`` (default
``test-artifacts/`` in the repository, ignored by git), in ``card-languages/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cards import render_review_card
from cards.strings import tables
from tests.cards.card_scenarios import CONTEXT, review_view, scenarios, stale_guest, user_item

ROOT = Path(__file__).resolve().parents[2]
HOSTCONFIG = Path(__file__).parent / "hostconfigs" / "teams-light.json"
RENDERER = ROOT / "node_modules/adaptivecards/dist/adaptivecards.min.js"
MARKDOWN = ROOT / "node_modules/markdown-it/dist/browser/markdown-it.umd.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or ROOT / "test-artifacts") / "card-languages"
LOCALES = ("en-US", "de-DE", "fr-FR", "es-ES", "pt-BR", "it-IT", "nl-NL", "ja-JP", "zh-CN")
WIDTHS_PX = (360, 560)

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<style>body{margin:0;padding:16px;box-sizing:border-box}</style></head>
<body><div id="host"></div></body></html>"""

RENDER = """([card, hostConfig, width]) => {
    document.body.style.width = width + "px";
    // TextBlock markdown as Teams' clients process it (bold, lists), with markdown-it.
    AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {
        result.outputHtml = markdownit({ linkify: true }).render(text);
        result.didProcess = true;
    };
    const adaptive = new AdaptiveCards.AdaptiveCard();
    adaptive.hostConfig = new AdaptiveCards.HostConfig(hostConfig);
    adaptive.parse(card);
    const host = document.getElementById("host");
    host.replaceChildren(adaptive.render());
    document.body.style.background = hostConfig.containerStyles.default.backgroundColor;
    return host.getBoundingClientRect().width;
}"""

# Every box that is clipped (its content wider than itself) or reaches past the card. Inline runs
# are measured through the blocks that hold them: a run that wraps has a space hanging at the
# end of each line, which reaches a few pixels past its block without being cut (so a few pixels
# are allowed everywhere; a word cut short or a button off the card is far more).
#
# One thing is let through: a box clipped because it holds a single unbreakable token of
# UNBREAKABLE_CHARS or more (a guest's "#EXT#" user principal name). Such a token can only be text
# from people (no word of ours is that long: test_no_word_of_ours_is_that_long), which stays in
# a TextRun to be shown and copied exactly (issue 16), and the renderer gives RichTextBlocks no
# word-wrap; decisions.md says so.
UNBREAKABLE_CHARS = 30
OVERFLOWS = """(unbreakable) => {
    const slack = 6;
    const host = document.getElementById("host").getBoundingClientRect();
    // Spaces and CJK characters are break opportunities; what is left between them cannot wrap.
    const fromPeople = (text) => text.split(/[\\s\\u3000-\\u9fff\\uff00-\\uffef]+/).some(
        (token) => token.length >= unbreakable);
    const found = [];
    for (const element of document.querySelectorAll("#host *")) {
        const box = element.getBoundingClientRect();
        if (box.width === 0 || getComputedStyle(element).display === "inline") continue;
        const clipped = element.clientWidth > 0 && element.scrollWidth > element.clientWidth + slack
            && !fromPeople(element.textContent);
        const beyond = box.right > host.right + slack || box.left < host.left - slack;
        if (clipped || beyond) {
            found.push(`${element.tagName}.${element.className}: ${element.textContent.slice(0, 60)}`);
        }
    }
    return found;
}"""

# How many lines the text block holding ``needle`` takes.
LINES = """(needle) => {
    const blocks = [...document.querySelectorAll("#host .ac-richTextBlock, #host .ac-textBlock")];
    const block = blocks.find((b) => b.textContent.includes(needle));
    if (!block) return 0;
    const run = block.querySelector("span") || block;
    const lineHeight = parseFloat(getComputedStyle(run).lineHeight) || parseFloat(getComputedStyle(run).fontSize) * 1.33;
    return Math.round(block.getBoundingClientRect().height / lineHeight);
}"""

GERMAN_REVIEW = "Vierteljährliche Zugriffsüberprüfung: Gebäudesicherheitsberechtigungen"
JAPANESE_REVIEW = (
    "四半期ごとのビルセキュリティグループのメンバーシップと特権ロールの割り当てのアクセスレビュー"
)


def test_no_word_of_ours_is_that_long() -> None:
    """Every word the cards say themselves is shorter than the tokens the overflow check lets
    through, in every language (a word this long would not fit a phone)."""
    long_words = sorted(
        (language, word)
        for language, table in tables().items()
        for key, entry in table.items()
        if not str(key).startswith(("chat.", "command."))  # chat messages, not cards
        for template in ([entry] if isinstance(entry, str) else list(entry.values()))
        for word in re.split(r"[\s{}]+", template)
        if len(word) >= UNBREAKABLE_CHARS and not re.search(r"[\u3000-\u9fff]", word)
    )
    assert long_words == []


def _problem() -> str | None:
    for needed in (Path(CHROMIUM), RENDERER, MARKDOWN):
        if not needed.exists():
            return f"{needed} is missing (scripts/test installs Chromium and runs npm ci)"
    fc_list = shutil.which("fc-list")
    fonts = (  # the system's font list: is there a font for Japanese at all?
        subprocess.run([fc_list, ":lang=ja", "family"], capture_output=True, text=True, check=False)
        if fc_list
        else None
    )
    if fonts is None or not fonts.stdout.strip():
        return "no Japanese font (scripts/test installs fonts-ipafont-gothic as root)"
    return None


@pytest.fixture(scope="module")
def host_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(HOSTCONFIG.read_text(encoding="utf-8"))
    return config


@pytest.fixture
async def page() -> Any:
    problem = _problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 800, "height": 1200})
            await page.set_content(PAGE)
            await page.add_script_tag(path=str(MARKDOWN))
            await page.add_script_tag(path=str(RENDERER))
            yield page
        finally:
            await browser.close()


def _review_card(locale: str) -> dict[str, Any]:
    """A review whose name, resource and people have the long words of the language."""
    if locale.startswith("ja"):
        name, resource = JAPANESE_REVIEW, "ビルセキュリティ管理者グループ"
        people = (user_item(1, "山田太郎"), stale_guest(2, "佐藤花子"))
    else:
        name, resource = GERMAN_REVIEW, "Zugangskontrollsystemadministratoren"
        people = (
            user_item(1, "Hans-Joachim Müller-Lüdenscheidt"),
            stale_guest(2, "Friederike Oberstaatsanwältin"),
        )
    return render_review_card(
        review_view(
            context=replace(CONTEXT, locale=locale),
            review_name=name,
            resource_name=resource,
            items=people,
            justification_required=True,
            instructions="Bitte prüfen Sie jede Mitgliedschaft."
            if locale.startswith("de")
            else "すべてのメンバーシップを確認してください。",
        )
    )


@pytest.mark.parametrize("width", WIDTHS_PX)
@pytest.mark.parametrize(
    ("locale", "title", "words"),
    [
        ("de-DE", "Zugriffsüberprüfung: ", ("Genehmigen", "Empfehlungen übernehmen", "Fällig am")),
        ("ja-JP", "アクセス レビュー: ", ("承認", "推奨事項を受け入れる", "期限")),
    ],
)
async def test_the_review_card_wraps_long_words_and_cjk_without_overflow(
    page: Any,
    host_config: dict[str, Any],
    locale: str,
    title: str,
    words: tuple[str, ...],
    width: int,
) -> None:
    card = _review_card(locale)
    await page.evaluate(RENDER, [card, host_config, width])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.locator("#host").screenshot(path=str(ARTIFACTS / f"review-{locale}-{width}px.png"))

    assert await page.evaluate(OVERFLOWS, UNBREAKABLE_CHARS) == []
    rendered = await page.locator("#host").inner_text()
    for word in words:
        assert word in rendered, f"{word!r} is not on the {locale} card"
    # The title is longer than a line at either width: it wrapped instead of running off.
    assert await page.evaluate(LINES, title) >= 2


async def test_every_card_fits_a_phone_in_every_language(
    page: Any, host_config: dict[str, Any]
) -> None:
    problems: list[str] = []
    for locale in LOCALES:
        context = replace(CONTEXT, locale=locale)
        cards = {name: make() for name, make in scenarios(context).items()}
        cards["review_back_to_list"] = render_review_card(
            review_view(context=context, back_to_list=True)
        )
        for name, card in cards.items():
            await page.evaluate(RENDER, [card, host_config, WIDTHS_PX[0]])
            problems.extend(
                f"{locale} {name}: {found}"
                for found in await page.evaluate(OVERFLOWS, UNBREAKABLE_CHARS)
            )
    assert problems == []
