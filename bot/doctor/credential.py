"""The doctor's view of the credential: the check that runs first, and the fix to show when
Entra ID refuses the client, worded for the credential kind and the AADSTS code."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.doctor.report import CheckResult, Status
from bot.graph import (
    ClientCredential,
    CredentialError,
    CredentialStatus,
    CredentialUnavailable,
    TokenAcquisitionError,
)
from bot.graph.credentials import (
    EXPIRY_WARNING_DAYS,
    CredentialSourceUnreachable,
    ManagedIdentityCredential,
    unverified_claims,
)

__all__ = ["CredentialCheck"]

# IMDS's error code for a request that arrived without its "Metadata: true" header ("How to use
# managed identities for Azure resources on an Azure VM to acquire an access token", error table:
# 400 bad_request_102 "Required metadata header not specified").
IMDS_MISSING_METADATA = "bad_request_102"

_TITLES = {
    "secret": "Credential: client secret",
    "certificate": "Credential: certificate",
    "federated-token-file": "Credential: federated token file",
    "managed-identity": "Credential: managed identity (federated credential)",
}


class CredentialCheck:
    """Checks one credential of the app ``app_id`` in ``tenant_id``. ``facts`` (issuer, subject,
    audience or thumbprints) are filled by :meth:`check` for the fixes' wording."""

    def __init__(self, credential: ClientCredential, *, app_id: str, tenant_id: str) -> None:
        self.credential = credential
        self.app_id = app_id
        self.tenant_id = tenant_id
        self.facts: dict[str, str] = {}

    async def check(self) -> tuple[CheckResult, bool]:
        """The credential on its own (files, validity, the managed identity's token), and
        whether token requests can be tried with it."""
        credential = self.credential
        title = _TITLES.get(credential.kind, "Credential")
        try:
            status = await asyncio.to_thread(credential.check)
        except CredentialError as exc:
            return CheckResult("credential", title, Status.FAILED, str(exc), self.fix()), False
        if isinstance(credential, ManagedIdentityCredential):
            return await self._check_managed_identity(credential, title)
        self.facts = dict(status.facts)
        if status.thumbprint_sha256:
            self.facts["thumbprint"] = (
                f"SHA-1 {(status.thumbprint_sha1 or '').upper()} (SHA-256 {status.thumbprint_sha256})"
            )
        return self._result(title, status), True

    def _result(self, title: str, status: CredentialStatus) -> CheckResult:
        now = datetime.now(UTC)
        if status.kind == "certificate" and status.expires_at is not None:
            days = int((status.expires_at - now).total_seconds() // 86400)
            detail = (
                f"{status.detail}, SHA-256 thumbprint {status.thumbprint_sha256}, SHA-1 "
                f"thumbprint {(status.thumbprint_sha1 or '').upper()} (as the admin center lists "
                f"it), valid until {status.expires_at:%Y-%m-%d} ({days} days)"
            )
            if status.expiring(now):
                return CheckResult(
                    "credential",
                    title,
                    Status.WARNING,
                    detail,
                    f"The certificate ends within {EXPIRY_WARNING_DAYS} days. Upload its renewal "
                    f"to App registrations → the app {self.app_id} → Certificates & secrets, "
                    "then put it (with its key) at CERTIFICATE_PATH: the bot picks the new file "
                    "up without a restart. Remove the old certificate from the app afterwards.",
                )
            return CheckResult("credential", title, Status.PASSED, detail)
        if status.kind == "federated-token-file":
            facts = status.facts
            until = (
                f", valid until {status.expires_at:%Y-%m-%d %H:%M} UTC" if status.expires_at else ""
            )
            return CheckResult(
                "credential",
                title,
                Status.PASSED,
                f"{facts.get('file')}: token from issuer {facts.get('issuer')}, subject "
                f"{facts.get('subject')}, audience {facts.get('audience')}{until}",
            )
        return CheckResult("credential", title, Status.PASSED, status.detail)

    async def _check_managed_identity(
        self, credential: ManagedIdentityCredential, title: str
    ) -> tuple[CheckResult, bool]:
        status = credential.status()
        try:
            token = await asyncio.to_thread(credential.token)
        except (CredentialUnavailable, CredentialSourceUnreachable) as exc:
            fix = (
                "Check that the managed identity "
                f"{credential.client_id} is assigned to this host (Container App / App Service / "
                "VM → Identity → User assigned) and that MANAGED_IDENTITY_CLIENT_ID is its "
                "Client ID. The platform sets IDENTITY_ENDPOINT and IDENTITY_HEADER (App Service, "
                "Container Apps) or serves IMDS; IMDS must be reached directly, not through a "
                "proxy (add 169.254.169.254 to NO_PROXY)."
            )
            if isinstance(exc, CredentialUnavailable) and exc.error == IMDS_MISSING_METADATA:
                fix = (
                    "The endpoint received the request without its 'Metadata: true' header: "
                    "something between the bot and IMDS (an HTTP proxy, a sidecar) removes it. "
                    "IMDS must be reached directly: add 169.254.169.254 to NO_PROXY or take the "
                    "proxy out of that path."
                )
            return CheckResult("credential", title, Status.FAILED, str(exc), fix), False
        claims = unverified_claims(token)
        self.facts = {
            "issuer": str(claims.get("iss") or ""),
            "subject": str(claims.get("sub") or ""),
            "audience": credential.audience,
        }
        return (
            CheckResult(
                "credential",
                title,
                Status.PASSED,
                f"{status.detail} gave a token for {credential.audience} (issuer "
                f"{self.facts['issuer']}, subject {self.facts['subject']})",
            ),
            True,
        )

    def fix(self) -> str:
        """What to do when the credential itself cannot be used."""
        kind = self.credential.kind
        if kind == "certificate":
            return (
                "CERTIFICATE_PATH must name a PEM file with the private key and the certificate "
                "registered on the app (or a PKCS#12 file; CERTIFICATE_PASSWORD if it is "
                "protected), readable by the bot's user. docs/deploy.md shows how to make one."
            )
        if kind == "federated-token-file":
            return (
                "AZURE_FEDERATED_TOKEN_FILE must name the file the platform keeps the token in "
                "(Azure Workload Identity mounts /var/run/secrets/azure/tokens/"
                "azure-identity-token when the pod's service account is annotated and the pod "
                'labelled azure.workload.identity/use: "true"; see deploy/kubernetes).'
            )
        return "See docs/deploy.md for this credential."

    def federation_fix(self) -> str:
        """The federated credential to add, spelled out from the token's own claims."""
        facts = self.facts
        return (
            f"In Microsoft Entra admin center → App registrations → the app {self.app_id} → "
            "Certificates & secrets → Federated credentials, add one (Other issuer) with issuer "
            f"{facts.get('issuer') or '<the token issuer>'}, subject "
            f"{facts.get('subject') or '<the token subject>'} and audience "
            f"{facts.get('audience') or 'api://AzureADTokenExchange'}, spelled exactly so: "
            "Entra compares them case-sensitively."
        )

    def refused_fix(self, exc: TokenAcquisitionError) -> str:
        """What to do when Entra refused the client, by credential kind and AADSTS code."""
        codes = set(exc.error_codes)
        if codes & {700016, 7000218} or exc.error == "unauthorized_client":
            return (
                f"Entra ID does not know the app {self.app_id} in tenant "
                f"{self.tenant_id}: check MicrosoftAppId (the Application "
                "(client) ID on the app registration's Overview page) and "
                "MicrosoftAppTenantId (the Directory (tenant) ID)."
            )
        if codes & {70021, 700211, 700212, 700213}:
            return self.federation_fix()
        if 700222 in codes:
            return (
                "The token presented as a federated credential was issued by Entra ID but not "
                "to a managed identity; use the managed identity's token (CREDENTIAL_TYPE "
                "managed-identity) or another issuer's."
            )
        if 700024 in codes:
            return (
                "The assertion was outside its valid time range: check this host's clock (NTP) "
                "and, for a federated token file, that the platform keeps renewing it."
            )
        kind = self.credential.kind
        if kind == "certificate":
            facts = self.facts
            return (
                "The certificate was refused (AADSTS700027: not registered on the app, expired, "
                "or signed with another key). Upload the certificate (public part only) to "
                f"App registrations → the app {self.app_id} → Certificates & secrets → "
                "Certificates, and check that its thumbprint there matches"
                + (f" {facts['thumbprint']}" if "thumbprint" in facts else " the one above")
                + "."
            )
        if kind in ("federated-token-file", "managed-identity"):
            return self.federation_fix()
        return (
            f"The client secret was refused. In Microsoft Entra admin center → App "
            f"registrations → the app {self.app_id} → Certificates & secrets, add a "
            "new client secret and put its Value (not its Secret ID) in "
            "MicrosoftAppPassword; expired secrets must be replaced the same way. Better: "
            "switch to a certificate or a federated credential (docs/deploy.md)."
        )
