"""Logs never carry secrets, and JSON mode writes one object per line."""

from __future__ import annotations

import json
import logging

import pytest

from bot.logs import JsonFormatter, RedactingFilter, TextFormatter, redact

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        ("header Bearer abc.def-ghi", "abc.def-ghi"),
        (f"token in url ?x={JWT}", JWT),
        ("client_secret=Zx9~secret-value&grant_type=client_credentials", "Zx9~secret-value"),
        ('{"password": "pa55word"}', "pa55word"),
        ("refresh_token=0.AAAA-long-refresh", "0.AAAA-long-refresh"),
    ],
)
def test_redact_removes_credentials(text: str, secret: str) -> None:
    assert secret not in redact(text)


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_filter_scrubs_arguments_and_structured_fields() -> None:
    record = _record("calling graph with %s", f"Bearer {JWT}", access_token=JWT, user="alex")
    RedactingFilter().filter(record)
    line = JsonFormatter().format(record)
    assert JWT not in line
    entry = json.loads(line)
    assert entry["access_token"] == "[redacted]" and entry["user"] == "alex"
    assert entry["level"] == "INFO" and entry["message"].startswith("calling graph with Bearer")


def test_text_format_appends_structured_fields() -> None:
    record = _record("sent", status=201)
    RedactingFilter().filter(record)
    assert TextFormatter().format(record).endswith("t: sent status=201")
