"""``python app.py doctor`` against the emulated Microsoft cloud (Graph + Entra ID over https on
loopback, on its own thread because msal's HTTP is synchronous).

One emulator serves the module; each test changes the bot's registration or the catalog on the
emulator's loop and the ``cloud`` fixture puts everything back afterwards.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.doctor import (
    APPLICATION_PERMISSIONS,
    DELEGATED_PERMISSION,
    DoctorReport,
    Status,
    diagnose,
    render,
    run_doctor,
)
from bot.settings import Settings
from bot.wiring import microsoft_side
from emulator.identity import AppRegistration
from emulator.server import EmulatorCloud
from emulator.threaded import EmulatorThread
from tests.bot_harness import bot_settings

GRAPH_CHECKS = [f"permission:{name}" for name, _ in APPLICATION_PERMISSIONS] + [
    "delegated_consent",
    "sso_app_id_uri",
    "teams_catalog",
]
ALL_CHECKS = ["credential", "app_token", *GRAPH_CHECKS, "connector_token", "store"]
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    thread = EmulatorThread()
    with thread as cloud:
        # The emulator's Graph reads app registrations from the Identity (what `app.py doctor`
        # looks at: service principals, applications, delegated permission grants).
        cloud.graph.app_registrations = cloud.identity
        yield thread


@pytest.fixture
def cloud(emulator: EmulatorThread) -> Iterator[EmulatorCloud]:
    """The cloud, with the bot's registration and the Teams catalog restored after the test.

    Directory.Read.All is granted on top of the bot's own permissions: it is the optional
    permission that lets the doctor read delegated permission grants (see docs/deploy.md).
    """
    cloud = emulator.cloud
    registration = cloud.identity.app(cloud.bot_app_id)
    saved = replace(
        registration,
        application_permissions=set(registration.application_permissions),
        delegated_permissions=set(registration.delegated_permissions),
    )
    catalog = dict(cloud.tenant.teams_apps)

    def grant_directory_read() -> None:
        registration.application_permissions.add("Directory.Read.All")

    emulator.call(_apply(grant_directory_read))
    yield cloud

    def restore() -> None:
        registration.application_permissions = set(saved.application_permissions)
        registration.delegated_permissions = set(saved.delegated_permissions)
        registration.identifier_uri = saved.identifier_uri
        registration.secret = saved.secret
        cloud.tenant.teams_apps.clear()
        cloud.tenant.teams_apps.update(catalog)

    emulator.call(_apply(restore))


async def _apply(fn: Callable[[], object]) -> None:
    fn()


async def change(emulator: EmulatorThread, fn: Callable[[], object]) -> None:
    """Change emulator state on the emulator's own loop (it serves requests from there)."""
    await emulator.arun(fn)


def registration(cloud: EmulatorCloud) -> AppRegistration:
    return cloud.identity.app(cloud.bot_app_id)


@pytest.fixture
def settings(cloud: EmulatorCloud, tmp_path: Path) -> Settings:
    return bot_settings(cloud, tmp_path)


async def run(settings: Settings) -> tuple[int, str, DoctorReport]:
    out = io.StringIO()
    code = await run_doctor(settings, out=out)
    report = await diagnose(settings)
    return code, out.getvalue(), report


def statuses(report: DoctorReport) -> dict[str, Status]:
    return {r.key: r.status for r in report.results}


def assert_only_failure(report: DoctorReport, key: str) -> None:
    not_passed = {k: s for k, s in statuses(report).items() if s is not Status.PASSED}
    assert not_passed == {key: Status.FAILED}, render(report)


async def test_every_check_passes_against_the_emulator(settings: Settings) -> None:
    code, output, report = await run(settings)
    assert [r.key for r in report.results] == ALL_CHECKS
    assert all(r.status is Status.PASSED for r in report.results), output
    assert code == 0
    assert output.count("✓") == len(ALL_CHECKS)
    assert "✗" not in output and "All good." in output


async def test_consent_is_not_checked_without_directory_read_and_the_run_still_passes(
    emulator: EmulatorThread, cloud: EmulatorCloud, settings: Settings
) -> None:
    await change(
        emulator, lambda: registration(cloud).application_permissions.discard("Directory.Read.All")
    )
    code, output, report = await run(settings)
    consent = report.result("delegated_consent")
    assert consent.status is Status.UNKNOWN
    assert "could not check" in consent.detail and "Directory.Read.All" in consent.detail
    assert DELEGATED_PERMISSION in consent.fix  # how to check it by hand
    others = {k: s for k, s in statuses(report).items() if k != "delegated_consent"}
    assert set(others.values()) == {Status.PASSED}
    assert code == 0
    assert "? Delegated permission AccessReview.ReadWrite.All" in output


@pytest.mark.parametrize("permission", [name for name, _ in APPLICATION_PERMISSIONS])
async def test_a_withdrawn_application_permission_fails_exactly_its_check(
    emulator: EmulatorThread, cloud: EmulatorCloud, settings: Settings, permission: str
) -> None:
    await change(emulator, lambda: registration(cloud).application_permissions.discard(permission))
    code, output, report = await run(settings)
    assert_only_failure(report, f"permission:{permission}")
    failed = report.result(f"permission:{permission}")
    assert permission in failed.fix and "Application permissions" in failed.fix
    assert "Grant admin consent" in failed.fix
    assert code == 1
    assert f"✗ Graph application permission {permission}" in output


async def test_a_withdrawn_permission_shows_on_the_next_run(
    emulator: EmulatorThread, cloud: EmulatorCloud, settings: Settings
) -> None:
    first = await diagnose(settings)
    assert first.ok
    await change(
        emulator,
        lambda: registration(cloud).application_permissions.discard("MailboxSettings.Read"),
    )
    second = await diagnose(settings)  # a fresh token, not one cached by the first run
    assert_only_failure(second, "permission:MailboxSettings.Read")


async def test_withdrawn_delegated_consent_fails_its_check(
    emulator: EmulatorThread, cloud: EmulatorCloud, settings: Settings
) -> None:
    await change(
        emulator, lambda: registration(cloud).delegated_permissions.discard(DELEGATED_PERMISSION)
    )
    code, output, report = await run(settings)
    assert_only_failure(report, "delegated_consent")
    failed = report.result("delegated_consent")
    assert DELEGATED_PERMISSION in failed.fix and "Delegated permissions" in failed.fix
    assert "Grant admin consent" in failed.fix
    assert code == 1
    assert f"✗ Delegated permission {DELEGATED_PERMISSION}" in output


async def test_consent_to_other_scopes_only_is_not_enough(
    emulator: EmulatorThread, cloud: EmulatorCloud, settings: Settings
) -> None:
    def consent_read_only() -> None:
        registration(cloud).delegated_permissions.clear()
        registration(cloud).delegated_permissions.add("AccessReview.Read.All")

    await change(emulator, consent_read_only)
    report = await diagnose(settings)
    assert_only_failure(report, "delegated_consent")
    assert "AccessReview.Read.All" in report.result("delegated_consent").detail


async def test_removed_sso_application_id_uri_fails_its_check(
    emulator: EmulatorThread, cloud: EmulatorCloud, settings: Settings
) -> None:
    def remove_uri() -> None:
        registration(cloud).identifier_uri = None

    await change(emulator, remove_uri)
    code, output, report = await run(settings)
    assert_only_failure(report, "sso_app_id_uri")
    failed = report.result("sso_app_id_uri")
    assert f"api://botid-{cloud.bot_app_id}" in failed.fix
    assert "Expose an API" in failed.fix and "access_as_user" in failed.fix
    assert "1fec8e78-bce4-4aaf-ab1b-5451cc387264" in failed.fix
    assert code == 1
    assert "✗ SSO Application ID URI" in output


async def test_configured_sso_uri_must_be_the_registered_one(
    cloud: EmulatorCloud, settings: Settings
) -> None:
    other = replace(settings, sso_app_id_uri="api://bot.contoso.com/botid-" + cloud.bot_app_id)
    report = await diagnose(other)
    assert_only_failure(report, "sso_app_id_uri")
    failed = report.result("sso_app_id_uri")
    assert "api://bot.contoso.com/botid-" in failed.detail
    assert "SSO_APP_ID_URI" in failed.fix


async def test_teams_app_missing_from_the_catalog_fails_its_check(
    emulator: EmulatorThread, cloud: EmulatorCloud, settings: Settings
) -> None:
    def unpublish() -> None:
        for key, app in list(cloud.tenant.teams_apps.items()):
            if app.external_id == cloud.bot_app_id:
                del cloud.tenant.teams_apps[key]

    await change(emulator, unpublish)
    code, output, report = await run(settings)
    assert_only_failure(report, "teams_catalog")
    failed = report.result("teams_catalog")
    assert "python app.py manifest build --out app.zip" in failed.fix
    assert f"--app-id {cloud.bot_app_id}" in failed.fix
    assert "Teams admin center" in failed.fix
    assert code == 1
    assert "✗ Teams app in the organization's app catalog" in output


async def test_bad_client_secret_fails_the_app_token_and_skips_what_needs_it(
    cloud: EmulatorCloud, settings: Settings
) -> None:
    wrong_secret = "not-the-secret-" + "x" * 20
    bad = replace(settings, app_password=wrong_secret)
    code, output, report = await run(bad)
    found = statuses(report)
    assert found["app_token"] is Status.FAILED
    assert {found[key] for key in GRAPH_CHECKS} == {Status.SKIPPED}
    # The connector token needs the same secret: it fails on its own account, not skipped.
    assert found["connector_token"] is Status.FAILED
    assert found["store"] is Status.PASSED
    app_token = report.result("app_token")
    assert "7000215" in app_token.detail
    assert "Certificates & secrets" in app_token.fix and "MicrosoftAppPassword" in app_token.fix
    assert "needs the app token" in report.result("teams_catalog").detail
    assert code == 1
    assert wrong_secret not in output
    assert "– Graph application permission User.Read.All" in output


async def test_unknown_app_id_says_to_check_the_ids(cloud: EmulatorCloud, tmp_path: Path) -> None:
    bad = bot_settings(cloud, tmp_path, app_id="11111111-2222-4333-8444-555555555555")
    report = await diagnose(bad)
    app_token = report.result("app_token")
    assert app_token.status is Status.FAILED
    assert "MicrosoftAppId" in app_token.fix and "MicrosoftAppTenantId" in app_token.fix


async def test_output_never_contains_a_secret_or_token(
    cloud: EmulatorCloud, settings: Settings
) -> None:
    _code, output, _report = await run(settings)
    assert settings.app_password and settings.app_password not in output
    assert settings.token_cache_key not in output
    assert "eyJ" not in output  # the start of every JWT (app and connector tokens)


async def test_multi_tenant_bot_gets_its_connector_token_from_botframework_com(
    cloud: EmulatorCloud, settings: Settings
) -> None:
    report = await diagnose(replace(settings, app_type="MultiTenant"))
    connector = report.result("connector_token")
    assert connector.status is Status.PASSED, render(report)
    assert connector.detail.endswith("/botframework.com")


async def test_unreachable_store_fails_without_showing_its_password(settings: Settings) -> None:
    password = "pg-secret-password-123"
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    bad = replace(settings, database_url=f"postgresql://bot:{password}@127.0.0.1:1/bot")
    code, output, report = await run(bad)
    assert_only_failure(report, "store")
    assert "DATABASE_URL" in report.result("store").fix
    assert password not in output
    assert code == 1


async def test_demo_settings_say_there_is_nothing_to_check(tmp_path: Path) -> None:
    demo = Settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    out = io.StringIO()
    code = await run_doctor(demo, out=out)
    report = await diagnose(demo)
    assert statuses(report) == {"configuration": Status.FAILED, "store": Status.PASSED}
    assert "MicrosoftAppId" in report.result("configuration").fix
    assert code == 1


async def test_an_explicit_microsoft_side_is_used(cloud: EmulatorCloud, settings: Settings) -> None:
    side = microsoft_side(settings)
    assert side is not None
    # Settings that would reach nothing, with the side saying where the cloud really is.
    unreachable = replace(
        settings, graph_base_url="https://127.0.0.1:1", authority_host="https://127.0.0.1:1"
    )
    out = io.StringIO()
    assert await run_doctor(unreachable, out=out, microsoft=side) == 0, out.getvalue()


async def test_ascii_console_gets_ascii_marks(
    emulator: EmulatorThread, cloud: EmulatorCloud, settings: Settings
) -> None:
    await change(
        emulator, lambda: registration(cloud).application_permissions.discard("User.Read.All")
    )
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    code = await run_doctor(settings, out=out)
    text = raw.getvalue().decode("ascii")
    assert code == 1
    assert "[FAIL] Graph application permission User.Read.All" in text
    assert "[ok] App token for Microsoft Graph" in text


async def test_as_a_process_configured_from_the_environment(
    cloud: EmulatorCloud, settings: Settings, tmp_path: Path
) -> None:
    """The way an operator runs it: settings from the environment, report on stdout."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "DATABASE"))},
        "MicrosoftAppId": settings.app_id,
        "MicrosoftAppPassword": settings.app_password,
        "MicrosoftAppType": "SingleTenant",
        "MicrosoftAppTenantId": settings.app_tenant_id,
        "GRAPH_BASE_URL": settings.graph_base_url,
        "AUTHORITY_HOST": settings.authority_host,
        "CA_BUNDLE": settings.ca_bundle,
        "TOKEN_CACHE_KEY": settings.token_cache_key,
        "DATABASE_URL": settings.database_url,
        "PYTHONIOENCODING": "utf-8",
        "PYTHONPATH": str(REPO_ROOT),
    }
    script = (
        "import asyncio, sys\n"
        "from bot.doctor import run_doctor\n"
        "from bot.settings import load_settings\n"
        "sys.exit(asyncio.run(run_doctor(load_settings(env_file=None), out=sys.stdout)))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    output = stdout.decode("utf-8")
    assert process.returncode == 0, output + stderr.decode()
    assert output.count("✓") == len(ALL_CHECKS)
    assert settings.app_password not in output + stderr.decode()
