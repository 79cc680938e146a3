"""Choosing the one credential from the environment: inference, conflicts, Azure Workload
Identity's variables, MicrosoftAppType UserAssignedMSI, and what the wiring builds from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.graph import (
    CertificateCredential,
    FederatedTokenFileCredential,
    ManagedIdentityCredential,
    SecretCredential,
)
from bot.settings import SettingsError, load_settings
from bot.wiring import microsoft_side

APP = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
TENANT = "7d5c2a3e-4f1b-4c55-9a11-2b8e6f0d9c01"
MI = "5e29463d-71da-4fe0-8e69-999b57db23b0"
KEY = "q1Vh0dYQxGk2mDq4iYV6Yt3bq6r0p9O8c7n6m5l4k3I="
BASE = {"MicrosoftAppId": APP, "MicrosoftAppTenantId": TENANT, "TOKEN_CACHE_KEY": KEY}


def load(**values: str) -> Any:
    return load_settings({**BASE, **values}, env_file=None)


@pytest.mark.parametrize(
    ("values", "kind", "credential_class"),
    [
        ({"MicrosoftAppPassword": "s3cret"}, "secret", SecretCredential),
        ({"CERTIFICATE_PATH": "/etc/bot/tls.pem"}, "certificate", CertificateCredential),
        (
            {"AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"},
            "federated-token-file",
            FederatedTokenFileCredential,
        ),
        ({"MANAGED_IDENTITY_CLIENT_ID": MI}, "managed-identity", ManagedIdentityCredential),
        (
            {"MANAGED_IDENTITY_CLIENT_ID": MI, "MicrosoftAppType": "UserAssignedMSI"},
            "managed-identity",
            ManagedIdentityCredential,
        ),
        (
            {"CERTIFICATE_PATH": "/etc/bot/tls.pfx", "CREDENTIAL_TYPE": "Certificate"},
            "certificate",
            CertificateCredential,
        ),
    ],
)
def test_the_configured_credential_is_the_one_used(
    values: dict[str, str], kind: str, credential_class: type
) -> None:
    settings = load(**values)
    assert settings.effective_credential_type == kind
    side = microsoft_side(settings)
    assert side is not None and isinstance(side.credential, credential_class)
    # Every token user gets this same object: Graph app-only and OBO, the connector, botbuilder.
    assert side.credential is side.graph.client_credential()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "MicrosoftAppId is set but no credential is"),
        (
            {"MicrosoftAppPassword": "s3cret", "CERTIFICATE_PATH": "/x.pem"},
            "MicrosoftAppPassword and CERTIFICATE_PATH are all set: configure one credential only",
        ),
        (
            {"CREDENTIAL_TYPE": "certificate", "MicrosoftAppPassword": "s3cret"},
            "CERTIFICATE_PATH is required for the certificate credential",
        ),
        (
            {
                "CREDENTIAL_TYPE": "certificate",
                "CERTIFICATE_PATH": "/x.pem",
                "MicrosoftAppPassword": "s3cret",
            },
            "MicrosoftAppPassword set besides the certificate credential: remove it",
        ),
        (
            {"MicrosoftAppType": "UserAssignedMSI"},
            "MANAGED_IDENTITY_CLIENT_ID is required for the managed-identity credential",
        ),
        (
            {"MicrosoftAppType": "UserAssignedMSI", "CREDENTIAL_TYPE": "secret"},
            "MicrosoftAppType UserAssignedMSI means the managed-identity credential",
        ),
        ({"MANAGED_IDENTITY_CLIENT_ID": APP}, "MANAGED_IDENTITY_CLIENT_ID equals MicrosoftAppId"),
        (
            {"MicrosoftAppPassword": "s3cret", "CERTIFICATE_PASSWORD": "pw"},
            "CERTIFICATE_PASSWORD is set but the credential is not a certificate",
        ),
        ({"CREDENTIAL_TYPE": "kerberos"}, "CREDENTIAL_TYPE must be one of secret, certificate"),
        (
            {"AZURE_FEDERATED_TOKEN_FILE": "/t", "AZURE_CLIENT_ID": MI},
            f"AZURE_CLIENT_ID ({MI}) differs from MicrosoftAppId ({APP})",
        ),
    ],
)
def test_credential_mistakes_are_one_line_naming_the_variables(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load(**values)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value) and "s3cret" not in str(caught.value)


def test_workload_identity_variables_stand_in_for_the_app_id_and_tenant() -> None:
    settings = load_settings(
        {
            "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
            "AZURE_CLIENT_ID": APP,
            "AZURE_TENANT_ID": TENANT,
            "TOKEN_CACHE_KEY": KEY,
        },
        env_file=None,
    )
    assert settings.app_id == APP and settings.app_tenant_id == TENANT
    assert not settings.demo_mode
    assert settings.effective_credential_type == "federated-token-file"


def test_a_lone_azure_client_id_does_not_leave_demo_mode() -> None:
    # Other Azure SDK tools read AZURE_CLIENT_ID too; without the token file it means nothing here.
    settings = load_settings({"AZURE_CLIENT_ID": APP}, env_file=None)
    assert settings.demo_mode


@pytest.mark.parametrize(
    "variable", ["CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "MANAGED_IDENTITY_CLIENT_ID"]
)
def test_a_credential_without_an_app_id_is_refused(variable: str) -> None:
    with pytest.raises(SettingsError, match=f"{variable} is set but there is no MicrosoftAppId"):
        load_settings({variable: "x"}, env_file=None)


def test_the_certificate_password_is_secret(tmp_path: Path) -> None:
    settings = load(CERTIFICATE_PATH=str(tmp_path / "c.pfx"), CERTIFICATE_PASSWORD="hunter2")
    assert "hunter2" not in repr(settings)


def test_connector_tokens_come_from_the_bots_own_tenant_for_a_managed_identity() -> None:
    side = microsoft_side(load(MANAGED_IDENTITY_CLIENT_ID=MI, MicrosoftAppType="UserAssignedMSI"))
    assert side is not None and side.connector_tenant == TENANT
    multi = microsoft_side(load(CERTIFICATE_PATH="/x.pem"))
    assert multi is not None and multi.connector_tenant == "botframework.com"
