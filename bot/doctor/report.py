"""The doctor's report: one result per check, and how it is printed (Unicode marks, or ASCII for
consoles that cannot show them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TextIO

__all__ = ["CheckResult", "DoctorReport", "Status", "can_encode", "render", "to_ascii"]


class Status(StrEnum):
    """How a check ended."""

    PASSED = "passed"
    WARNING = "warning"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "not checked"


@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's output.

    ``key`` is stable (``credential``, ``app_token``, ``permission:User.Read.All``, ``delegated_consent``,
    ``sso_app_id_uri``, ``teams_catalog``, ``connector_token``, ``store``, ``configuration``);
    ``detail`` says what was found, ``fix`` what an admin should do about it.
    """

    key: str
    title: str
    status: Status
    detail: str = ""
    fix: str = ""


@dataclass(frozen=True)
class DoctorReport:
    """Every check, in the order they are printed."""

    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing had to be skipped."""
        return all(
            r.status in (Status.PASSED, Status.WARNING, Status.UNKNOWN) for r in self.results
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def result(self, key: str) -> CheckResult:
        """The result of the check named ``key`` (``KeyError`` if there is none)."""
        for item in self.results:
            if item.key == key:
                return item
        raise KeyError(key)


_MARKS = {
    Status.PASSED: "✓",
    Status.WARNING: "!",
    Status.FAILED: "✗",
    Status.SKIPPED: "–",
    Status.UNKNOWN: "?",
}
_ASCII_MARKS = {
    Status.PASSED: "[ok]",
    Status.WARNING: "[warn]",
    Status.FAILED: "[FAIL]",
    Status.SKIPPED: "[skip]",
    Status.UNKNOWN: "[?]",
}


def render(report: DoctorReport, *, header: Sequence[str] = (), ascii_only: bool = False) -> str:
    """The report as text: one line per check, an indented fix under each ✗ and ?, a summary."""
    marks = _ASCII_MARKS if ascii_only else _MARKS
    lines = list(header)
    for item in report.results:
        line = f"{marks[item.status]} {item.title}"
        if item.detail:
            line += f": {item.detail}"
        lines.append(line)
        if item.fix and item.status in (Status.FAILED, Status.WARNING, Status.UNKNOWN):
            lines.append(
                f"    {'How to fix' if item.status is Status.FAILED else 'What to do'}: {item.fix}"
            )
    counts = {status: sum(1 for r in report.results if r.status is status) for status in Status}
    lines.append("")
    verdict = (
        "All good."
        if report.ok
        else (f"Fix the {marks[Status.FAILED]} lines above and run the doctor again.")
    )
    warned = f", {counts[Status.WARNING]} warning(s)" if counts[Status.WARNING] else ""
    lines.append(
        f"{counts[Status.PASSED]} passed{warned}, {counts[Status.FAILED]} failed, "
        f"{counts[Status.SKIPPED]} skipped, {counts[Status.UNKNOWN]} not checked. {verdict}"
    )
    return "\n".join(lines) + "\n"


_ASCII = str.maketrans({"→": "->", "–": "-", "…": "...", "“": '"', "”": '"', "’": "'"})


def to_ascii(text: str) -> str:
    """For consoles that cannot show Unicode (a Windows code page, ``LANG=C``)."""
    return text.translate(_ASCII).encode("ascii", "replace").decode("ascii")


def can_encode(out: TextIO, text: str) -> bool:
    encoding = getattr(out, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True
