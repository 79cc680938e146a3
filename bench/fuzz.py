"""``python -m bench fuzz``: the long fuzzing run — 10,000 stranger's requests, no 5xx, no ERROR.

The cases are the fuzzing suite's (``tests/fuzz/cases.py``: activities, invoke values and card
data, ``signin/*``, JWTs with every header field and claim wrong, headers with invalid bytes,
content types and framing, notification bodies and signatures, admin query strings), drawn by
Hypothesis from a fixed seed, and sent as raw bytes over loopback to the real app in signed mode
and in anonymous demo mode, each on SQLite (``tests/fuzz/rig.py``), one after another.

Figures, for the whole run:

- ``http_5xx``: answers with a 5xx status (target 0); answers missing when the case did not
  hang up first are listed apart;
- ``error_log_lines``: ERROR (or worse) records logged by the bot's side (target 0);
- ``memory_ratio``: resident set size after the run ÷ after the warm-up (target ≤ 1.2).

Memory is RSS (``/proc/self/statm``) after a full garbage collection, measured once the first
``--warmup`` cases have filled the caches, pools and lazy imports a real process also fills.
RSS rather than tracemalloc: what a stranger could make grow includes memory Python's allocator
does not see (SQLite's page cache, OpenSSL, aiohttp's C parser buffers), and tracemalloc would
slow every allocation of a 10,000-case run. The emulated Microsoft cloud shares the process, so
the ratio is conservative. Cases are drawn in runs of ``CHUNK`` examples (see there).

Last line: ``{"cases", "http_5xx", "error_log_lines", "memory_ratio"}``. Exit status 1 when a
target is missed. ``--quick`` (CI): 500 cases.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

from bench._common import print_figures
from tests.fuzz.cases import Case, any_case
from tests.fuzz.judge import Tally, send
from tests.fuzz.rig import FuzzRig

MAX_MEMORY_RATIO = 1.2


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="500 cases (CI)")
    parser.add_argument("--cases", type=int, default=10_000, help="cases after the warm-up")
    parser.add_argument("--warmup", type=int, default=200, help="cases before memory is measured")
    parser.add_argument(
        "--seed", type=int, default=14, help="Hypothesis seed (same cases per seed)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.warmup = 500, 100
    return args


#: Examples per Hypothesis run. One run keeps bookkeeping for every example it has drawn (about
#: 28 MB per 1,000 here, measured by drawing cases alone), which would swamp the memory figure;
#: runs of this size, each from its own seed, keep the generator's share flat.
CHUNK = 500


def _run(rig: FuzzRig, tally: Tally, examples: int, first_seed: int) -> None:
    for chunk, start in enumerate(range(0, examples, CHUNK)):
        _run_chunk(rig, tally, min(CHUNK, examples - start), first_seed * 1000 + chunk)


def _run_chunk(rig: FuzzRig, tally: Tally, examples: int, fixed_seed: int) -> None:
    @seed(fixed_seed)
    @settings(
        max_examples=examples,
        phases=[Phase.generate],  # no shrinking: every case counts, none is retried
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=any_case())
    def fuzz(case: Case) -> None:
        tally.add(case, send(rig, case))

    fuzz()


def main(argv: list[str]) -> int:
    args = _parse(argv)
    tally = Tally()
    started = time.perf_counter()
    with FuzzRig() as rig:
        set_up_s = time.perf_counter() - started
        _run(rig, tally, args.warmup, args.seed)
        before = rig.measure_rss()
        measured_from = time.perf_counter()
        _run(rig, tally, args.cases, args.seed + 1)
        run_s = time.perf_counter() - measured_from
        after = rig.measure_rss()
    ratio = after / before
    figures: dict[str, Any] = {
        "cases": tally.cases,
        "http_5xx": tally.http_5xx,
        "error_log_lines": tally.error_log_lines,
        "memory_ratio": round(ratio, 3),
    }
    print(
        f"fuzz: {tally.cases} cases ({args.warmup} warm-up + {args.cases}, seed {args.seed}) "
        f"against the signed and the anonymous app; set-up {set_up_s:.1f} s, "
        f"{args.cases / run_s:.0f} cases/s after the warm-up"
    )
    print("by family/target: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.families.items())))
    print("statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items())))
    print(
        f"5xx {tally.http_5xx}, no answer {tally.no_answer}, ERROR lines {tally.error_log_lines}, "
        f"refusals with more than one WARNING {tally.extra_warnings}"
    )
    print(
        f"RSS {before / 2**20:.1f} MB after the warm-up, {after / 2**20:.1f} MB at the end: "
        f"{ratio:.3f} × (target ≤ {MAX_MEMORY_RATIO})"
    )
    for example in tally.examples:
        print("problem: " + example[:600])
    print_figures(figures)
    failed = (
        tally.http_5xx
        or tally.error_log_lines
        or tally.no_answer
        or tally.extra_warnings
        or ratio > MAX_MEMORY_RATIO
    )
    return 1 if failed else 0
