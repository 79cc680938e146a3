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

__all__ = ["APP_TYPES", "LOG_FORMATS", "Settings", "SettingsError", "load_settings"]

APP_TYPES = ("MultiTenant", "SingleTenant", "UserAssignedMSI")
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
    # Serving.
    # Empty: the mode decides (see ``bind_host``).
    host: str = ""
    port: int = 3978
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


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a positive number of seconds") from None
    if not number > 0:
        raise ValueError("must be a positive number of seconds")
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
    "HOST": ("host", _str),
    "PORT": ("port", _port),
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
    "DEFAULT_LOCALE": ("default_locale", _locale),
}

# Variables whose values are secrets: never echoed in an error message.
SECRET_VARIABLES = frozenset(
    {"MicrosoftAppPassword", "TOKEN_CACHE_KEY", "NOTIFICATIONS_SECRET", "ADMIN_TOKEN"}
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
    settings = Settings(**parsed)
    _check_consistency(settings)
    return settings


def _check_consistency(settings: Settings) -> None:
    if settings.app_id:
        if not settings.app_tenant_id:
            raise SettingsError(
                "MicrosoftAppTenantId is required when MicrosoftAppId is set "
                "(the tenant whose access reviews the bot works on)"
            )
        if settings.app_type == "UserAssignedMSI":
            raise SettingsError(
                "MicrosoftAppType UserAssignedMSI is not supported yet: the bot needs a client "
                "secret for Graph (on-behalf-of); use SingleTenant or MultiTenant"
            )
        if not settings.app_password:
            raise SettingsError("MicrosoftAppPassword is required when MicrosoftAppId is set")
        if not settings.token_cache_key:
            raise SettingsError(
                "TOKEN_CACHE_KEY is required when MicrosoftAppId is set (it encrypts stored "
                'sign-ins); make one with: python -c "import base64,os;'
                'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
            )
    elif settings.app_password:
        raise SettingsError("MicrosoftAppPassword is set but MicrosoftAppId is empty")


def settings_field_names() -> frozenset[str]:
    return frozenset(f.name for f in fields(Settings))
