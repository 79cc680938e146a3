"""Settings: parsing, validation messages, .env handling, and the app's exit on bad values."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, documented_variables, load_settings

ROOT = Path(__file__).resolve().parents[2]
KEY = "q1Vh0dYQxGk2mDq4iYV6Yt3bq6r0p9O8c7n6m5l4k3I="


def test_defaults_are_demo_mode_on_port_3978() -> None:
    settings = load_settings({}, env_file=None)
    assert settings == Settings()
    assert settings.port == 3978 and settings.demo_mode
    assert settings.database_url == "sqlite:///data/bot.db"


def test_values_are_parsed_and_normalized() -> None:
    settings = load_settings(
        {
            "MicrosoftAppId": "00000000-0000-0000-0000-0000000000b0",
            "MicrosoftAppPassword": "s3cret",
            "MicrosoftAppType": "singletenant",
            "MicrosoftAppTenantId": "tenant",
            "TOKEN_CACHE_KEY": KEY,
            "PORT": "8080",
            "LOG_LEVEL": "debug",
            "LOG_FORMAT": "JSON",
            "POLL_INTERVAL_S": "2.5",
            "GRAPH_BASE_URL": "https://graph.microsoft.us/",
        },
        env_file=None,
    )
    assert settings.app_type == "SingleTenant"
    assert settings.port == 8080 and settings.log_level == "DEBUG" and settings.log_format == "json"
    assert settings.poll_interval_s == 2.5
    assert settings.graph_base_url == "https://graph.microsoft.us"
    assert not settings.demo_mode
    assert settings.effective_sso_app_id_uri == "api://botid-00000000-0000-0000-0000-0000000000b0"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORT", "abc", "PORT must be a whole number from 0 to 65535 (got 'abc')"),
        ("PORT", "70000", "PORT must be a whole number from 0 to 65535"),
        ("MicrosoftAppType", "Bogus", "MicrosoftAppType must be one of MultiTenant, SingleTenant"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of text, json"),
        ("POLL_INTERVAL_S", "-1", "POLL_INTERVAL_S must be a positive number of seconds"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL must start with sqlite:/// or postgresql://"),
        ("GRAPH_BASE_URL", "http://graph", "GRAPH_BASE_URL must be an https:// URL"),
        ("CA_BUNDLE", "/no/such/file.pem", "CA_BUNDLE must name an existing file"),
        ("TOKEN_CACHE_KEY", "short", "TOKEN_CACHE_KEY must be 32 bytes in urlsafe base64"),
    ],
)
def test_bad_values_name_the_variable_and_what_is_allowed(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value}, env_file=None)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"TOKEN_CACHE_KEY": "hunter2-not-base64"}, env_file=None)
    assert "hunter2" not in str(caught.value)


def test_inconsistent_credentials_are_refused() -> None:
    with pytest.raises(SettingsError, match="MicrosoftAppId is set but no credential is"):
        load_settings({"MicrosoftAppId": "x", "MicrosoftAppTenantId": "t"}, env_file=None)
    with pytest.raises(SettingsError, match="MicrosoftAppTenantId is required"):
        load_settings({"MicrosoftAppId": "x", "MicrosoftAppPassword": "p"}, env_file=None)
    with pytest.raises(SettingsError, match="TOKEN_CACHE_KEY is required"):
        load_settings(
            {"MicrosoftAppId": "x", "MicrosoftAppPassword": "p", "MicrosoftAppTenantId": "t"},
            env_file=None,
        )
    # UserAssignedMSI is the managed-identity credential (tests/credentials has the rest).
    with pytest.raises(SettingsError, match="MANAGED_IDENTITY_CLIENT_ID is required"):
        load_settings(
            {
                "MicrosoftAppId": "x",
                "MicrosoftAppTenantId": "t",
                "MicrosoftAppType": "UserAssignedMSI",
            },
            env_file=None,
        )
    with pytest.raises(SettingsError, match="there is no MicrosoftAppId"):
        load_settings({"MicrosoftAppPassword": "p"}, env_file=None)


# Settings only a real deployment has: without MicrosoftAppId they mean the app id is missing by
# mistake, and the process must not start as the unauthenticated demo (open admin routes, the
# emulated tenant written into the store).
PRODUCTION_WITHOUT_APP_ID = [
    (
        {"CREDENTIAL_TYPE": "federated-token-file"},
        "CREDENTIAL_TYPE is set (federated-token-file) but there is no MicrosoftAppId (nor "
        "AZURE_CLIENT_ID): is the workload identity webhook injecting it",
    ),
    ({"CREDENTIAL_TYPE": "certificate"}, "CREDENTIAL_TYPE is set (certificate) but there is no"),
    (
        {"AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"},
        "AZURE_FEDERATED_TOKEN_FILE is set but there is no MicrosoftAppId (nor AZURE_CLIENT_ID)",
    ),
    (
        {"DATABASE_URL": "postgresql://bot@db.example.com/accessreviews"},
        "DATABASE_URL names a PostgreSQL database but there is no MicrosoftAppId",
    ),
    ({"MicrosoftAppType": "SingleTenant"}, "MicrosoftAppType SingleTenant needs MicrosoftAppId"),
    ({"MicrosoftAppTenantId": "t"}, "MicrosoftAppTenantId is set but there is no MicrosoftAppId"),
    ({"ADMIN_TOKEN": "s3cret"}, "ADMIN_TOKEN is set but there is no MicrosoftAppId"),
    ({"TOKEN_CACHE_KEY": KEY}, "TOKEN_CACHE_KEY is set but there is no MicrosoftAppId"),
]


@pytest.mark.parametrize(("environ", "expected"), PRODUCTION_WITHOUT_APP_ID)
def test_production_settings_without_an_app_id_are_refused(
    environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ, env_file=None)
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value) and "s3cret" not in str(caught.value)


def test_the_demo_still_runs_on_its_own_settings_and_on_sqlite(tmp_path: Path) -> None:
    demo = load_settings(
        {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "HOST": "0.0.0.0", "PORT": "4999"},
        env_file=None,
    )
    assert demo.demo_mode
    # Other Azure tools' variables alone say nothing about this bot.
    assert load_settings({"AZURE_CLIENT_ID": "x", "AZURE_TENANT_ID": "y"}, env_file=None).demo_mode


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=4000\nLOG_LEVEL=WARNING\n")
    settings = load_settings({"PORT": "5000"}, env_file=env_file)
    assert settings.port == 5000 and settings.log_level == "WARNING"


def test_env_example_documents_every_variable() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Za-z_]+)=", text, flags=re.MULTILINE))
    assert set(documented_variables()) <= documented, set(documented_variables()) - documented


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PORT", "abc", "PORT must be"),
        ("MicrosoftAppType", "Bogus", "MicrosoftAppType must be"),
        ("CREDENTIAL_TYPE", "federated-token-file", "workload identity webhook"),
        ("DATABASE_URL", "postgresql://bot@127.0.0.1:1/none", "PostgreSQL database"),
    ],
)
def test_app_exits_with_one_readable_line(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in documented_variables()}
    env[variable] = value
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert "Traceback" not in result.stderr


def test_help_lists_the_subcommands(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "serve" in result.stdout


def test_demo_mode_listens_on_loopback_unless_host_says_otherwise() -> None:
    # The demo has no authentication: it must not be reachable from other machines by default.
    assert load_settings({}, env_file=None).bind_host == "127.0.0.1"
    assert load_settings({"HOST": "0.0.0.0"}, env_file=None).bind_host == "0.0.0.0"
    real = load_settings(
        {
            "MicrosoftAppId": "00000000-0000-0000-0000-0000000000b0",
            "MicrosoftAppPassword": "pw",
            "MicrosoftAppTenantId": "t",
            "TOKEN_CACHE_KEY": base64.urlsafe_b64encode(b"k" * 32).decode(),
        },
        env_file=None,
    )
    assert real.bind_host == "0.0.0.0"


def test_a_demo_that_cannot_write_its_folder_stops_with_one_line(tmp_path: Path) -> None:
    # As a read-only root file system would: data/ cannot be made (here a file is in the way).
    (tmp_path / "data").write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if k not in documented_variables()}
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be written" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
