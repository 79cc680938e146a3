"""Logging set-up: plain text or one JSON object per line, with secrets scrubbed.

Every record passes through :class:`RedactingFilter`, which removes bearer tokens, JWTs and
``password``/``secret``/``token`` values from the message and its structured fields, so a log line
can never carry a credential even when a caller passes one by mistake.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["RedactingFilter", "configure_logging", "quiet_loggers", "redact"]

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_KEY_VALUE = re.compile(
    r"(?i)\b([a-z_]*(?:password|secret|token|assertion|client_secret|authorization)[a-z_]*)"
    r"([\"']?\s*[=:]\s*[\"']?)([^\s\"',;}&]+)"
)
_SECRET_FIELD = re.compile(r"(?i)(password|secret|token|assertion|authorization)")

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is a structured field.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    """Remove anything that looks like a credential from ``text``."""
    text = _JWT.sub("[redacted-jwt]", text)
    text = _BEARER.sub(r"\1 [redacted]", text)
    return _KEY_VALUE.sub(r"\1\2[redacted]", text)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_FIELD.search(key):
        return "[redacted]"
    if isinstance(value, str):
        return redact(value)
    return value


class RedactingFilter(logging.Filter):
    """Scrubs the formatted message and the structured fields of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact_value(key, value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, structured fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS:
                entry[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Readable lines; structured fields appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{key}={value}" for key, value in vars(record).items() if key not in _STANDARD_ATTRS
        ]
        if record.exc_info:
            line = redact(line)
        return line + (" " + " ".join(extras) if extras else "")


def configure_logging(*, level: str = "INFO", fmt: str = "text") -> None:
    """Install one handler on the root logger (replacing earlier ones from this function)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    handler.set_name("access-review-bot")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "access-review-bot":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party libraries are chatty at INFO; their warnings still show.
    for noisy in ("aiohttp.access", "msal", "urllib3", "httpx", "httpcore", "msrest", "azure"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def quiet_loggers(names: tuple[str, ...] | list[str], *, level: str) -> None:
    """Keep the INFO lines of ``names`` (and their children) out of the log unless ``level`` is
    DEBUG: what is routine in one mode (the demo's start-up) can bury what matters there."""
    if logging.getLevelName(level) <= logging.DEBUG:
        return
    for name in names:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
