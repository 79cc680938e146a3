"""The checks against the tenant (tokens, Graph permissions, consent, SSO, catalog, connector)
and the entry points :func:`diagnose` and :func:`run_doctor`. See the package docstring."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import TextIO

from cryptography.fernet import Fernet

from bot.doctor.credential import CredentialCheck
from bot.doctor.report import CheckResult, DoctorReport, Status, can_encode, render, to_ascii
from bot.doctor.store import check_store
from bot.graph import (
    AppTokenProvider,
    CredentialUnavailable,
    GraphClient,
    GraphError,
    GraphForbidden,
    GraphNotFound,
    GraphSettings,
    GraphUnauthorized,
    GraphUnavailable,
    InvalidClient,
    Query,
    TeamsAppsApi,
    TokenAcquisitionError,
    TokenCacheCipher,
    TokenServiceUnavailable,
    create_http_client,
    odata_eq,
)
from bot.graph.credentials import (
    CredentialSourceUnreachable,
)
from bot.settings import Settings
from bot.wiring import MicrosoftSide, microsoft_side

__all__ = ["APPLICATION_PERMISSIONS", "DELEGATED_PERMISSION", "diagnose", "run_doctor"]

log = logging.getLogger(__name__)

#: Microsoft Graph's application id (the resource of every Graph permission grant).
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
BOT_FRAMEWORK_RESOURCE = "https://api.botframework.com"
#: The tenant that issues Bot Connector tokens to multi-tenant bots.
BOT_FRAMEWORK_TENANT = "botframework.com"
#: Teams desktop/mobile and web clients, which must be pre-authorized for SSO.
TEAMS_CLIENT_IDS = ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "5e3ce6c0-2b1f-4285-8d4b-75ee78787346")

#: Graph application permissions the bot uses, and what for (shown with a missing one).
#: Checked by exact name: the admin guide asks for exactly these (least privilege), so a broader
#: permission granted instead is reported rather than silently accepted.
APPLICATION_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("AccessReview.Read.All", "find every pending access-review decision"),
    ("User.Read.All", "read reviewers, their managers and account state"),
    ("GroupMember.Read.All", "find reviewers named through group membership"),
    ("Application.Read.All", "find the owners of applications under review"),
    (
        "TeamsAppInstallation.ReadWriteSelfForUser.All",
        "install the bot for reviewers who never opened it",
    ),
    ("MailboxSettings.Read", "send reminders inside each reviewer's working hours"),
    ("AppCatalog.Read.All", "find the bot's Teams app in the organization's catalog"),
)
#: The delegated permission the bot writes decisions with (on-behalf-of the reviewer).
DELEGATED_PERMISSION = "AccessReview.ReadWrite.All"
#: Least privileged application permission that can read delegated permission grants.
GRANT_READ_PERMISSION = "Directory.Read.All"
#: Per Graph call: the doctor wants an answer quickly rather than the poller's patience.
_GRAPH_ATTEMPTS = 2
_GRAPH_DEADLINE_S = 30.0


_API_PERMISSIONS = "Microsoft Entra admin center → App registrations → {app} → API permissions"


class _NoTokenCache:
    """A token cache store that keeps nothing: the doctor always asks Entra afresh."""

    async def get_token_cache(self, *, key: str) -> bytes | None:
        return None

    async def put_token_cache(self, *, key: str, blob: bytes) -> None:
        return None


def _token_roles(token: str) -> frozenset[str]:
    """The ``roles`` claim of an access token.

    The signature is not verified: the token came straight from the token endpoint over TLS a
    moment ago, and only our own grants are read from it (Graph validates it when it is used).
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return frozenset()
    roles = claims.get("roles") if isinstance(claims, dict) else None
    # Entra leaves the claim out when no application permission is granted.
    return frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset()


def _token_error_detail(exc: TokenAcquisitionError) -> str:
    # Codes and correlation id only: they identify the failure for support without repeating
    # the endpoint's free text (which we never show verbatim).
    parts = [exc.error or exc.__class__.__name__]
    if exc.error_codes:
        parts.append("AADSTS" + ",".join(str(c) for c in exc.error_codes))
    if exc.correlation_id:
        parts.append(f"correlation id {exc.correlation_id}")
    return " ".join(parts)


class _Doctor:
    """Runs the checks for one configuration; see :func:`diagnose`."""

    def __init__(self, settings: Settings, side: MicrosoftSide) -> None:
        self.settings = settings
        self.side = side
        self.app_id = side.bot_app_id
        self.graph_settings: GraphSettings = replace(
            side.graph, max_attempts=_GRAPH_ATTEMPTS, deadline_s=_GRAPH_DEADLINE_S
        )
        # A throwaway key: the doctor's msal caches are never persisted, but the providers
        # always encrypt, and the operator's TOKEN_CACHE_KEY has no business here.
        self.cipher = TokenCacheCipher([Fernet.generate_key().decode()])
        self.portal = _API_PERMISSIONS.format(app=f"the app {self.app_id}")
        self.results: list[CheckResult] = []
        self.credential = CredentialCheck(
            side.credential, app_id=self.app_id, tenant_id=self.graph_settings.tenant_id
        )

    def add(self, result: CheckResult) -> CheckResult:
        self.results.append(result)
        return result

    def provider(self, settings: GraphSettings) -> AppTokenProvider:
        return AppTokenProvider(
            settings, store=_NoTokenCache(), cipher=self.cipher, max_threads=2, max_attempts=2
        )

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> list[CheckResult]:
        credential_result, credential_ok = await self.credential.check()
        self.add(credential_result)
        async with AsyncExitStack() as stack:
            http = create_http_client(self.graph_settings)
            stack.push_async_callback(http.aclose)
            token: str | None = None
            tokens: AppTokenProvider | None = None
            if not credential_ok:
                self.add(
                    CheckResult(
                        "app_token",
                        self._app_token_title,
                        Status.SKIPPED,
                        "needs a usable credential",
                    )
                )
            else:
                try:
                    tokens = self.provider(self.graph_settings)
                except ValueError as exc:
                    # Our own message (e.g. no credential configured at all).
                    self.add(self._credentials_unusable(str(exc)))
            if tokens is not None:
                stack.push_async_callback(tokens.close)
                token = await self._check_app_token(tokens)
            if token is None or tokens is None:
                self._skip_graph_checks()
            else:
                graph = GraphClient.from_settings(http, tokens=tokens, settings=self.graph_settings)
                roles = _token_roles(token)
                for permission, purpose in APPLICATION_PERMISSIONS:
                    self.add(self._check_permission(permission, purpose, roles))
                await self._guarded(
                    "delegated_consent", self._delegated_title, self._consent, graph
                )
                await self._guarded("sso_app_id_uri", self._sso_title, self._sso_uri, graph)
                await self._guarded("teams_catalog", self._catalog_title, self._catalog, graph)
            if credential_ok:
                await self._check_connector_token(stack)
            else:
                self.add(
                    CheckResult(
                        "connector_token",
                        "Bot Connector token (client credentials)",
                        Status.SKIPPED,
                        "needs a usable credential",
                    )
                )
        self.add(await check_store(self.settings))
        return self.results

    # -- the credential ------------------------------------------------------------------------

    # -- app token and application permissions -----------------------------------------------

    _app_token_title = "App token for Microsoft Graph (client credentials)"  # noqa: S105 - a label

    def _credentials_unusable(self, why: str) -> CheckResult:
        return CheckResult(
            "app_token",
            self._app_token_title,
            Status.FAILED,
            f"the configured credentials cannot be used: {why}",
            "Configure one credential: CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE, "
            "MANAGED_IDENTITY_CLIENT_ID or MicrosoftAppPassword (see .env.example).",
        )

    async def _check_app_token(self, tokens: AppTokenProvider) -> str | None:
        title = self._app_token_title
        authority = self.graph_settings.authority
        try:
            token = await tokens.get_token()
        except CredentialUnavailable as exc:
            self.add(
                CheckResult(
                    "app_token",
                    title,
                    Status.FAILED,
                    f"no client assertion could be made: {exc}",
                    self.credential.fix(),
                )
            )
            return None
        except InvalidClient as exc:
            self.add(
                CheckResult(
                    "app_token",
                    title,
                    Status.FAILED,
                    f"refused by {authority} ({_token_error_detail(exc)})",
                    self.credential.refused_fix(exc),
                )
            )
            return None
        except CredentialSourceUnreachable as exc:
            self.add(
                CheckResult(
                    "app_token",
                    title,
                    Status.FAILED,
                    str(exc),
                    "The managed identity endpoint did not answer: check that this runs on the "
                    "Azure host the identity is assigned to.",
                )
            )
            return None
        except TokenServiceUnavailable as exc:
            self.add(
                CheckResult(
                    "app_token",
                    title,
                    Status.FAILED,
                    f"could not reach the token service at {authority} ({_token_error_detail(exc)})",
                    "Check that this host can reach AUTHORITY_HOST over https (proxy, firewall, "
                    "DNS) and that CA_BUNDLE, if set, names the right certificate file.",
                )
            )
            return None
        except TokenAcquisitionError as exc:
            self.add(
                CheckResult(
                    "app_token",
                    title,
                    Status.FAILED,
                    f"no token from {authority} ({_token_error_detail(exc)})",
                    "Check MicrosoftAppTenantId (the Directory (tenant) ID) and AUTHORITY_HOST "
                    "(https://login.microsoftonline.com for the public cloud).",
                )
            )
            return None
        roles = _token_roles(token)
        self.add(
            CheckResult(
                "app_token",
                title,
                Status.PASSED,
                f"issued by {authority}; it carries {len(roles)} application permission(s)",
            )
        )
        return token

    def _check_permission(
        self, permission: str, purpose: str, roles: frozenset[str]
    ) -> CheckResult:
        title = f"Graph application permission {permission}"
        if permission in roles:
            return CheckResult(f"permission:{permission}", title, Status.PASSED, "granted")
        return CheckResult(
            f"permission:{permission}",
            title,
            Status.FAILED,
            f"not granted (the bot needs it to {purpose})",
            f"{self.portal}: Add a permission → Microsoft Graph → Application permissions → "
            f'{permission}; then press "Grant admin consent for <your tenant>" '
            "(needs a Privileged Role Administrator or Global Administrator).",
        )

    def _skip_graph_checks(self) -> None:
        why = "needs the app token, which failed"
        for permission, _purpose in APPLICATION_PERMISSIONS:
            self.add(
                CheckResult(
                    f"permission:{permission}",
                    f"Graph application permission {permission}",
                    Status.SKIPPED,
                    why,
                )
            )
        self.add(CheckResult("delegated_consent", self._delegated_title, Status.SKIPPED, why))
        self.add(CheckResult("sso_app_id_uri", self._sso_title, Status.SKIPPED, why))
        self.add(CheckResult("teams_catalog", self._catalog_title, Status.SKIPPED, why))

    # -- Graph reads ---------------------------------------------------------------------------

    async def _guarded(
        self,
        key: str,
        title: str,
        check: Callable[[GraphClient], Awaitable[CheckResult]],
        graph: GraphClient,
    ) -> None:
        """Run one Graph check; map failures Graph itself had to a result (never a traceback)."""
        try:
            self.add(await check(graph))
        except GraphUnauthorized as exc:
            self.add(
                CheckResult(
                    key,
                    title,
                    Status.FAILED,
                    f"Microsoft Graph refused the app token ({exc.status} {exc.code})",
                    "Check that GRAPH_BASE_URL and AUTHORITY_HOST belong to the same "
                    "cloud, and that MicrosoftAppTenantId is your tenant.",
                )
            )
        except GraphUnavailable as exc:
            self.add(
                CheckResult(
                    key,
                    title,
                    Status.FAILED,
                    f"Microsoft Graph did not answer ({exc.message})",
                    "Check that this host can reach GRAPH_BASE_URL over https "
                    "(proxy, firewall, DNS, CA_BUNDLE).",
                )
            )
        except GraphError as exc:
            self.add(
                CheckResult(
                    key,
                    title,
                    Status.FAILED,
                    f"Microsoft Graph answered {exc.status} {exc.code}".rstrip(),
                    "Run the doctor again in a few minutes; if this persists, "
                    f"quote request-id {exc.request_id or '-'} to Microsoft support.",
                )
            )
        except Exception as exc:  # one broken check must not hide the others
            log.exception("doctor check %s failed unexpectedly", key)
            self.add(
                CheckResult(
                    key,
                    title,
                    Status.FAILED,
                    f"the check itself failed ({exc.__class__.__name__})",
                    "Run the doctor with LOG_LEVEL=DEBUG and report the log to the bot's "
                    "maintainers.",
                )
            )

    def _not_checked(self, key: str, title: str, needs: str, by_hand: str) -> CheckResult:
        return CheckResult(
            key,
            title,
            Status.UNKNOWN,
            f"could not check: reading this needs the application permission {needs}, "
            "which the app does not have",
            f"Either check by hand ({by_hand}), or let the doctor check it: {self.portal} → "
            f"add Microsoft Graph application permission {needs} and grant admin consent.",
        )

    _delegated_title = f"Delegated permission {DELEGATED_PERMISSION}, admin-consented"

    async def _consent(self, graph: GraphClient) -> CheckResult:
        key, title = "delegated_consent", self._delegated_title
        by_hand = (
            f"{self.portal} should list {DELEGATED_PERMISSION} of type Delegated with "
            'status "Granted for <your tenant>"'
        )
        fix = (
            f"{self.portal}: Add a permission → Microsoft Graph → Delegated permissions → "
            f'{DELEGATED_PERMISSION}; then press "Grant admin consent for <your tenant>". '
            "Without it the bot cannot record a reviewer's decision."
        )
        try:
            client_sp = await self._service_principal_id(graph, self.app_id)
            graph_sp = await self._service_principal_id(graph, GRAPH_APP_ID)
        except GraphForbidden:
            return self._not_checked(key, title, "Application.Read.All", by_hand)
        if client_sp is None:
            return CheckResult(
                key,
                title,
                Status.FAILED,
                f"the app {self.app_id} has no service principal (enterprise application) in "
                "this tenant, so nothing was ever consented",
                fix,
            )
        if graph_sp is None:
            return CheckResult(
                key,
                title,
                Status.FAILED,
                "Microsoft Graph's service principal was not found in the tenant",
                fix,
            )
        query = Query(
            filter=f"{odata_eq('clientId', client_sp)} and "
            f"{odata_eq('consentType', 'AllPrincipals')}"
        )
        try:
            grants = [g async for g in graph.paginate("/oauth2PermissionGrants", params=query)]
        except GraphForbidden:
            return self._not_checked(key, title, GRANT_READ_PERMISSION, by_hand)
        scopes: set[str] = set()
        for grant in grants:
            if str(grant.get("resourceId") or "").lower() == graph_sp.lower():
                scopes.update(str(grant.get("scope") or "").split())
        if DELEGATED_PERMISSION in scopes:
            return CheckResult(key, title, Status.PASSED, "granted for all users of the tenant")
        found = ", ".join(sorted(scopes)) if scopes else "none"
        return CheckResult(
            key,
            title,
            Status.FAILED,
            f"not admin-consented (tenant-wide delegated Graph permissions found: {found})",
            fix,
        )

    async def _service_principal_id(self, graph: GraphClient, app_id: str) -> str | None:
        query = Query(filter=odata_eq("appId", app_id), select=("id", "appId"))
        async for item in graph.paginate("/servicePrincipals", params=query):
            return str(item.get("id") or "") or None
        return None

    _sso_title = "SSO Application ID URI on the app registration"

    async def _sso_uri(self, graph: GraphClient) -> CheckResult:
        key, title = "sso_app_id_uri", self._sso_title
        expected = self.side.sso_app_id_uri or f"api://botid-{self.app_id}"
        by_hand = (
            "Microsoft Entra admin center → App registrations → the app → Expose an API "
            f"should show Application ID URI {expected}"
        )
        expose = (
            f"Microsoft Entra admin center → App registrations → the app {self.app_id} → Expose "
            f"an API: set the Application ID URI to {expected}, add the scope access_as_user "
            "(who can consent: Admins and users), and add the Teams clients "
            f"{' and '.join(TEAMS_CLIENT_IDS)} as authorized client applications for it."
        )
        try:
            body = await graph.get(
                f"/applications(appId='{self.app_id.replace(chr(39), chr(39) * 2)}')",
                params=Query(select=("identifierUris",)),
            )
        except GraphForbidden:
            return self._not_checked(key, title, "Application.Read.All", by_hand)
        except GraphNotFound:
            return CheckResult(
                key,
                title,
                Status.FAILED,
                f"no app registration with id {self.app_id} in tenant "
                f"{self.graph_settings.tenant_id} (a bot registered in another tenant cannot "
                "use SSO here)",
                "Register the bot's app in this tenant (see docs/deploy.md), then: " + expose,
            )
        uris = [str(u) for u in (body or {}).get("identifierUris") or []]
        if any(u.rstrip("/").lower() == expected.rstrip("/").lower() for u in uris):
            return CheckResult(key, title, Status.PASSED, f"{expected} is set")
        found = ", ".join(uris) if uris else "none"
        hint = (
            ""
            if not self.settings.sso_app_id_uri
            else (" (or correct SSO_APP_ID_URI if the registration is right)")
        )
        return CheckResult(
            key,
            title,
            Status.FAILED,
            f"{expected} is not among the app's Application ID URIs (found: {found})",
            expose + hint,
        )

    _catalog_title = "Teams app in the organization's app catalog"

    async def _catalog(self, graph: GraphClient) -> CheckResult:
        key, title = "teams_catalog", self._catalog_title
        try:
            app = await TeamsAppsApi(graph).find_catalog_app(self.app_id)
        except GraphForbidden:
            return self._not_checked(
                key,
                title,
                "AppCatalog.Read.All",
                "Teams admin center → Teams apps → Manage apps should list the app",
            )
        if app is not None:
            return CheckResult(
                key,
                title,
                Status.PASSED,
                f'"{app.display_name}" is published '
                f"({app.distribution_method or 'organization'}), catalog id {app.id}",
            )
        domain = self.settings.bot_domain or "<your bot's host name>"
        return CheckResult(
            key,
            title,
            Status.FAILED,
            f"no app with manifest id {self.app_id} in the organization's catalog, so the bot "
            "cannot install itself for reviewers",
            f"Build the package with: python app.py manifest build --out app.zip --app-id "
            f"{self.app_id} --domain {domain}; then in Teams admin center → Teams apps → Manage "
            "apps → Upload new app, upload app.zip (or approve it there if it was submitted).",
        )

    # -- Bot Connector token --------------------------------------------------------------------

    async def _check_connector_token(self, stack: AsyncExitStack) -> None:
        key, title = "connector_token", "Bot Connector token (client credentials)"
        app_type = self.settings.app_type
        # Multi-tenant bots get connector tokens from the botframework.com tenant, single-tenant
        # bots from their own (teams-platform reference §4.4).
        tenant = self.side.connector_tenant or (
            self.side.tenant_id if app_type != "MultiTenant" else BOT_FRAMEWORK_TENANT
        )
        settings = replace(
            self.graph_settings, graph_resource=BOT_FRAMEWORK_RESOURCE, tenant_id=tenant
        )
        try:
            provider = self.provider(settings)
        except ValueError as exc:
            self.add(replace(self._credentials_unusable(str(exc)), key=key, title=title))
            return
        stack.push_async_callback(provider.close)
        authority = settings.authority
        try:
            await provider.get_token()
        except CredentialUnavailable as exc:
            self.add(CheckResult(key, title, Status.FAILED, str(exc), self.credential.fix()))
            return
        except TokenServiceUnavailable as exc:
            self.add(
                CheckResult(
                    key,
                    title,
                    Status.FAILED,
                    f"could not reach {authority} ({_token_error_detail(exc)})",
                    "Check that this host can reach AUTHORITY_HOST over https.",
                )
            )
            return
        except TokenAcquisitionError as exc:
            self.add(
                CheckResult(
                    key,
                    title,
                    Status.FAILED,
                    f"refused by {authority} ({_token_error_detail(exc)})",
                    f"The Azure Bot resource → Configuration must show Microsoft App ID "
                    f"{self.app_id} and type {app_type} (MicrosoftAppType must match it). "
                    + self.credential.refused_fix(exc),
                )
            )
            return
        self.add(CheckResult(key, title, Status.PASSED, f"issued by {authority}"))


async def diagnose(settings: Settings, *, microsoft: MicrosoftSide | None = None) -> DoctorReport:
    """Run every check against ``microsoft`` (default: the side the settings describe)."""
    side = microsoft if microsoft is not None else microsoft_side(settings)
    if side is None:
        results = [
            CheckResult(
                "configuration",
                "Credentials configured",
                Status.FAILED,
                "MicrosoftAppId is not set, so the bot runs as a local demo and there is no "
                "tenant to check",
                "Set MicrosoftAppId, MicrosoftAppTenantId, TOKEN_CACHE_KEY and one credential "
                "(CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE, MANAGED_IDENTITY_CLIENT_ID or, "
                "last, MicrosoftAppPassword) in the environment or .env (see .env.example and "
                "docs/deploy.md).",
            ),
            await check_store(settings),
        ]
        return DoctorReport(tuple(results))
    results = await _Doctor(settings, side).run()
    return DoctorReport(tuple(results))


async def run_doctor(
    settings: Settings, *, out: TextIO | None = None, microsoft: MicrosoftSide | None = None
) -> int:
    """``python app.py doctor``: check everything, print the report to ``out``, return the exit
    code (0 when nothing failed or was skipped, 1 otherwise)."""
    stream = out if out is not None else sys.stdout
    side = microsoft if microsoft is not None else microsoft_side(settings)
    header: list[str] = ["Access Review Bot doctor"]
    if side is not None:
        header.append(
            f"  app {side.bot_app_id} ({settings.app_type}, credential "
            f"{side.credential.kind}), tenant {side.tenant_id}, "
            f"Graph {side.graph.graph_base_url}, sign-in {side.graph.authority_host}"
        )
    header.append("")
    report = await diagnose(settings, microsoft=side)
    text = render(report, header=header)
    if not can_encode(stream, text):
        text = to_ascii(render(report, header=header, ascii_only=True))
    stream.write(text)
    stream.flush()
    log.info("doctor finished: %s", "all good" if report.ok else "problems found")
    return report.exit_code
