"""The credential objects on their own: certificate files (PEM, encrypted PEM, PKCS#12), what the
assertion they sign looks like, rotation, federated token files, and the one-line errors."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import hashes

from bot.graph.credentials import (
    CertificateCredential,
    CredentialError,
    CredentialUnavailable,
    FederatedTokenFileCredential,
    SecretCredential,
    token_exchange_audience,
    unverified_claims,
)
from emulator.identity.federation import ExternalIssuer
from tests.credentials.support import SERVICE_ACCOUNT, Certificate, make_certificate

ENDPOINT = "https://login.example.test/tenant/oauth2/v2.0/token"
CLIENT_ID = "0f4b6a52-1c2d-4e3f-8a9b-0c1d2e3f4a5b"


def sign(credential: CertificateCredential) -> str:
    assertion = credential.msal_credential()["client_assertion"]
    return str(assertion({"client_id": CLIENT_ID, "token_endpoint": ENDPOINT}))


def replace_atomically(path: Path, data: bytes) -> None:
    """How Kubernetes updates a mounted secret: the new content appears under the same name."""
    staging = path.with_suffix(".new")
    staging.write_bytes(data)
    os.replace(staging, path)


# -- certificates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "password"),
    [("pem", None), ("pem", "correct horse"), ("pem-cert-first", None), ("pkcs12", "s3cret!")],
)
def test_certificate_files_load_and_thumbprints_are_computed(
    tmp_path: Path, shape: str, password: str | None
) -> None:
    certificate = make_certificate()
    path = tmp_path / "bot.cert"
    if shape == "pkcs12":
        certificate.write_pkcs12(path, password=password)
    else:
        certificate.write_pem(path, password=password, key_first=shape == "pem")
    credential = CertificateCredential(str(path), password=password)
    status = credential.check()
    assert status.usable and status.kind == "certificate"
    assert status.thumbprint_sha256 == certificate.sha256_hex
    assert status.thumbprint_sha1 == certificate.sha1_hex
    assert status.expires_at == certificate.certificate.not_valid_after_utc
    assert "CN=access-review-bot" in status.detail


def test_the_assertion_is_ps256_with_both_thumbprints_and_a_new_jti_each_time(
    tmp_path: Path,
) -> None:
    certificate = make_certificate()
    credential = CertificateCredential(str(certificate.write_pem(tmp_path / "bot.pem")))
    first, second = sign(credential), sign(credential)
    header = jwt.get_unverified_header(first)
    assert header["alg"] == "PS256" and header["typ"] == "JWT"
    sha256 = certificate.certificate.fingerprint(hashes.SHA256())
    sha1 = certificate.certificate.fingerprint(hashes.SHA1())
    assert header["x5t#S256"] == jwt.utils.base64url_encode(sha256).decode()
    assert header["x5t"] == jwt.utils.base64url_encode(sha1).decode()
    claims = jwt.decode(
        first, certificate.certificate.public_key(), algorithms=["PS256"], audience=ENDPOINT
    )
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["exp"] - claims["nbf"] == 600 and claims["iat"] == claims["nbf"]
    assert claims["jti"] != unverified_claims(second)["jti"]
    assert credential.assertions_signed == 2


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "CERTIFICATE_PATH names a file that does not exist"),
        ("directory", "CERTIFICATE_PATH names a directory, not a file"),
        ("key-only", "holds a private key but no certificate"),
        ("cert-only", "holds no private key"),
        ("wrong-key", "does not belong to its certificate"),
        ("encrypted-no-password", "is encrypted: set CERTIFICATE_PASSWORD"),
        ("encrypted-wrong-password", "CERTIFICATE_PASSWORD does not decrypt the private key"),
        ("pkcs12-wrong-password", "CERTIFICATE_PASSWORD does not open the PKCS#12 file"),
        ("pkcs12-no-password", "a passphrase-protected PKCS#12 file needs CERTIFICATE_PASSWORD"),
        ("garbage", "neither PEM nor a PKCS#12 file"),
        ("elliptic", "not RSA"),
        ("expired", "expired on"),
        ("not-yet-valid", "is not valid before"),
    ],
)
def test_unusable_certificates_give_one_line_naming_the_setting(
    tmp_path: Path, setup: str, message: str
) -> None:
    path = tmp_path / "bot.pem"
    password: str | None = None
    certificate = make_certificate()
    now = datetime.now(UTC)
    if setup == "directory":
        path.mkdir()
    elif setup == "key-only":
        path.write_bytes(certificate.key_pem())
    elif setup == "cert-only":
        path.write_bytes(certificate.pem)
    elif setup == "wrong-key":
        path.write_bytes(make_certificate().key_pem() + certificate.pem)
    elif setup == "encrypted-no-password":
        certificate.write_pem(path, password="pw")
    elif setup == "encrypted-wrong-password":
        certificate.write_pem(path, password="pw")
        password = "not-it"
    elif setup == "pkcs12-wrong-password":
        certificate.write_pkcs12(path, password="pw")
        password = "not-it"
    elif setup == "pkcs12-no-password":
        certificate.write_pkcs12(path, password="pw")
    elif setup == "garbage":
        path.write_bytes(os.urandom(300))
    elif setup == "elliptic":
        make_certificate(elliptic=True).write_pem(path)
    elif setup == "expired":
        make_certificate(
            not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)
        ).write_pem(path)
    elif setup == "not-yet-valid":
        make_certificate(
            not_before=now + timedelta(days=1), not_after=now + timedelta(days=400)
        ).write_pem(path)
    with pytest.raises(CredentialError) as caught:
        CertificateCredential(str(path), password=password).check()
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert password is None or password not in text
    # /readyz sees the same problem without an exception.
    status = CertificateCredential(str(path), password=password).status()
    assert not status.usable and message in status.detail


def test_an_expired_certificate_refuses_to_sign_at_token_time(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    certificate = make_certificate(not_after=now + timedelta(hours=1))
    path = certificate.write_pem(tmp_path / "bot.pem")
    later = {"now": now}
    credential = CertificateCredential(str(path), clock=lambda: later["now"])
    assert credential.check().usable
    later["now"] = now + timedelta(hours=2)
    with pytest.raises(CredentialUnavailable, match="expired on"):
        sign(credential)
    assert not credential.status().usable


def test_a_renewed_file_is_used_for_the_next_assertion(tmp_path: Path) -> None:
    old, new = make_certificate(common_name="old"), make_certificate(common_name="new")
    path = old.write_pem(tmp_path / "bot.pem")
    credential = CertificateCredential(str(path))
    assert jwt.get_unverified_header(sign(credential))["x5t#S256"] == _x5t(old)
    replace_atomically(path, new.key_pem() + new.pem)
    assert jwt.get_unverified_header(sign(credential))["x5t#S256"] == _x5t(new)
    assert credential.status().thumbprint_sha256 == new.sha256_hex


def test_a_broken_renewal_keeps_the_working_certificate_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = make_certificate()
    path = old.write_pem(tmp_path / "bot.pem")
    credential = CertificateCredential(str(path))
    sign(credential)
    replace_atomically(path, make_certificate().key_pem())  # the certificate half is missing
    with caplog.at_level(logging.WARNING, logger="bot.graph.credentials"):
        for _ in range(3):
            assert jwt.get_unverified_header(sign(credential))["x5t#S256"] == _x5t(old)
    warnings = [r for r in caplog.records if "cannot be used" in r.getMessage()]
    assert len(warnings) == 1 and old.sha256_hex in warnings[0].getMessage()
    # A good file at the same path is taken at once.
    fixed = make_certificate()
    replace_atomically(path, fixed.key_pem() + fixed.pem)
    assert jwt.get_unverified_header(sign(credential))["x5t#S256"] == _x5t(fixed)


def test_a_file_gone_after_start_keeps_signing_with_the_loaded_certificate(
    tmp_path: Path,
) -> None:
    certificate = make_certificate()
    path = certificate.write_pem(tmp_path / "bot.pem")
    credential = CertificateCredential(str(path))
    sign(credential)
    path.unlink()
    assert jwt.get_unverified_header(sign(credential))["x5t#S256"] == _x5t(certificate)


def test_expiring_within_thirty_days_is_flagged(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    soon = make_certificate(not_after=now + timedelta(days=10)).write_pem(tmp_path / "soon.pem")
    later = make_certificate(not_after=now + timedelta(days=90)).write_pem(tmp_path / "later.pem")
    soon_status = CertificateCredential(str(soon)).status()
    assert soon_status.expiring(now) and "expires in 9 day" in soon_status.as_dict(now)["warning"]
    later_status = CertificateCredential(str(later)).status()
    assert not later_status.expiring(now) and "warning" not in later_status.as_dict(now)


def _x5t(certificate: Certificate) -> str:
    return jwt.utils.base64url_encode(certificate.certificate.fingerprint(hashes.SHA256())).decode()


# -- federated token files ------------------------------------------------------------------------


def _issuer() -> ExternalIssuer:
    return ExternalIssuer("aks", lambda: "https://oidc.example.test")


def test_a_token_file_is_read_once_and_again_only_when_it_changes(tmp_path: Path) -> None:
    issuer = _issuer()
    path = tmp_path / "azure-identity-token"
    first = issuer.mint(subject=SERVICE_ACCOUNT)
    path.write_text(first + "\n")
    credential = FederatedTokenFileCredential(str(path))
    assertion = credential.msal_credential()["client_assertion"]
    assert [assertion() for _ in range(5)] == [first] * 5
    assert credential.reads == 1
    second = issuer.mint(subject=SERVICE_ACCOUNT)
    replace_atomically(path, second.encode())
    assert assertion() == second and credential.reads == 2
    status = credential.check()
    assert status.facts["issuer"] == "https://oidc.example.test/external/aks"
    assert status.facts["subject"] == SERVICE_ACCOUNT
    assert status.facts["audience"] == "api://AzureADTokenExchange"
    assert status.expires_at is not None and status.usable


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "AZURE_FEDERATED_TOKEN_FILE names a file that does not exist"),
        ("directory", "AZURE_FEDERATED_TOKEN_FILE names a directory, not a file"),
        ("not-a-jwt", "AZURE_FEDERATED_TOKEN_FILE does not hold a JWT"),
        ("expired", "expired at"),
    ],
)
def test_unusable_token_files_give_one_line(tmp_path: Path, setup: str, message: str) -> None:
    path = tmp_path / "azure-identity-token"
    if setup == "directory":
        path.mkdir()
    elif setup == "not-a-jwt":
        path.write_text("this is not a token")
    elif setup == "expired":
        path.write_text(_issuer().mint(subject=SERVICE_ACCOUNT, lifetime_s=60, now_s=1_000_000))
    with pytest.raises(CredentialError) as caught:
        FederatedTokenFileCredential(str(path)).check()
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not FederatedTokenFileCredential(str(path)).status().usable


def test_a_token_file_gone_at_token_time_is_a_credential_error(tmp_path: Path) -> None:
    path = tmp_path / "azure-identity-token"
    path.write_text(_issuer().mint(subject=SERVICE_ACCOUNT))
    credential = FederatedTokenFileCredential(str(path))
    credential.check()
    path.unlink()
    with pytest.raises(CredentialUnavailable, match="does not exist"):
        credential.msal_credential()["client_assertion"]()


# -- the rest ---------------------------------------------------------------------------------------


def test_a_secret_never_shows_in_its_repr_or_status() -> None:
    credential = SecretCredential("Zx9~not-to-be-seen")
    assert "Zx9" not in repr(credential) + repr(credential.status())
    with pytest.raises(CredentialError):
        SecretCredential("")


@pytest.mark.parametrize(
    ("authority", "audience"),
    [
        ("https://login.microsoftonline.com", "api://AzureADTokenExchange"),
        ("https://login.microsoftonline.us/", "api://AzureADTokenExchangeUSGov"),
        ("https://login.chinacloudapi.cn", "api://AzureADTokenExchangeChina"),
        ("https://127.0.0.1:8443", "api://AzureADTokenExchange"),
    ],
)
def test_the_exchange_audience_follows_the_cloud(authority: str, audience: str) -> None:
    assert token_exchange_audience(authority) == audience
