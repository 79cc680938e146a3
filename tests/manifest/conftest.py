"""Fixtures for the Teams app package tests.

The official schema comes from node_modules (``npm ci`` at the repository root). Tests that need
it skip when it is absent — except under ``REQUIRE_BROWSER=1`` (CI: Chromium and npm ci's tools
are required), where an absent schema is a broken set-up and fails instead of silently skipping.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from manifest_helpers import APP_ID, DOMAIN, REPO_ROOT

from manifest import ManifestSchema, build_package, find_schema
from tests.browser import skip_or_fail


@pytest.fixture(scope="session")
def schema_path() -> Path:
    found = find_schema([REPO_ROOT])
    if found is None:
        reason = (
            "node_modules/@microsoft/app-manifest is absent: run `npm ci` in the repository root "
            "to get the official Teams manifest schema"
        )
        skip_or_fail(reason)
    assert found is not None
    return found


@pytest.fixture(scope="session")
def schema(schema_path: Path) -> ManifestSchema:
    return ManifestSchema.load(schema_path)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A package built with the project's defaults (not schema-checked at build time)."""
    return build_package(
        app_id=APP_ID,
        sso_resource=None,
        domains=[DOMAIN],
        version="1.2.3",
        out_path=tmp_path / "app.zip",
    )
