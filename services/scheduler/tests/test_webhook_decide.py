"""The pure decision of which webhook events a change of a prediction fires."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from cogplane.common.contracts.predictions import PredictionRecord
from cogplane.scheduler.webhooks.decide import (
    DEFAULT_EVENTS,
    Decision,
    Delivered,
    decide,
    fingerprint,
    wanted,
)

EVENTS = ("start", "output", "logs", "completed")
ALL_FILTERS = [list(c) for n in range(len(EVENTS) + 1) for c in itertools.combinations(EVENTS, n)]


def record(status: str = "processing", output: Any = None, logs: str = "") -> PredictionRecord:
    return PredictionRecord.model_validate(
        {
            "id": "p1",
            "owner_account_id": "a1",
            "owner": "alice",
            "model": "alice/m",
            "version": "v" * 64,
            "target": "version:v",
            "input": {},
            "status": status,
            "output": output,
            "logs": logs,
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            "webhook": "https://example.test/hook",
        }
    )


def sent_for(rec: PredictionRecord, **changes: Any) -> Delivered:
    """What the receiver has after being sent ``rec``."""
    state = Delivered(started=True, output=fingerprint(rec.output), logs=fingerprint(rec.logs))
    return replace(state, **changes)


def test_default_filter_is_new_outputs_and_completion() -> None:
    assert wanted([]) == DEFAULT_EVENTS == {"output", "completed"}
    assert wanted(["logs"]) == {"logs"}


def test_default_filter_sequence() -> None:
    at_creation = decide([], Delivered(), record("starting"), None)
    assert at_creation.events == frozenset()
    assert at_creation.wait is None
    logs_only = decide([], at_creation.state, record(logs="loading\n"), None)
    assert logs_only.events == frozenset()  # logs are not asked for by default
    first = decide([], logs_only.state, record(output=["a"], logs="loading\n"), None)
    assert first.events == {"output"}
    again = decide([], first.state, record(output=["a"], logs="more\n"), 0.1)
    assert again == Decision(state=first.state)  # nothing new to say
    soon = decide([], first.state, record(output=["a", "b"]), 0.2)
    assert soon.events == frozenset()
    assert soon.wait == pytest.approx(0.3)
    assert soon.state == first.state  # nothing was sent yet: it is still owed
    later = decide([], first.state, record(output=["a", "b"]), 0.5)
    assert later.events == {"output"}
    done = decide([], later.state, record("succeeded", output=["a", "b"]), 0.0)
    assert done.events == {"completed"}
    assert done.wait is None
    assert done.state.finished
    assert decide([], done.state, record("succeeded", output=["a", "b"]), 9.0).events == set()


@pytest.mark.parametrize("status", ["succeeded", "failed", "canceled"])
def test_completed_is_never_throttled(status: str) -> None:
    owed = Delivered(started=True, output=fingerprint(["a"]))
    decision = decide(["output", "completed"], owed, record(status, output=["a", "b"]), 0.01)
    assert decision.events == {"completed"}
    assert decision.wait is None


def test_start_fires_once_at_creation() -> None:
    first = decide(["start"], Delivered(), record("starting"), None)
    assert first.events == {"start"}
    assert first.state.started
    assert decide(["start"], first.state, record("starting"), None).events == set()
    assert decide(["start"], first.state, record("processing", logs="x"), None).events == set()


def test_start_fires_when_first_seen_processing() -> None:
    assert decide(["start"], Delivered(), record("processing"), None).events == {"start"}


def test_start_carries_new_output_and_ignores_the_throttle() -> None:
    decision = decide(["start", "output"], Delivered(), record(output=["a"]), 0.01)
    assert decision.events == {"start", "output"}
    assert decision.wait is None
    assert decision.state.output == fingerprint(["a"])


def test_a_prediction_first_seen_finished_gets_completed_only() -> None:
    filters = ["start", "completed"]
    decision = decide(filters, Delivered(), record("succeeded", output="x"), None)
    assert decision.events == {"completed"}
    silent = decide(["start"], Delivered(), record("succeeded", output="x"), None)
    assert silent.events == set()
    assert silent.state.finished


def test_logs_filter_follows_logs_only() -> None:
    first = decide(["logs"], Delivered(), record(logs="a\n"), None)
    assert first.events == {"logs"}
    assert decide(["logs"], first.state, record(logs="a\n", output=["o"]), 1.0).events == set()
    throttled = decide(["logs"], first.state, record(logs="a\nb\n"), 0.1)
    assert throttled.wait == pytest.approx(0.4)
    assert decide(["logs"], first.state, record(logs="a\nb\n"), 0.6).events == {"logs"}


def test_without_completed_the_final_output_is_still_sent_throttled() -> None:
    state = sent_for(record(output=["a"]))
    final = record("succeeded", output=["a", "b"])
    throttled = decide(["output"], state, final, 0.1)
    assert throttled.events == set()
    assert throttled.wait is not None
    assert not throttled.state.finished  # still owed
    sent = decide(["output"], state, final, 0.5)
    assert sent.events == {"output"}
    assert sent.state.finished
    nothing_new = decide(["output"], sent_for(final), final, 0.1)
    assert nothing_new.events == set()
    assert nothing_new.wait is None
    assert nothing_new.state.finished


def test_an_empty_iterator_output_is_not_an_output() -> None:
    assert decide(["output"], Delivered(), record(output=[]), None).events == set()


def test_replaced_output_counts_as_new() -> None:
    state = sent_for(record(output="first"))
    assert decide(["output"], state, record(output="other"), 1.0).events == {"output"}


def test_coalescing_sends_the_latest_record_after_the_window() -> None:
    """Changes inside the window collapse into one delivery of the latest record."""
    window = 0.5
    sent: list[Any] = []
    state, last, timer_at = Delivered(), None, None
    changes = [(0.0, ["a"]), (0.1, ["a", "b"]), (0.2, ["a", "b", "c"]), (0.3, ["a", "b", "c"])]
    latest = record()
    for now, output in changes:
        latest = record(output=output)
        if timer_at is not None:
            continue  # the dispatcher waits for its timer, which will see the latest record
        decision = decide([], state, latest, None if last is None else now - last, window)
        state = decision.state
        if decision.events:
            sent.append(latest.output)
            last = now
        if decision.wait is not None:
            timer_at = now + decision.wait
    assert timer_at is not None
    assert timer_at == pytest.approx(0.5)
    decision = decide([], state, latest, timer_at - (last or 0.0), window)
    assert decision.events == {"output"}
    sent.append(latest.output)
    assert sent == [["a"], ["a", "b", "c"]]


@pytest.mark.parametrize("events_filter", ALL_FILTERS, ids=lambda f: "+".join(f) or "default")
@pytest.mark.parametrize("status", ["starting", "processing", "succeeded", "failed", "canceled"])
def test_invariants(events_filter: list[str], status: str) -> None:
    """Every combination of filter, state, news and timing obeys Replicate's rules."""
    want = wanted(events_filter)
    final = status in ("succeeded", "failed", "canceled")
    base = record(status, output=["a"], logs="x")
    for started, new_output, new_logs, since in itertools.product(
        (False, True), (False, True), (False, True), (None, 0.1, 0.6)
    ):
        rec = record(
            status, output=["a", "b"] if new_output else ["a"], logs="xy" if new_logs else "x"
        )
        sent = sent_for(base, started=started)
        decision = decide(events_filter, sent, rec, since)
        news = {e for e, new in (("output", new_output), ("logs", new_logs)) if new} & want
        case = (started, new_output, new_logs, since, decision)
        assert decision.events <= want, case
        assert ("completed" in decision.events) == (final and "completed" in want), case
        starts = "start" in want and not started and not final
        assert ("start" in decision.events) == starts, case
        if decision.wait is not None:
            assert decision.events == set(), case
            assert since is not None, case
            assert since < 0.5, case
            assert decision.state == sent, case  # owed, not forgotten
        throttled = since is not None and since < 0.5
        if news and not decision.events and decision.wait is None:
            pytest.fail(f"new {news} neither sent nor deferred: {case}")
        if decision.events & {"output", "logs"} and not starts:
            assert not throttled, case
        if not news and not starts and not (final and "completed" in want):
            assert decision.events == set(), case
            assert decision.wait is None, case
        assert decision.state.finished == (final and decision.wait is None), case
