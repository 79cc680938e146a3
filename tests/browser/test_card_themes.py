"""The review card rendered by the official Adaptive Cards JavaScript renderer (npm
``adaptivecards``) in headless Chromium, in Teams' light, dark and high-contrast themes.

- Readability: the "Recommended: deny — no sign-in for N days" line, and every line of text from
  people, has a WCAG contrast ratio of at least 4.5:1 against what is behind it, computed from the
  colours the browser rendered (alpha blended over the background).
- Exactness: what a reader copies from a line with text from people is that text, character for
  character, and the rendered card has no link in it, though TextBlock markdown is processed with
  markdown-it as Teams' clients do.

Screenshots of each theme are kept under ``TEST_ARTIFACTS_DIR`` (default ``test-artifacts/`` in the
repository, ignored by git).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cards import (
    Decision,
    ItemState,
    PrincipalView,
    UserType,
    render_review_card,
)
from tests.browser import skip_or_fail
from tests.cards.card_scenarios import review_view, stale_guest

ROOT = Path(__file__).resolve().parents[2]
HOSTCONFIGS = Path(__file__).parent / "hostconfigs"
RENDERER = ROOT / "node_modules/adaptivecards/dist/adaptivecards.min.js"
MARKDOWN = ROOT / "node_modules/markdown-it/dist/browser/markdown-it.umd.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
THEMES = ("light", "dark", "high-contrast")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR") or ROOT / "test-artifacts") / "card-themes"

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<style>body{margin:0;padding:16px;width:560px}</style></head><body><div id="host"></div></body></html>"""

RENDER = """([card, hostConfig]) => {
    AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {
        result.outputHtml = markdownit({ linkify: true }).render(text);
        result.didProcess = true;
    };
    const adaptive = new AdaptiveCards.AdaptiveCard();
    adaptive.hostConfig = new AdaptiveCards.HostConfig(hostConfig);
    adaptive.parse(card);
    const element = adaptive.render();
    const host = document.getElementById("host");
    host.replaceChildren(element);
    document.body.style.background = hostConfig.containerStyles.default.backgroundColor;
    return element.outerHTML.length;
}"""

# For each element whose own text (not its children's) includes the needle: its rendered colour and
# the first opaque background behind it.
COLOURS = """(needle) => {
    const found = [];
    const walker = document.createTreeWalker(document.getElementById("host"), NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (!node.textContent.includes(needle)) continue;
        const element = node.parentElement;
        let behind = element, background = "rgba(0, 0, 0, 0)";
        while (behind) {
            const colour = getComputedStyle(behind).backgroundColor;
            if (colour !== "rgba(0, 0, 0, 0)" && colour !== "transparent") { background = colour; break; }
            behind = behind.parentElement;
        }
        if (!behind) background = getComputedStyle(document.body).backgroundColor;
        found.push({ text: element.textContent, color: getComputedStyle(element).color,
                     background, tag: element.tagName });
    }
    return found;
}"""

COPY = """(needle) => {
    // The rendered block holding the needle, selected as a reader would, and copied.
    const blocks = [...document.querySelectorAll("#host .ac-richTextBlock, #host .ac-textBlock")];
    const block = blocks.find((b) => b.textContent.includes(needle));
    if (!block) return null;
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.selectAllChildren(block);
    return { copied: selection.toString(), links: document.querySelectorAll("#host a").length };
}"""


def _rgba(css: str) -> tuple[float, float, float, float]:
    match = re.fullmatch(r"rgba?\(([\d.]+), ([\d.]+), ([\d.]+)(?:, ([\d.]+))?\)", css.strip())
    assert match, css
    r, g, b, a = match.groups()
    return float(r), float(g), float(b), float(a) if a is not None else 1.0


def _blend(front: str, back: str) -> tuple[float, float, float]:
    r, g, b, alpha = _rgba(front)
    br, bg, bb, _ = _rgba(back)
    return (
        r * alpha + br * (1 - alpha),
        g * alpha + bg * (1 - alpha),
        b * alpha + bb * (1 - alpha),
    )


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(color: str, background: str) -> float:
    """WCAG 2 contrast ratio of text ``color`` (alpha blended) on ``background``."""
    text = _luminance(_blend(color, background))
    behind = _luminance(_blend(background, "rgb(255, 255, 255)"))
    light, dark = max(text, behind), min(text, behind)
    return (light + 0.05) / (dark + 0.05)


def test_the_contrast_formula() -> None:
    assert contrast("rgb(0, 0, 0)", "rgb(255, 255, 255)") == pytest.approx(21.0)
    assert contrast("rgb(255, 255, 255)", "rgb(255, 255, 255)") == pytest.approx(1.0)
    # Teams' warning yellow on white: the colour this line used to have.
    assert contrast("rgb(248, 210, 42)", "rgb(255, 255, 255)") < 2.0


def _require_browser() -> str | None:
    for needed in (Path(CHROMIUM), RENDERER, MARKDOWN):
        if not needed.exists():
            return f"{needed} is missing (scripts/test installs Chromium and runs npm ci)"
    return None


@pytest.fixture
async def page() -> Any:
    problem = _require_browser()
    skip_or_fail(problem)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await page.set_content(PAGE)
            await page.add_script_tag(path=str(MARKDOWN))
            await page.add_script_tag(path=str(RENDERER))
            yield page
        finally:
            await browser.close()


def _host_config(theme: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((HOSTCONFIGS / f"teams-{theme}.json").read_text())
    return config


def _card_with_people_text() -> dict[str, Any]:
    guest = stale_guest(1, "Jordan Miller (Fabrikam)")
    decided = replace(
        stale_guest(2, "Sam Taylor"),
        state=ItemState.DECIDED,
        decision=Decision.DENY,
        decided_by="Megan Bowen",
        justification="Left the project in March — see the [handover](https://contoso.example) doc",
    )
    return render_review_card(review_view(items=(guest, decided)))


@pytest.mark.parametrize("theme", THEMES)
async def test_the_recommendation_and_people_text_are_readable_in_every_theme(
    page: Any, theme: str
) -> None:
    card = _card_with_people_text()
    await page.evaluate(RENDER, [card, _host_config(theme)])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.locator("#host").screenshot(path=str(ARTIFACTS / f"review-card-{theme}.png"))

    lines = await page.evaluate(COLOURS, "Recommended: ")
    assert lines, "the recommendation line was not rendered"
    for line in lines:
        ratio = contrast(line["color"], line["background"])
        assert ratio >= 4.5, f"{theme}: {line['text']!r} {line['color']} on {line['background']}"
    # The word that matters is there, bold, in the same readable colour.
    deny = await page.evaluate(COLOURS, "deny")
    assert any(d["tag"] in ("STRONG", "B") for d in deny), deny

    for needle in (
        "Jordan Miller (Fabrikam)",
        "jordan_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        "Left the project in March",
        "Megan Bowen",
    ):
        assert await page.evaluate(COLOURS, needle), f"{needle!r} not rendered"
    # Every piece of text on the card, buttons aside (the host draws those), is readable.
    everything = [t for t in await page.evaluate(COLOURS, "") if t["text"].strip()]
    unreadable = [
        f"{t['text'][:50]!r}: {contrast(t['color'], t['background']):.2f} "
        f"({t['color']} on {t['background']})"
        for t in everything
        if t["tag"] != "BUTTON" and contrast(t["color"], t["background"]) < 4.5
    ]
    assert unreadable == [], f"{theme}: " + "; ".join(unreadable)


HOSTILE = [
    "[Verify your account](https://evil.example/login) **now**",
    "<at>Megan Bowen</at> please approve",
    "www.evil.example and mallory@evil.example",
    "\u202eevil\u202c txt.exe \u200fמנהל\u200f",
    "Zoë 🦄👩🏽\u200d💻 # not a heading",
    "a" * 200,
]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_text_from_people_is_copied_exactly_from_the_rendered_card(
    page: Any, hostile: str
) -> None:
    item = replace(
        stale_guest(1, "x"),
        principal=PrincipalView(
            display_name=hostile, user_principal_name="guest@contoso.com", user_type=UserType.GUEST
        ),
    )
    card = render_review_card(review_view(items=(item,), review_name=hostile))
    await page.evaluate(RENDER, [card, _host_config("light")])
    result = await page.evaluate(COPY, hostile[:20])
    assert result is not None, "the hostile text was not rendered"
    # The review's title block first: "Access review: " + the name, exactly.
    assert result["copied"] == f"Access review: {hostile}"
    assert result["links"] == 0
    names = await page.evaluate(COLOURS, hostile)
    assert any(n["text"] == hostile for n in names), names
