"""What every fuzzed request must satisfy, and a tally of a run for the benchmark's figures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tests.fuzz.cases import Case
from tests.fuzz.rig import FuzzRig, Outcome


def send(rig: FuzzRig, case: Case) -> Outcome:
    return rig.send(case.target, case.render, half_close=case.half_close)


def problems(outcome: Outcome, *, answer_expected: bool = True) -> list[str]:
    """Why this answer is not acceptable for anything a stranger may send ([] when it is).

    No 5xx and an answer at all; no ERROR line; and a refusal (4xx) logs at most one WARNING:
    one line saying why, not a cascade. (An accepted request may warn more: a reply the channel
    refused, a library's retries.)
    """
    found: list[str] = []
    if outcome.status is None:
        if answer_expected:  # (not when the case itself closed its side before the body)
            found.append("no HTTP answer")
    elif outcome.status >= 500:
        found.append(f"HTTP {outcome.status}")
    for line in outcome.errors:
        stack = " with a stack" if line.has_stack else ""
        raised = f" [{line.exception}]" if line.exception else ""
        found.append(f"ERROR{stack} from {line.logger}: {line.message}{raised}")
    refused = outcome.status is not None and 400 <= outcome.status < 500
    if refused and len(outcome.warnings) > 1:
        found.append(
            f"{len(outcome.warnings)} WARNING lines: "
            + " | ".join(f"{w.logger}: {w.message[:80]}" for w in outcome.warnings)
        )
    return found


@dataclass
class Tally:
    cases: int = 0
    http_5xx: int = 0
    no_answer: int = 0
    error_log_lines: int = 0
    extra_warnings: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, case: Case, outcome: Outcome) -> None:
        self.cases += 1
        self.families[f"{case.family}/{case.target}"] += 1
        if outcome.status is None:
            self.no_answer += 0 if case.half_close else 1
        else:
            self.statuses[outcome.status] += 1
            if outcome.status >= 500:
                self.http_5xx += 1
        self.error_log_lines += len(outcome.errors)
        if outcome.status is not None and 400 <= outcome.status < 500:
            self.extra_warnings += max(0, len(outcome.warnings) - 1)
        found = problems(outcome, answer_expected=not case.half_close)
        if found and len(self.examples) < 20:
            self.examples.append(f"{'; '.join(found)} ← {case!r}"[:2000])
