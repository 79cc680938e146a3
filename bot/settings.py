"""Settings from the environment and an optional ``.env`` file, validated once at start.

Names follow the Bot Framework where one exists (``MicrosoftAppId``, ``MicrosoftAppPassword``,
``MicrosoftAppType``, ``MicrosoftAppTenantId``); the rest are ours. Every variable is documented in
``.env.example``. A bad value raises :class:`SettingsError` whose message is one line naming the
variable and what is allowed; ``app.py`` prints it and exits non-zero, without a traceback.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bot.notify.policy import POLICY_VARIABLES, PolicyError, ScheduleSettings
from cards.i18n import DEFAULT_LOCALE, TABLE_LOCALES, normalize_locale

__all__ = [
    "APP_TYPES",
    "CREDENTIAL_TYPES",
    "LOG_FORMATS",
    "Settings",
    "SettingsError",
    "load_settings",
]

APP_TYPES = ("MultiTenant", "SingleTenant", "UserAssignedMSI")
# The kinds of client credential (bot.graph.credentials.CREDENTIAL_TYPES, without importing msal).
CREDENTIAL_TYPES = ("secret", "certificate", "federated-token-file", "managed-identity")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A configuration value is missing or invalid. ``str(err)`` is one readable line."""


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one process. Build it with :func:`load_settings`."""

    # Bot Framework identity.
    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_type: str = "MultiTenant"
    app_tenant_id: str = ""
    # The app registration's credential: which kind (empty = the one whose settings are given).
    credential_type: str = ""
    # A certificate: PEM (private key + certificate) or PKCS#12, and the passphrase if any.
    certificate_path: str = ""
    certificate_password: str = field(default="", repr=False)
    # A federated token file, named as Azure Workload Identity's webhook injects it.
    federated_token_file: str = ""
    azure_client_id: str = ""
    azure_tenant_id: str = ""
    # A user-assigned managed identity trusted by the app registration (federated credential).
    managed_identity_client_id: str = ""
    # Serving.
    # Empty: the mode decides (see ``bind_host``).
    host: str = ""
    port: int = 3978
    # Serving processes on the port (SO_REUSEPORT); the first also runs the background roles.
    workers: int = 1
    max_body_bytes: int = 256 * 1024
    # Storage.
    database_url: str = "sqlite:///data/bot.db"
    # PostgreSQL: connections per replica, and the longest a statement may run.
    db_pool_size: int = 10
    db_statement_timeout_ms: int = 15_000
    # Logging.
    log_level: str = "INFO"
    log_format: str = "text"
    # Discovery.
    poll_interval_s: float = 300.0
    # How long a replica's background role (polling, delivery) outlives it: another replica takes
    # over at most this long after it dies.
    lease_ttl_s: float = 60.0
    # How long one replica's claim on a queued message (a card, a decision write) lasts before
    # another may take it over: longer than the slowest single attempt, short enough to recover.
    claim_lease_s: float = 120.0
    # Microsoft endpoints (overridable for national clouds and the local emulator).
    graph_base_url: str = "https://graph.microsoft.com"
    authority_host: str = "https://login.microsoftonline.com"
    ca_bundle: str = ""
    # Bot Framework channel authentication overrides (all empty = the public cloud).
    channel_openid_metadata_url: str = ""
    channel_token_issuer: str = ""
    # SSO: the Application ID URI of the bot's Entra app ("api://botid-{appId}" by default).
    sso_app_id_uri: str = ""
    # Key for the encrypted token cache (urlsafe base64 of 32 bytes).
    token_cache_key: str = field(default="", repr=False)
    # Shared secret for POST /api/notifications.
    notifications_secret: str = field(default="", repr=False)
    # Where the app is reachable from Teams (for the manifest's validDomains).
    bot_domain: str = ""
    # Bearer token (or basic-auth password) for the status page and admin routes.
    admin_token: str = field(default="", repr=False)
    # Reminders: one digest a day instead of one reminder per review.
    reminder_digest: bool = False
    # Who gets escalations for a reviewer without a manager when the review names no fallback
    # reviewer (a user object id).
    escalation_fallback_user: str = ""
    # A manual reminder (remind-now) reaches each reviewer of a review at most once in this many
    # hours, whichever replica, route or command line asks.
    manual_reminder_window_h: float = 12.0

    # The language of cards for people whose mailbox and Teams client name none the cards speak
    # (a BCP 47 tag such as de-DE; normalized).
    default_locale: str = DEFAULT_LOCALE
    # The reminder policy, working hours and holidays (REMINDER_POLICY, ESCALATION, ...).
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    # Bot Connector base URL for chats the bot starts itself (reviewers who never wrote to it).
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"

    @property
    def demo_mode(self) -> bool:
        """True when no Bot Framework credentials are configured: the emulator stands in for Microsoft."""
        return not self.app_id

    @property
    def bind_host(self) -> str:
        """The interface to listen on: ``HOST``, else loopback in demo mode and all interfaces
        otherwise. The demo is unauthenticated (no app id, an open status page), so it is
        reachable from this machine only unless ``HOST`` says otherwise; a real bot in a
        container must listen on all interfaces."""
        if self.host:
            return self.host
        return "127.0.0.1" if self.demo_mode else "0.0.0.0"  # noqa: S104

    @property
    def effective_credential_type(self) -> str:
        """The credential kind in force (validated by :func:`load_settings`); "" in demo mode."""
        if self.credential_type:
            return self.credential_type
        if self.app_type == "UserAssignedMSI":
            return "managed-identity"
        configured = _configured_credentials(self)
        return configured[0][0] if len(configured) == 1 else ""

    @property
    def effective_sso_app_id_uri(self) -> str:
        return self.sso_app_id_uri or (f"api://botid-{self.app_id}" if self.app_id else "")


# Environment variable → (field name, parser). Parsers raise ValueError with "what is allowed".
def _str(value: str) -> str:
    return value.strip()


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ValueError("must be a whole number from 0 to 65535") from None
    if not 0 <= port <= 65535:
        raise ValueError("must be a whole number from 0 to 65535")
    return port


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError("must be a positive whole number") from None
    if number <= 0:
        raise ValueError("must be a positive whole number")
    return number


#: More serving processes than this is a typo, not a deployment (each one holds a store pool).
MAX_WORKERS = 64


def _workers(value: str) -> int:
    number = _positive_int(value)
    if number > MAX_WORKERS:
        raise ValueError(f"must be a whole number from 1 to {MAX_WORKERS}")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a positive number of seconds") from None
    if not number > 0:
        raise ValueError("must be a positive number of seconds")
    return number


def _positive_hours(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a positive number of hours") from None
    if not 0 < number <= 24 * 366:
        raise ValueError("must be a positive number of hours, at most a year")
    return number


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
        raise ValueError("must be one of " + ", ".join(choices))

    return parse


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _locale(value: str) -> str:
    locale = normalize_locale(value)
    if locale is None:
        languages = ", ".join(TABLE_LOCALES)
        raise ValueError(f"must be a language the cards speak ({languages}), with any region")
    return locale


def _https_url(value: str) -> str:
    url = value.strip().rstrip("/")
    if not url.startswith("https://"):
        raise ValueError("must be an https:// URL")
    return url


def _url_or_empty(value: str) -> str:
    url = value.strip()
    if url and not url.startswith(("https://", "http://")):
        raise ValueError("must be an http(s):// URL or empty")
    return url


def _database_url(value: str) -> str:
    url = value.strip()
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ValueError("must start with sqlite:/// or postgresql://")
    return url


def _existing_file_or_empty(value: str) -> str:
    path = value.strip()
    if path and not Path(path).is_file():
        raise ValueError(f"must name an existing file (not found: {path})")
    return path


def _fernet_key_or_empty(value: str) -> str:
    key = value.strip()
    if not key:
        return key
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            "must be 32 bytes in urlsafe base64 (make one with: "
            'python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())")'
        )
    return key


_VARIABLES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "MicrosoftAppId": ("app_id", _str),
    "MicrosoftAppPassword": ("app_password", _str),
    "MicrosoftAppType": ("app_type", _choice(APP_TYPES)),
    "MicrosoftAppTenantId": ("app_tenant_id", _str),
    "CREDENTIAL_TYPE": ("credential_type", _choice(CREDENTIAL_TYPES)),
    "CERTIFICATE_PATH": ("certificate_path", _str),
    "CERTIFICATE_PASSWORD": ("certificate_password", lambda v: v),
    "AZURE_FEDERATED_TOKEN_FILE": ("federated_token_file", _str),
    "AZURE_CLIENT_ID": ("azure_client_id", _str),
    "AZURE_TENANT_ID": ("azure_tenant_id", _str),
    "MANAGED_IDENTITY_CLIENT_ID": ("managed_identity_client_id", _str),
    "HOST": ("host", _str),
    "PORT": ("port", _port),
    "WORKERS": ("workers", _workers),
    "MAX_BODY_BYTES": ("max_body_bytes", _positive_int),
    "DATABASE_URL": ("database_url", _database_url),
    "DB_POOL_SIZE": ("db_pool_size", _positive_int),
    "DB_STATEMENT_TIMEOUT_MS": ("db_statement_timeout_ms", _positive_int),
    "LOG_LEVEL": ("log_level", lambda v: _choice(LOG_LEVELS)(v.upper())),
    "LOG_FORMAT": ("log_format", _choice(LOG_FORMATS)),
    "POLL_INTERVAL_S": ("poll_interval_s", _positive_float),
    "LEASE_TTL_S": ("lease_ttl_s", _positive_float),
    "CLAIM_LEASE_S": ("claim_lease_s", _positive_float),
    "GRAPH_BASE_URL": ("graph_base_url", _https_url),
    "AUTHORITY_HOST": ("authority_host", _https_url),
    "CA_BUNDLE": ("ca_bundle", _existing_file_or_empty),
    "CHANNEL_OPENID_METADATA_URL": ("channel_openid_metadata_url", _url_or_empty),
    "CHANNEL_TOKEN_ISSUER": ("channel_token_issuer", _str),
    "SSO_APP_ID_URI": ("sso_app_id_uri", _str),
    "TOKEN_CACHE_KEY": ("token_cache_key", _fernet_key_or_empty),
    "NOTIFICATIONS_SECRET": ("notifications_secret", _str),
    "BOT_DOMAIN": ("bot_domain", _str),
    "TEAMS_SERVICE_URL": ("teams_service_url", _url_or_empty),
    "ADMIN_TOKEN": ("admin_token", _str),
    "REMINDER_DIGEST": ("reminder_digest", _bool),
    "ESCALATION_FALLBACK_USER": ("escalation_fallback_user", _str),
    "MANUAL_REMINDER_WINDOW_H": ("manual_reminder_window_h", _positive_hours),
    "DEFAULT_LOCALE": ("default_locale", _locale),
}

# Variables whose values are secrets: never echoed in an error message.
SECRET_VARIABLES = frozenset(
    {
        "MicrosoftAppPassword",
        "CERTIFICATE_PASSWORD",
        "TOKEN_CACHE_KEY",
        "NOTIFICATIONS_SECRET",
        "ADMIN_TOKEN",
    }
)


def documented_variables() -> tuple[str, ...]:
    """Every variable the settings read (``.env.example`` must document each; a test checks it)."""
    return (*_VARIABLES, *POLICY_VARIABLES)


def load_settings(
    environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
) -> Settings:
    """Read settings from ``environ`` (default: the process environment) over an optional ``.env``.

    The process environment wins over the file, as with docker and most twelve-factor tools.
    """
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    parsed: dict[str, Any] = {}
    for variable, (name, parse) in _VARIABLES.items():
        raw = values.get(variable)
        if raw is None or raw == "":
            continue
        try:
            parsed[name] = parse(raw)
        except ValueError as exc:
            shown = "" if variable in SECRET_VARIABLES else f" (got {raw!r})"
            raise SettingsError(f"{variable} {exc}{shown}") from None

    try:
        parsed["schedule"] = ScheduleSettings.from_env(values)
    except PolicyError as exc:
        raise SettingsError(str(exc)) from None
    _adopt_workload_identity(parsed)
    settings = Settings(**parsed)
    _check_consistency(settings)
    return settings


def _adopt_workload_identity(parsed: dict[str, Any]) -> None:
    """Azure Workload Identity's webhook injects ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID`` with the
    token file: they stand for ``MicrosoftAppId``/``MicrosoftAppTenantId`` when those are empty
    (and must agree with them when both are given)."""
    if not parsed.get("federated_token_file"):
        return
    for ours, theirs, ours_name, theirs_name in (
        ("app_id", "azure_client_id", "MicrosoftAppId", "AZURE_CLIENT_ID"),
        ("app_tenant_id", "azure_tenant_id", "MicrosoftAppTenantId", "AZURE_TENANT_ID"),
    ):
        mine, injected = parsed.get(ours, ""), parsed.get(theirs, "")
        if mine and injected and mine.lower() != injected.lower():
            raise SettingsError(
                f"{theirs_name} ({injected}) differs from {ours_name} ({mine}): the federated "
                "token must be exchanged for the bot's own app registration"
            )
        if injected and not mine:
            parsed[ours] = injected


# Which settings configure each credential kind (the first variable names it in messages).
_CREDENTIAL_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("secret", "app_password", "MicrosoftAppPassword"),
    ("certificate", "certificate_path", "CERTIFICATE_PATH"),
    ("federated-token-file", "federated_token_file", "AZURE_FEDERATED_TOKEN_FILE"),
    ("managed-identity", "managed_identity_client_id", "MANAGED_IDENTITY_CLIENT_ID"),
)


def _configured_credentials(settings: Settings) -> list[tuple[str, str]]:
    """(kind, variable) of every credential whose setting is given."""
    return [
        (kind, variable) for kind, name, variable in _CREDENTIAL_SOURCES if getattr(settings, name)
    ]


def _check_credential(settings: Settings) -> None:
    """Exactly one credential, consistent with CREDENTIAL_TYPE and MicrosoftAppType."""
    configured = _configured_credentials(settings)
    wanted = settings.credential_type
    if settings.app_type == "UserAssignedMSI":
        if wanted and wanted != "managed-identity":
            raise SettingsError(
                f"MicrosoftAppType UserAssignedMSI means the managed-identity credential, but "
                f"CREDENTIAL_TYPE is {wanted}"
            )
        wanted = "managed-identity"
    if not wanted:
        if not configured:
            raise SettingsError(
                "MicrosoftAppId is set but no credential is: set CERTIFICATE_PATH, "
                "AZURE_FEDERATED_TOKEN_FILE, MANAGED_IDENTITY_CLIENT_ID or MicrosoftAppPassword "
                "(see docs/deploy.md)"
            )
        if len(configured) > 1:
            names = " and ".join(variable for _, variable in configured)
            raise SettingsError(
                f"{names} are all set: configure one credential only (the bot uses a single "
                "credential for every token)"
            )
        wanted = configured[0][0]
    variable = next(v for kind, _, v in _CREDENTIAL_SOURCES if kind == wanted)
    if not any(kind == wanted for kind, _ in configured):
        if wanted == "managed-identity":
            raise SettingsError(
                "MANAGED_IDENTITY_CLIENT_ID is required for the managed-identity credential (the "
                "client id of the user-assigned identity the app registration trusts)"
            )
        if wanted == "federated-token-file":
            raise SettingsError(
                "AZURE_FEDERATED_TOKEN_FILE is required for the federated-token-file credential: "
                "is the workload identity webhook injecting it (the pod's label "
                "azure.workload.identity/use, its service account's client-id annotation)?"
            )
        raise SettingsError(f"{variable} is required for the {wanted} credential")
    others = [v for kind, v in configured if kind != wanted]
    if others:
        raise SettingsError(
            f"{' and '.join(others)} set besides the {wanted} credential: remove "
            + ("them" if len(others) > 1 else "it")
            + " (the bot uses one credential for every token, and nothing unused should lie around)"
        )
    if wanted == "managed-identity" and (
        settings.managed_identity_client_id.lower() == settings.app_id.lower()
    ):
        raise SettingsError(
            "MANAGED_IDENTITY_CLIENT_ID equals MicrosoftAppId: MicrosoftAppId must be the app "
            "registration (it exposes the SSO API and does on-behalf-of), and the managed "
            "identity one of its federated credentials (see docs/deploy.md)"
        )
    if settings.certificate_password and wanted != "certificate":
        raise SettingsError("CERTIFICATE_PASSWORD is set but the credential is not a certificate")


def _check_consistency(settings: Settings) -> None:
    if settings.app_id:
        if not settings.app_tenant_id:
            raise SettingsError(
                "MicrosoftAppTenantId is required when MicrosoftAppId is set "
                "(the tenant whose access reviews the bot works on)"
            )
        _check_credential(settings)
        if not settings.token_cache_key:
            raise SettingsError(
                "TOKEN_CACHE_KEY is required when MicrosoftAppId is set (it encrypts stored "
                'sign-ins); make one with: python -c "import base64,os;'
                'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
            )
    else:
        _refuse_production_settings_in_demo_mode(settings)


# Without MicrosoftAppId the process runs the demo: open admin routes, the emulator's tenant in
# its store. A setting that only a real deployment has means the app id is missing by mistake
# (most often: the workload identity webhook did not inject AZURE_CLIENT_ID), so it stops the
# process with the likely cause instead of starting the demo in production.
_NO_APP_ID = "but there is no MicrosoftAppId"
_WEBHOOK_HINT = (
    "(nor AZURE_CLIENT_ID): is the workload identity webhook injecting it (the pod's label "
    "azure.workload.identity/use, its service account's client-id annotation)? Otherwise set "
    "MicrosoftAppId to the app registration's Application (client) ID"
)
_SET_APP_ID = (
    ": set MicrosoftAppId to the app registration's Application (client) ID (without it the bot "
    "runs the demo)"
)


def _refuse_production_settings_in_demo_mode(settings: Settings) -> None:
    kind = settings.credential_type
    if kind:
        hint = f" {_WEBHOOK_HINT}" if kind == "federated-token-file" else _SET_APP_ID
        raise SettingsError(f"CREDENTIAL_TYPE is set ({kind}) {_NO_APP_ID}{hint}")
    configured = _configured_credentials(settings)
    if configured:
        variable = configured[0][1]
        hint = f" {_WEBHOOK_HINT}" if variable == "AZURE_FEDERATED_TOKEN_FILE" else _SET_APP_ID
        raise SettingsError(f"{variable} is set {_NO_APP_ID}{hint}")
    if settings.app_type != "MultiTenant":
        raise SettingsError(f"MicrosoftAppType {settings.app_type} needs MicrosoftAppId")
    if not settings.database_url.startswith("sqlite:///"):
        raise SettingsError(
            f"DATABASE_URL names a PostgreSQL database {_NO_APP_ID}: the demo (what runs without "
            "it) writes its emulated tenant into its store and runs on SQLite only; set "
            "MicrosoftAppId for a real tenant"
        )
    for variable, value in (
        ("MicrosoftAppTenantId", settings.app_tenant_id),
        ("ADMIN_TOKEN", settings.admin_token),
        ("TOKEN_CACHE_KEY", settings.token_cache_key),
    ):
        if value:
            raise SettingsError(f"{variable} is set {_NO_APP_ID}{_SET_APP_ID}")


def settings_field_names() -> frozenset[str]:
    return frozenset(f.name for f in fields(Settings))
