"""The end-of-run checks of ``python -m bench soak``: a pure function of what the run observed.

:func:`judge` takes :class:`Observations` (what the emulated connector accepted, what Graph
holds and was written, what the store holds, when the bot was killed and what its store had
recorded at that moment, what the reviewers clicked) and returns a :class:`Verdict`. It reads
nothing itself, so the unit tests (``tests/bench/test_soak_judge.py``) feed it crafted cases.

The checks:

- **cards_lost** — a (reviewer, review) pair owed a review card with no card accepted by the
  connector.
- **cards_duplicated** — every copy of a review card after the first. Teams has no idempotency
  key, so one duplicate is unavoidable for a send the connector accepted in the instant before
  a kill, before the bot recorded it: a repeat is *allowed* only when a kill lies between the
  two copies and, at that kill, the store had not recorded the earlier copy (its activity id).
  Each such unrecorded send allows one repeat (``duplicate_allowance`` counts them, the sends
  in flight at the kills); any other repeat is ``duplicates_outside_window`` and fails the run.
- **decisions_lost** — an item a reviewer clicked whose Graph decision is not what the last
  clicks on it asked (either value when Approve and Deny were clicked at once: the bot orders
  them, the newest wins), or not by that reviewer; plus every successful Graph write that
  repeated the item's previous write (the same decision written twice) other than a write the
  bot made just before a kill and made again after it (``graph_repeats_in_kill_window``).
- **store_graph_mismatches** — an item of a running review whose decision in the store is not
  Graph's (or that the store lacks).
- **http_5xx** — answers with a 5xx status the bot gave (counted by the runner).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "CardCopy",
    "GraphWrite",
    "Intent",
    "Kill",
    "Observations",
    "Verdict",
    "judge",
]

Pair = tuple[str, str]  # (reviewer oid, instance id)

#: A request the connector was handling when the bot died is answered a moment after the kill:
#: a copy accepted this long after a kill still counts as sent before it.
KILL_GRACE = timedelta(seconds=1)
#: How long before a kill a Graph write may have been made and not yet recorded by the bot (its
#: answer on the way back, the store transaction not committed): a repeat of such a write after
#: the restart is the documented at-least-once, not a duplicate decision.
WRITE_WINDOW = timedelta(seconds=5)


@dataclass(frozen=True)
class CardCopy:
    """One new review card message the connector accepted."""

    at: datetime
    activity_id: str


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: when, and which review card (activity id, per pair) the store recorded as
    sent at that moment (read after the process died, before the next one started)."""

    at: datetime
    recorded: Mapping[Pair, str]


@dataclass(frozen=True)
class Intent:
    """What the last clicks on one item asked: the reviewer and the decisions that may win."""

    reviewer: str
    allowed: frozenset[str]


@dataclass(frozen=True)
class GraphWrite:
    """One decision PATCH Graph applied (answered with success)."""

    at: datetime
    decision: str


@dataclass
class Observations:
    """Everything the judge looks at (lower-case reviewer oids throughout)."""

    expected_cards: set[Pair]
    card_copies: dict[Pair, list[CardCopy]]
    kills: list[Kill]
    intents: dict[str, Intent]
    #: item id → (decision, reviewed-by oid) in Graph, for every item of a running review.
    graph: dict[str, tuple[str, str | None]]
    #: item id → successful decision writes, in the order Graph applied them.
    graph_writes: dict[str, list[GraphWrite]]
    #: item id → decision in the store.
    store: dict[str, str]
    http_5xx: int = 0


@dataclass
class Verdict:
    """The figures and, for each miss, one line saying what."""

    cards_lost: int = 0
    cards_duplicated: int = 0
    duplicate_allowance: int = 0
    duplicates_outside_window: int = 0
    decisions_lost: int = 0
    graph_repeats_in_kill_window: int = 0
    store_graph_mismatches: int = 0
    http_5xx: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every target met: nothing lost, no mismatch, no 5xx, duplicates only where allowed."""
        return (
            self.cards_lost == 0
            and self.duplicates_outside_window == 0
            and self.decisions_lost == 0
            and self.store_graph_mismatches == 0
            and self.http_5xx == 0
        )

    def figures(self, *, minutes: float, kills: int, outage_s_max: float) -> dict[str, Any]:
        """The benchmark's last line, keys in the documented order."""
        return {
            "minutes": minutes,
            "kills": kills,
            "outage_s_max": outage_s_max,
            "cards_lost": self.cards_lost,
            "cards_duplicated": self.cards_duplicated,
            "decisions_lost": self.decisions_lost,
            "store_graph_mismatches": self.store_graph_mismatches,
            "http_5xx": self.http_5xx,
        }


def judge(observed: Observations) -> Verdict:
    """Check a finished run (see the module docstring)."""
    verdict = Verdict(http_5xx=observed.http_5xx)
    if observed.http_5xx:
        verdict.problems.append(f"the bot answered {observed.http_5xx} request(s) with a 5xx")
    _judge_cards(observed, verdict)
    _judge_decisions(observed, verdict)
    _judge_store(observed, verdict)
    return verdict


def in_flight_at(kill: Kill, copies: Mapping[Pair, Sequence[CardCopy]]) -> set[Pair]:
    """Pairs whose newest card accepted by ``kill`` (with its grace) the store had not recorded."""
    unrecorded: set[Pair] = set()
    for pair, pair_copies in copies.items():
        before = [c for c in pair_copies if c.at <= kill.at + KILL_GRACE]
        if before and kill.recorded.get(pair) != before[-1].activity_id:
            unrecorded.add(pair)
    return unrecorded


def _judge_cards(observed: Observations, verdict: Verdict) -> None:
    delivered = {pair for pair, copies in observed.card_copies.items() if copies}
    lost = sorted(observed.expected_cards - delivered)
    verdict.cards_lost = len(lost)
    for pair in lost[:10]:
        verdict.problems.append(f"card lost: reviewer {pair[0]}, review {pair[1]}")
    in_flight = [in_flight_at(kill, observed.card_copies) for kill in observed.kills]
    verdict.duplicate_allowance = sum(len(pairs) for pairs in in_flight)
    for pair, unsorted_copies in sorted(observed.card_copies.items()):
        copies = sorted(unsorted_copies, key=lambda c: c.at)
        used: set[int] = set()  # kills already spent on this pair: one repeat per unrecorded send
        for earlier, later in itertools.pairwise(copies):
            verdict.cards_duplicated += 1
            allowed = next(
                (
                    n
                    for n, kill in enumerate(observed.kills)
                    if n not in used
                    and pair in in_flight[n]
                    and earlier.at <= kill.at + KILL_GRACE
                    and kill.at <= later.at
                    and kill.recorded.get(pair) != earlier.activity_id
                ),
                None,
            )
            if allowed is None:
                verdict.duplicates_outside_window += 1
                verdict.problems.append(
                    f"card sent twice outside the kill window: reviewer {pair[0]}, review "
                    f"{pair[1]}, copies at {earlier.at.isoformat()} and {later.at.isoformat()}"
                )
            else:
                used.add(allowed)


def _judge_decisions(observed: Observations, verdict: Verdict) -> None:
    for item_id, intent in sorted(observed.intents.items()):
        decision, reviewed_by = observed.graph.get(item_id, ("(missing)", None))
        if decision not in intent.allowed or (reviewed_by or "").lower() != intent.reviewer:
            verdict.decisions_lost += 1
            verdict.problems.append(
                f"decision lost: item {item_id} is {decision} by {reviewed_by} in Graph, "
                f"{intent.reviewer} clicked {sorted(intent.allowed)}"
            )
    for item_id, writes in sorted(observed.graph_writes.items()):
        ordered = sorted(writes, key=lambda w: w.at)
        for earlier, later in itertools.pairwise(ordered):
            if earlier.decision != later.decision:
                continue
            in_window = any(
                earlier.at <= kill.at + KILL_GRACE
                and kill.at - earlier.at <= WRITE_WINDOW
                and kill.at <= later.at
                for kill in observed.kills
            )
            if in_window:
                verdict.graph_repeats_in_kill_window += 1
            else:
                verdict.decisions_lost += 1
                verdict.problems.append(
                    f"decision written twice: item {item_id} {later.decision} at "
                    f"{earlier.at.isoformat()} and {later.at.isoformat()}"
                )


def _judge_store(observed: Observations, verdict: Verdict) -> None:
    for item_id, (decision, _by) in sorted(observed.graph.items()):
        stored = observed.store.get(item_id)
        if stored != decision:
            verdict.store_graph_mismatches += 1
            if verdict.store_graph_mismatches <= 10:
                verdict.problems.append(
                    f"store and Graph disagree: item {item_id} is {stored} in the store, "
                    f"{decision} in Graph"
                )
