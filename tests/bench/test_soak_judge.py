"""The soak's judge (``bench/_soak_judge.py``) on crafted runs: each kind of miss is caught, and
what the documented kill window allows is allowed — and only that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench._soak_judge import (
    CardCopy,
    GraphWrite,
    Intent,
    Kill,
    Observations,
    judge,
)

T0 = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
ALICE, BOB = "a11ce", "b0b"
REVIEW = "review-1"
ITEM, OTHER_ITEM = "item-1", "item-2"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def healthy_run() -> Observations:
    """Two cards delivered once, one click written once, store equal to Graph, one kill."""
    return Observations(
        expected_cards={(ALICE, REVIEW), (BOB, REVIEW)},
        card_copies={
            (ALICE, REVIEW): [CardCopy(at(1), "act-a")],
            (BOB, REVIEW): [CardCopy(at(2), "act-b")],
        },
        kills=[Kill(at=at(30), recorded={(ALICE, REVIEW): "act-a", (BOB, REVIEW): "act-b"})],
        intents={ITEM: Intent(reviewer=ALICE, allowed=frozenset({"Approve"}))},
        graph={ITEM: ("Approve", ALICE), OTHER_ITEM: ("NotReviewed", None)},
        graph_writes={ITEM: [GraphWrite(at(10), "Approve")]},
        store={ITEM: "Approve", OTHER_ITEM: "NotReviewed"},
    )


def test_a_healthy_run_meets_every_target() -> None:
    verdict = judge(healthy_run())
    assert verdict.ok, verdict.problems
    assert verdict.figures(minutes=1.0, kills=1, outage_s_max=15.0) == {
        "minutes": 1.0,
        "kills": 1,
        "outage_s_max": 15.0,
        "cards_lost": 0,
        "cards_duplicated": 0,
        "decisions_lost": 0,
        "store_graph_mismatches": 0,
        "http_5xx": 0,
    }


def test_a_card_never_delivered_is_lost() -> None:
    run = healthy_run()
    del run.card_copies[(BOB, REVIEW)]
    verdict = judge(run)
    assert verdict.cards_lost == 1 and not verdict.ok
    assert any("card lost" in p and BOB in p for p in verdict.problems)


def test_a_repeat_of_a_send_the_store_had_not_recorded_at_a_kill_is_allowed() -> None:
    run = healthy_run()
    # Accepted 0.2 s before the kill, not yet recorded then; sent again after the restart.
    run.card_copies[(BOB, REVIEW)] = [CardCopy(at(29.8), "act-b"), CardCopy(at(45), "act-b2")]
    run.kills = [Kill(at=at(30), recorded={(ALICE, REVIEW): "act-a"})]
    verdict = judge(run)
    assert verdict.ok, verdict.problems
    assert verdict.cards_duplicated == 1
    assert verdict.duplicate_allowance == 1
    assert verdict.duplicates_outside_window == 0


def test_a_repeat_of_a_send_the_store_had_recorded_is_a_duplicate() -> None:
    run = healthy_run()
    run.card_copies[(BOB, REVIEW)] = [CardCopy(at(29.8), "act-b"), CardCopy(at(45), "act-b2")]
    # The store had recorded the first copy when the process died: nothing justifies a repeat.
    run.kills = [Kill(at=at(30), recorded={(ALICE, REVIEW): "act-a", (BOB, REVIEW): "act-b"})]
    verdict = judge(run)
    assert verdict.cards_duplicated == 1
    assert verdict.duplicates_outside_window == 1 and not verdict.ok
    assert any("outside the kill window" in p for p in verdict.problems)


def test_a_repeat_without_a_kill_between_the_copies_is_a_duplicate() -> None:
    run = healthy_run()
    # Both copies before the kill (the kill did not cause the repeat).
    run.card_copies[(BOB, REVIEW)] = [CardCopy(at(5), "act-b"), CardCopy(at(9), "act-b2")]
    run.kills = [Kill(at=at(30), recorded={(ALICE, REVIEW): "act-a"})]
    verdict = judge(run)
    assert verdict.duplicates_outside_window == 1 and not verdict.ok


def test_one_unrecorded_send_allows_one_repeat_only() -> None:
    run = healthy_run()
    run.card_copies[(BOB, REVIEW)] = [
        CardCopy(at(29.8), "act-b"),
        CardCopy(at(45), "act-b2"),
        CardCopy(at(50), "act-b3"),
    ]
    run.kills = [Kill(at=at(30), recorded={(ALICE, REVIEW): "act-a"})]
    verdict = judge(run)
    assert verdict.cards_duplicated == 2
    assert verdict.duplicate_allowance == 1
    assert verdict.duplicates_outside_window == 1 and not verdict.ok


def test_a_clicked_decision_missing_from_graph_is_lost() -> None:
    run = healthy_run()
    run.graph[ITEM] = ("NotReviewed", None)
    run.store[ITEM] = "NotReviewed"
    run.graph_writes = {}
    verdict = judge(run)
    assert verdict.decisions_lost == 1 and not verdict.ok
    assert verdict.store_graph_mismatches == 0


def test_the_wrong_value_or_the_wrong_reviewer_in_graph_is_a_lost_decision() -> None:
    run = healthy_run()
    run.graph[ITEM] = ("Deny", ALICE)
    run.store[ITEM] = "Deny"
    assert judge(run).decisions_lost == 1
    run = healthy_run()
    run.graph[ITEM] = ("Approve", BOB)
    assert judge(run).decisions_lost == 1


def test_conflicting_clicks_allow_either_value() -> None:
    for value in ("Approve", "Deny"):
        run = healthy_run()
        run.intents[ITEM] = Intent(reviewer=ALICE, allowed=frozenset({"Approve", "Deny"}))
        run.graph[ITEM] = (value, ALICE)
        run.store[ITEM] = value
        run.graph_writes[ITEM] = [GraphWrite(at(10), "Approve"), GraphWrite(at(11), "Deny")][
            : 1 if value == "Approve" else 2
        ]
        assert judge(run).ok


def test_the_same_decision_written_twice_counts_as_lost() -> None:
    run = healthy_run()
    run.graph_writes[ITEM] = [GraphWrite(at(10), "Approve"), GraphWrite(at(12), "Approve")]
    verdict = judge(run)
    assert verdict.decisions_lost == 1 and not verdict.ok
    assert any("written twice" in p for p in verdict.problems)


def test_a_write_repeated_across_a_kill_right_after_it_is_allowed() -> None:
    run = healthy_run()
    # Written 1 s before the kill (not recorded), written again after the restart.
    run.graph_writes[ITEM] = [GraphWrite(at(29), "Approve"), GraphWrite(at(40), "Approve")]
    verdict = judge(run)
    assert verdict.ok, verdict.problems
    assert verdict.graph_repeats_in_kill_window == 1
    # Long before the kill: no excuse.
    run.graph_writes[ITEM] = [GraphWrite(at(10), "Approve"), GraphWrite(at(40), "Approve")]
    assert judge(run).decisions_lost == 1


def test_a_change_of_mind_is_two_writes_not_a_duplicate() -> None:
    run = healthy_run()
    run.intents[ITEM] = Intent(reviewer=ALICE, allowed=frozenset({"Deny"}))
    run.graph[ITEM] = ("Deny", ALICE)
    run.store[ITEM] = "Deny"
    run.graph_writes[ITEM] = [GraphWrite(at(10), "Approve"), GraphWrite(at(70), "Deny")]
    assert judge(run).ok


def test_store_and_graph_disagreeing_is_a_mismatch() -> None:
    run = healthy_run()
    run.store[ITEM] = "Deny"
    verdict = judge(run)
    assert verdict.store_graph_mismatches == 1 and not verdict.ok
    assert verdict.decisions_lost == 0
    run = healthy_run()
    del run.store[OTHER_ITEM]  # an item of a running review the store never learned
    assert judge(run).store_graph_mismatches == 1


def test_a_5xx_misses_the_target() -> None:
    run = healthy_run()
    run.http_5xx = 1
    verdict = judge(run)
    assert verdict.http_5xx == 1 and not verdict.ok
