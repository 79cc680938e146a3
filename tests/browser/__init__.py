"""Tests that drive a real browser (Chromium) and the pinned npm tools.

Without them a test skips with the reason, unless ``REQUIRE_BROWSER=1`` (as CI sets it) makes that a
failure — so CI can never pass while these checks quietly did not run.
"""

from __future__ import annotations

import os

import pytest

# CI exports REQUIRE_BROWSER=1 (.ci/run), as it does REQUIRE_POSTGRES=1.
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"


def skip_or_fail(problem: str | None) -> None:
    """Skip the test for ``problem`` (a missing browser or tool), or fail it under
    ``REQUIRE_BROWSER=1``; nothing when ``problem`` is None."""
    if problem is None:
        return
    if REQUIRE_BROWSER:
        pytest.fail(f"{problem} (REQUIRE_BROWSER=1)")
    pytest.skip(problem)
