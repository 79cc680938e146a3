"""Builds the Teams app package (manifest.json + icons in a flat zip) and its command line.

``python app.py manifest build --out app.zip [--app-id … --domain …]`` ends up in :func:`main`;
``python app.py manifest validate app.zip`` checks an existing package the same way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from manifest.validate import (
    MANIFEST_FILE,
    MANIFEST_VERSION,
    SCHEMA_NPM_PACKAGE,
    SCHEMA_RELATIVE_PATH,
    SCHEMA_URL,
    SSO_DOMAIN,
    ManifestInvalid,
    ManifestSchema,
    SchemaUnusable,
    find_schema,
    package_problems,
    validate_package,
)

logger = logging.getLogger(__name__)

DEFAULT_SHORT_NAME = "Access Review Bot"
DEFAULT_FULL_NAME = "Access Review Bot for Microsoft Entra ID"
DEFAULT_SHORT_DESCRIPTION = "Approve or deny your Microsoft Entra ID access reviews in Teams."
DEFAULT_FULL_DESCRIPTION = (
    "Access Review Bot finds the Microsoft Entra ID access-review decisions waiting for you and "
    "brings them to a Teams chat: one card per review with the evidence for each person "
    "(recommendation, last sign-in, account state), one click to approve, deny or say you don't "
    "know, or accept all recommendations at once. Your decisions are recorded in Entra ID under "
    "your name. Reminders come only while you still have decisions to make."
)
DEFAULT_APP_VERSION = "1.0.0"

# The icons are drawn by manifest/draw_icons.py and committed next to this module.
ICON_DIR = Path(__file__).resolve().parent
COLOR_ICON_FILE = "color.png"
OUTLINE_ICON_FILE = "outline.png"
# Solid background of the colour icon; accentColor uses the same value so the tile Teams draws
# around the icon matches it.
ACCENT_COLOR_HEX = "#2F5FD0"

# The chat commands the bot answers; its command router must use the same words.
BOT_COMMANDS: tuple[tuple[str, str], ...] = (
    ("pending", "Show the access-review decisions waiting for you"),
    ("help", "What this bot does and how to use it"),
)

# A fixed timestamp for every zip entry: the same inputs give a byte-identical package, so a
# rebuilt package can be compared with the one uploaded to the catalog.
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)

_ENV_APP_ID = "MicrosoftAppId"
_ENV_DOMAIN = "BOT_DOMAIN"
_ENV_SSO_RESOURCE = "SSO_APP_ID_URI"


@dataclass(frozen=True)
class DeveloperInfo:
    """The ``developer`` block of the manifest (Teams shows it on the app's details page)."""

    name: str
    website_url: str
    privacy_url: str
    terms_of_use_url: str

    @classmethod
    def for_domain(cls, domain: str, *, name: str = DEFAULT_SHORT_NAME) -> DeveloperInfo:
        """Pages under the bot's own host: the usual choice for a tenant's internal app."""
        base = f"https://{domain}"
        return cls(
            name=name,
            website_url=f"{base}/",
            privacy_url=f"{base}/privacy",
            terms_of_use_url=f"{base}/terms",
        )


def default_sso_resource(app_id: str) -> str:
    """The Application ID URI Teams expects for a bot-only SSO app: ``api://botid-{appId}``."""
    return f"api://botid-{app_id}"


def build_manifest(
    *,
    app_id: str,
    sso_resource: str | None,
    domains: Sequence[str],
    version: str,
    name: str = DEFAULT_SHORT_NAME,
    full_name: str = DEFAULT_FULL_NAME,
    developer: DeveloperInfo | None = None,
    teams_app_id: str | None = None,
) -> dict[str, Any]:
    """The manifest.json content for this bot (a pure function; the checks come later).

    ``domains`` are the bot's own host names; ``token.botframework.com`` is always added because
    SSO needs it. ``sso_resource`` defaults to ``api://botid-{app_id}``. ``teams_app_id`` (the
    manifest's own ``id``) defaults to ``app_id``: one id for the Entra app, the bot and the Teams
    app keeps the admin's set-up to a single GUID, and Teams allows it. ``developer`` defaults to
    pages under the first domain; with neither, ValueError.
    """
    valid_domains = list(dict.fromkeys([*domains, SSO_DOMAIN]))
    if developer is None:
        if not domains:
            raise ValueError("give the bot's domain or the developer info (its URLs)")
        developer = DeveloperInfo.for_domain(domains[0])
    return {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": teams_app_id or app_id,
        "developer": {
            "name": developer.name,
            "websiteUrl": developer.website_url,
            "privacyUrl": developer.privacy_url,
            "termsOfUseUrl": developer.terms_of_use_url,
        },
        "name": {"short": name, "full": full_name},
        "description": {"short": DEFAULT_SHORT_DESCRIPTION, "full": DEFAULT_FULL_DESCRIPTION},
        "icons": {"color": COLOR_ICON_FILE, "outline": OUTLINE_ICON_FILE},
        "accentColor": ACCENT_COLOR_HEX,
        "bots": [
            {
                "botId": app_id,
                # Personal only: cards go to 1:1 chats, and Universal Actions SSO needs the
                # personal scope declared.
                "scopes": ["personal"],
                "supportsFiles": False,
                "isNotificationOnly": False,
                "supportsCalling": False,
                "supportsVideo": False,
                "commandLists": [
                    {
                        "scopes": ["personal"],
                        "commands": [
                            {"title": title, "description": description}
                            for title, description in BOT_COMMANDS
                        ],
                    }
                ],
            }
        ],
        "defaultInstallScope": "personal",
        "validDomains": valid_domains,
        "webApplicationInfo": {
            "id": app_id,
            "resource": sso_resource or default_sso_resource(app_id),
        },
    }


def build_package(
    *,
    app_id: str,
    sso_resource: str | None,
    domains: Sequence[str],
    version: str,
    out_path: Path,
    name: str = DEFAULT_SHORT_NAME,
    full_name: str = DEFAULT_FULL_NAME,
    developer: DeveloperInfo | None = None,
    teams_app_id: str | None = None,
    color_icon: Path | None = None,
    outline_icon: Path | None = None,
    schema: ManifestSchema | None = None,
) -> Path:
    """Write the Teams app package zip to ``out_path`` and return that path.

    The zip holds ``manifest.json``, ``color.png`` and ``outline.png`` at its root. The icons
    default to the project's own (next to this module). Everything is checked before anything is
    written: the manifest against ``schema`` when given (see
    :func:`manifest.validate.find_schema`), this project's rules, and the icons' sizes and
    transparency. On any problem :class:`ManifestInvalid` is raised with all of them and
    ``out_path`` is left untouched.
    """
    manifest = build_manifest(
        app_id=app_id,
        sso_resource=sso_resource,
        domains=domains,
        version=version,
        name=name,
        full_name=full_name,
        developer=developer,
        teams_app_id=teams_app_id,
    )
    files = {
        MANIFEST_FILE: (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(),
        COLOR_ICON_FILE: (color_icon or ICON_DIR / COLOR_ICON_FILE).read_bytes(),
        OUTLINE_ICON_FILE: (outline_icon or ICON_DIR / OUTLINE_ICON_FILE).read_bytes(),
    }
    problems = package_problems(files, schema)
    if problems:
        raise ManifestInvalid(problems)
    _write_zip_atomically(out_path, files)
    logger.info(
        "wrote Teams app package %s (manifest %s, schema-validated=%s)",
        out_path,
        MANIFEST_VERSION,
        schema is not None,
    )
    return out_path


def _write_zip_atomically(out_path: Path, files: Mapping[str, bytes]) -> None:
    # Written beside the target and renamed, so a failure never leaves half a zip behind.
    out_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", dir=out_path.parent)
    temp_path = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            for file_name, data in files.items():
                info = zipfile.ZipInfo(file_name, date_time=_ZIP_TIMESTAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
        # mkstemp makes the file private (0600); a package is not secret and gets uploaded by
        # other tools, so give it the usual permissions.
        temp_path.chmod(0o644)
        temp_path.replace(out_path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


# --- command line ------------------------------------------------------------------------------


def _split_domains(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py manifest",
        description="Build or check the Teams app package of Access Review Bot.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="write the app package zip")
    build.add_argument("--out", type=Path, required=True, help="zip file to write")
    build.add_argument(
        "--app-id",
        default=environ.get(_ENV_APP_ID, ""),
        help=f"bot / Entra app id (default: ${_ENV_APP_ID})",
    )
    build.add_argument(
        "--domain",
        action="append",
        dest="domains",
        default=None,
        help=f"bot host name, repeatable (default: ${_ENV_DOMAIN}, comma-separated)",
    )
    build.add_argument(
        "--sso-resource",
        default=environ.get(_ENV_SSO_RESOURCE) or None,
        help=f"Application ID URI (default: ${_ENV_SSO_RESOURCE}, else api://botid-{{app id}})",
    )
    build.add_argument(
        "--app-version",
        default=DEFAULT_APP_VERSION,
        help="the package version, MAJOR.MINOR.PATCH; raise it for every upload",
    )
    build.add_argument(
        "--teams-app-id", default=None, help="the manifest id when it must differ from the app id"
    )
    build.add_argument("--name", default=DEFAULT_SHORT_NAME, help="short app name (≤ 30)")
    build.add_argument("--developer-name", default=DEFAULT_SHORT_NAME)
    build.add_argument("--website-url", default=None, help="default: https://{domain}/")
    build.add_argument("--privacy-url", default=None, help="default: https://{domain}/privacy")
    build.add_argument("--terms-url", default=None, help="default: https://{domain}/terms")
    build.add_argument("--color-icon", type=Path, default=None, help="192×192 PNG")
    build.add_argument(
        "--outline-icon", type=Path, default=None, help="32×32 PNG, white on transparent"
    )
    build.add_argument(
        "--schema",
        type=Path,
        default=None,
        help="MicrosoftTeams.schema.json to use instead of the one in node_modules",
    )

    check = commands.add_parser("validate", help="check an existing app package zip")
    check.add_argument("package", type=Path)
    check.add_argument("--schema", type=Path, default=None)
    return parser


def _load_schema(explicit: Path | None, search_dirs: Sequence[Path]) -> ManifestSchema | None:
    """The schema to validate with; None (after saying how to get it) when it is not installed."""
    if explicit is not None:
        return ManifestSchema.load(explicit)
    found = find_schema(search_dirs)
    if found is None:
        where = ", ".join(str(folder) for folder in search_dirs)
        print(
            f"warning: the Teams manifest schema v{MANIFEST_VERSION} was not found "
            f"({SCHEMA_RELATIVE_PATH} at or above {where}); run `npm ci` in the repository root "
            f"to install {SCHEMA_NPM_PACKAGE}. Checked the icons and this project's rules only, "
            "not the schema.",
            file=sys.stderr,
        )
        return None
    return ManifestSchema.load(found)


def _developer(args: argparse.Namespace, domains: Sequence[str]) -> DeveloperInfo:
    defaults = DeveloperInfo.for_domain(domains[0], name=args.developer_name)
    return DeveloperInfo(
        name=args.developer_name,
        website_url=args.website_url or defaults.website_url,
        privacy_url=args.privacy_url or defaults.privacy_url,
        terms_of_use_url=args.terms_url or defaults.terms_of_use_url,
    )


def _report(problems: Iterable[object]) -> None:
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)


def main(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    schema_search_dirs: Sequence[Path] | None = None,
) -> int:
    """Run ``manifest build …`` or ``manifest validate …``; returns the process exit code.

    ``argv`` starts after ``manifest`` (``["build", "--out", "app.zip"]``). ``environ`` supplies
    the defaults (``MicrosoftAppId``, ``BOT_DOMAIN``, ``SSO_APP_ID_URI``). The schema is looked
    for in ``node_modules`` at or above ``schema_search_dirs`` (default: the current directory
    and this repository). Exit codes: 0 done, 1 the package is invalid (one ``error:`` line per
    problem on stderr, each naming the field), 2 bad usage or an unusable schema.
    """
    parser = _parser(environ)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else 2
    search_dirs = (
        list(schema_search_dirs)
        if schema_search_dirs is not None
        else [
            Path.cwd(),
            Path(__file__).resolve().parent.parent,
        ]
    )
    try:
        schema = _load_schema(args.schema, search_dirs)
    except SchemaUnusable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.command == "validate":
        problems = validate_package(args.package, schema=schema)
        _report(problems)
        if problems:
            return 1
        print(f"{args.package}: valid" + ("" if schema else " (schema not checked)"))
        return 0

    if not args.app_id:
        print(f"error: --app-id is required (or set {_ENV_APP_ID})", file=sys.stderr)
        return 2
    domains = (
        args.domains if args.domains is not None else _split_domains(environ.get(_ENV_DOMAIN, ""))
    )
    if not domains:
        print(f"error: --domain is required (or set {_ENV_DOMAIN})", file=sys.stderr)
        return 2
    try:
        out = build_package(
            app_id=args.app_id,
            sso_resource=args.sso_resource,
            domains=domains,
            version=args.app_version,
            out_path=args.out,
            name=args.name,
            developer=_developer(args, domains),
            teams_app_id=args.teams_app_id,
            color_icon=args.color_icon,
            outline_icon=args.outline_icon,
            schema=schema,
        )
    except ManifestInvalid as exc:
        _report(exc.problems)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}" + ("" if schema else " (schema not checked)"))
    return 0
