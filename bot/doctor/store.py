"""The store check: ``DATABASE_URL`` opened without migrating it, and asked to answer."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.doctor.report import CheckResult, Status
from bot.settings import Settings
from bot.store import StoreError, open_store
from bot.store.schema import LATEST_VERSION

__all__ = ["check_store"]


def _safe_database_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://", 1)[0] + "://…"


async def check_store(settings: Settings) -> CheckResult:
    """Open the store without migrating it and ask it to answer."""
    key, title = "store", "Store (DATABASE_URL)"
    shown = _safe_database_url(settings.database_url)
    fix = (
        "Check DATABASE_URL: for SQLite the directory must be writable by the bot's user "
        "(a mounted volume in a container); for PostgreSQL the server must be reachable and "
        "the user allowed to connect (see .env.example)."
    )
    try:
        store = await open_store(settings.database_url, migrate=False)
    except StoreError as exc:
        return CheckResult(key, title, Status.FAILED, f"{shown}: {exc}", fix)
    except Exception as exc:  # e.g. a driver refusing the URL; never a traceback
        # The class name only: driver messages can quote the URL, password included.
        return CheckResult(
            key, title, Status.FAILED, f"{shown}: cannot open it ({exc.__class__.__name__})", fix
        )
    try:
        await store.ping()
    except StoreError as exc:
        return CheckResult(key, title, Status.FAILED, f"{shown}: {exc}", fix)
    else:
        try:
            version = await store.schema_version()
        except StoreError:
            return CheckResult(
                key,
                title,
                Status.PASSED,
                f"{shown} answers; its tables are created at the bot's first start",
            )
        if version > LATEST_VERSION:
            return CheckResult(
                key,
                title,
                Status.FAILED,
                f"{shown} has schema version {version}, newer than this bot's {LATEST_VERSION}",
                "Run the same (or a newer) version of the bot as the one that wrote this database.",
            )
        state = (
            "up to date"
            if version == LATEST_VERSION
            else (f"version {version}; the bot migrates it to {LATEST_VERSION} at start")
        )
        return CheckResult(key, title, Status.PASSED, f"{shown} answers; schema {state}")
    finally:
        await store.close()
