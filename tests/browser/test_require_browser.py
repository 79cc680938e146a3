"""The browser tests cannot quietly skip in CI: REQUIRE_BROWSER=1 turns a missing tool into a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.browser as browser
from tests.browser import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_browser_fails_under_require_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "REQUIRE_BROWSER", True)
    with pytest.raises(pytest.fail.Exception, match="chromium is missing"):
        skip_or_fail("chromium is missing")
    monkeypatch.setattr(browser, "REQUIRE_BROWSER", False)
    with pytest.raises(pytest.skip.Exception, match="chromium is missing"):
        skip_or_fail("chromium is missing")
    skip_or_fail(None)  # nothing missing: the test runs


def test_ci_requires_the_browser_and_postgres() -> None:
    exports = {
        line.split()[1]
        for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.startswith("export ")
    }
    assert {"REQUIRE_BROWSER=1", "REQUIRE_POSTGRES=1"} <= exports
