"""The checks of the three-replica test, on made-up records: each must catch what it is for.

The scenario itself (``test_three_replicas.py``) passes only when nothing goes wrong, so these
show that its checks are not blind: a cycle outside a lease, a send after a lease moved, a fence
that went down, a lost lease in a log, a card counted twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.replicas.cluster import (
    CardSend,
    LeaseSample,
    discovery_cycles,
    fence_problems,
    held_intervals,
    lease_lost_lines,
    log_entries,
    outside_intervals,
    review_card_pair,
    sends_outside_lease,
    with_database,
)

T0 = datetime(2026, 11, 29, 14, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample(seen_s: float, holder: str, expires_s: float, fence: int) -> LeaseSample:
    return LeaseSample(
        seen_at=at(seen_s),
        name="discovery-poll",
        holder=holder,
        expires_at=at(expires_s),
        fence=fence,
    )


# A holds from 0 (renewing at 0, 2, 4; ttl 6 → until 10), dies; B takes over at 12.
HISTORY = [
    sample(0.1, "A", 6, 1),
    sample(2.1, "A", 8, 1),
    sample(4.1, "A", 10, 1),
    sample(12.1, "B", 18, 2),
    sample(14.1, "B", 20, 2),
]


def test_held_intervals_merge_renewals_and_end_at_the_last_expiry() -> None:
    held = held_intervals(HISTORY, ttl_s=6)
    assert held == {"A": [(at(0), at(10))], "B": [(at(12), at(20))]}


def test_a_cycle_is_inside_only_when_wholly_within_a_held_span() -> None:
    held = held_intervals(HISTORY, ttl_s=6)
    assert not outside_intervals(held["A"], at(1), at(9.5))
    assert outside_intervals(held["A"], at(9), at(10.5))  # ran past the expiry
    assert outside_intervals(held["A"], at(13), at(14))  # after B took over
    assert outside_intervals([], at(1), at(2))  # never held at all
    assert not outside_intervals(held["A"], at(9), at(10.005), slack_s=0.01)


def test_fences_that_fall_or_stay_across_a_change_of_holder_are_reported() -> None:
    assert fence_problems(HISTORY) == []
    fell = [*HISTORY, sample(16.1, "A", 22, 1)]
    assert any("fell 2 -> 1" in p for p in fence_problems(fell))
    kept = [sample(0.1, "A", 6, 1), sample(7.1, "B", 13, 1)]
    assert any("kept fence 1" in p for p in fence_problems(kept))


def _log_line(message: str, time_s: float, **fields: Any) -> str:
    return json.dumps({"time": at(time_s).isoformat(), "message": message, **fields})


def test_cycles_and_lost_leases_are_read_from_json_logs() -> None:
    text = "\n".join(
        [
            "Access Review Bot listening on http://127.0.0.1:1 (not JSON)",
            _log_line("discovery cycle done", 5.0, duration_ms=1500),
            _log_line("GET /readyz 200 1ms", 5.5),
            _log_line("stopped polling: the poll lease moved to another replica or expired", 9),
            '{"broken json',
        ]
    )
    entries = log_entries(text)
    assert discovery_cycles(entries) == [(at(3.5), at(5.0))]
    assert len(lease_lost_lines(entries)) == 1
    assert lease_lost_lines(log_entries(_log_line("discovery cycle done", 1, duration_ms=1))) == []


def test_a_send_counts_against_its_recorded_sender_or_else_against_every_holder() -> None:
    held = {"W1": [(at(0), at(3))], "W2": [(at(5), at(8))]}
    pair = ("reviewer", "instance")
    sends = [
        CardSend(pair, at(1), ("conv-1", "1")),  # W1, inside
        CardSend(pair, at(6), ("conv-2", "1")),  # recorded by W1 but sent after W1's lease
        CardSend(pair, at(6.5), ("conv-3", "9")),  # no row recorded it: inside W2's lease
        CardSend(pair, at(4), ("conv-4", "9")),  # no row recorded it, and nobody held the lease
    ]
    senders = {("conv-1", "1"): "W1", ("conv-2", "1"): "W1"}
    outside = sends_outside_lease(sends, senders, held, slack_s=0.5)
    assert len(outside) == 2
    assert "by W1" in outside[0] and "an unrecorded sender" in outside[1]
    # The same activity id in another conversation is another message.
    assert sends_outside_lease(sends[:1], {("conv-9", "1"): "W2"}, held, slack_s=0) == []


def test_only_review_cards_name_a_pair() -> None:
    card = {
        "attachments": [
            {"content": {"refresh": {"action": {"data": {"card": "review", "instanceId": "I"}}}}}
        ]
    }
    reminder = {
        "attachments": [
            {"content": {"refresh": {"action": {"data": {"card": "reminder", "instanceId": "I"}}}}}
        ]
    }
    assert review_card_pair(card, "ABC") == ("abc", "I")
    assert review_card_pair(reminder, "ABC") is None
    assert review_card_pair({"text": "welcome"}, "ABC") is None
    assert review_card_pair(card, None) is None


def test_a_database_url_is_pointed_at_another_database_on_the_same_server() -> None:
    assert (
        with_database("postgresql://postgres@127.0.0.1:5432/test?sslmode=disable", "t_1")
        == "postgresql://postgres@127.0.0.1:5432/t_1?sslmode=disable"
    )
