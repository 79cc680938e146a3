"""Run checkov on the Kubernetes manifests and fail on anything above LOW.

Usage (scripts/check-deploy does this, inside .venv-deploy):

    python deploy/checkov_gate.py .venv-deploy/bin/checkov deploy/kubernetes

checkov runs offline (``--skip-download``: no policy download, no platform upload). Offline it
knows no severities — those come from the Prisma Cloud platform — so a failed check without one
counts as above LOW: the manifests must pass every check, or skip one in the resource's
``checkov.io/skip`` annotation with the reason, where a reviewer sees it. The gate also fails when
checkov parsed nothing (a run that checked nothing proves nothing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

ALLOWED_SEVERITIES = {"LOW", "INFO"}


def _reports(output: str) -> list[dict[str, Any]]:
    data = json.loads(output)
    return data if isinstance(data, list) else [data]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: checkov_gate.py CHECKOV_EXECUTABLE MANIFEST_DIRECTORY", file=sys.stderr)
        return 2
    checkov, directory = argv
    completed = subprocess.run(  # noqa: S603 - our own tool, arguments from this script
        [
            checkov,
            "--directory",
            directory,
            "--framework",
            "kubernetes",
            "--skip-download",
            "--output",
            "json",
            "--quiet",
            "--compact",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    try:
        reports = _reports(completed.stdout)
    except json.JSONDecodeError:
        print(f"checkov gave no JSON report (exit {completed.returncode}):", file=sys.stderr)
        print(completed.stderr[-2000:] or completed.stdout[-2000:], file=sys.stderr)
        return 1
    blocking: list[str] = []
    passed = failed = skipped = resources = 0
    for report in reports:
        summary = report.get("summary") or {}
        passed += int(summary.get("passed", 0))
        failed += int(summary.get("failed", 0))
        skipped += int(summary.get("skipped", 0))
        resources += int(summary.get("resource_count", 0))
        if summary.get("parsing_errors"):
            blocking.append(f"{summary['parsing_errors']} file(s) could not be parsed")
        results = report.get("results") or {}
        for check in results.get("failed_checks") or []:
            severity = str(check.get("severity") or "UNKNOWN").upper()
            line = (
                f"{check.get('check_id')} [{severity}] {check.get('check_name')} — "
                f"{check.get('resource')} ({check.get('file_path')})"
            )
            if severity not in ALLOWED_SEVERITIES:
                blocking.append(line)
            else:
                print(f"low: {line}")
        for check in results.get("skipped_checks") or []:
            reason = (check.get("check_result") or {}).get("suppress_comment", "")
            print(f"skipped: {check.get('check_id')} {check.get('resource')}: {reason}")
    print(
        f"checkov: {resources} resources, {passed} checks passed, {failed} failed, "
        f"{skipped} skipped"
    )
    if resources == 0 or passed == 0:
        blocking.append("checkov checked nothing")
    for line in blocking:
        print(f"above LOW: {line}", file=sys.stderr)
    return 1 if blocking else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
