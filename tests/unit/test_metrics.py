"""Metrics, running statistics and alert rules: pure domain, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import numpy as np
import pytest

from threadline.domain import alerts
from threadline.domain.errors import InvalidInput
from threadline.domain.metrics import METRICS, Interaction, Measurement, RunningStats, measure
from threadline.domain.pagination import Cursor

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _interaction(**overrides: object) -> Interaction:
    fields: dict[str, object] = {
        "message_id": uuid4(),
        "thread_id": uuid4(),
        "project_id": uuid4(),
        "question": "How do I reset my password?",
        "answer": "Open settings.",
        "occurred_at": NOW,
    }
    fields.update(overrides)
    return Interaction(**fields)  # type: ignore[arg-type]


def _rule(**overrides: object) -> alerts.AlertRule:
    fields: dict[str, object] = {
        "id": uuid4(),
        "project_id": uuid4(),
        "name": "r",
        "kind": "threshold",
        "metric": "answer_length",
        "operator": ">",
        "threshold": 10.0,
        "stddevs": None,
        "min_samples": 5,
        "enabled": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(overrides)
    return alerts.AlertRule(**fields)  # type: ignore[arg-type]


@pytest.mark.unit
def test_every_metric_of_a_full_chat_interaction() -> None:
    # Given an interaction with everything recorded
    interaction = _interaction(
        latency_ms=1234.0, first_token_ms=210.0, tokens_used=321, retrieval_score=None, source_scores=(0.4, 0.8, None)
    )
    # When it is measured
    values = {m.metric: m.value for m in measure([interaction])}
    # Then each metric has its value, the best source score standing in for the missing retrieval score
    assert values == {
        "question_length": 27.0,
        "answer_length": 14.0,
        "latency_ms": 1234.0,
        "first_token_ms": 210.0,
        "tokens_used": 321.0,
        "retrieval_score": 0.8,
        "source_count": 3.0,
    }


@pytest.mark.unit
def test_unknown_values_are_left_out_not_zero() -> None:
    # Given an imported interaction: no tokens, no sources, no timings
    interaction = _interaction(tokens_used=0, source_scores=None)
    # When it is measured
    names = {m.metric for m in measure([interaction])}
    # Then only the lengths are recorded, so unknowns never drag a project's mean to zero
    assert names == {"question_length", "answer_length"}


@pytest.mark.unit
def test_metric_names_are_unique() -> None:
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names)) and len(names) >= 7


@pytest.mark.unit
def test_welford_and_chan_match_numpy() -> None:
    # Given values split into two histories
    rng = np.random.default_rng(7)
    values = rng.normal(500, 120, 257)
    left, right = RunningStats(), RunningStats()
    for v in values[:100]:
        left = left.add(float(v))
    for v in values[100:]:
        right = right.add(float(v))
    # When they are combined
    both = left.combine(right)
    # Then count, mean and population stddev equal numpy's
    assert both.n == 257
    assert both.mean == pytest.approx(float(np.mean(values)), rel=1e-12)
    assert both.stddev == pytest.approx(float(np.std(values)), rel=1e-12)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (alerts.RuleSpec("threshold", "nope", ">", 1.0), "metric"),
        (alerts.RuleSpec("threshold", "latency_ms", None, 1.0), "operator"),
        (alerts.RuleSpec("threshold", "latency_ms", ">", None), "threshold"),
        (alerts.RuleSpec("threshold", "latency_ms", ">", 1.0, stddevs=2.0), "stddevs"),
        (alerts.RuleSpec("outlier", "latency_ms"), "stddevs"),
        (alerts.RuleSpec("outlier", "latency_ms", stddevs=-1.0), "stddevs"),
        (alerts.RuleSpec("outlier", "latency_ms", ">", 1.0, stddevs=2.0), "operator"),
        (alerts.RuleSpec("outlier", "latency_ms", stddevs=2.0, min_samples=1), "min_samples"),
    ],
)
def test_invalid_rules_name_the_field(spec: alerts.RuleSpec, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        alerts.validate_rule(spec)
    errors = raised.value.details["errors"]
    assert isinstance(errors, list) and field in [e["field"] for e in errors]


@pytest.mark.unit
def test_valid_rule_gets_a_readable_name() -> None:
    assert alerts.validate_rule(alerts.RuleSpec("threshold", "latency_ms", ">", 5000.0)).name == "latency_ms > 5000"
    assert alerts.validate_rule(alerts.RuleSpec("outlier", "tokens_used", stddevs=2.5)).name == (
        "tokens_used outlier (2.5 sd)"
    )


@pytest.mark.unit
@pytest.mark.parametrize(("operator", "value", "fires"), [(">", 11.0, True), (">", 10.0, False), ("<=", 10.0, True)])
def test_threshold_rule(operator: str, value: float, fires: bool) -> None:
    # Given a threshold rule at 10
    rule = _rule(operator=operator, threshold=10.0)
    measurement = Measurement(uuid4(), uuid4(), "answer_length", value, NOW)
    # When evaluated, Then it fires exactly when the comparison holds
    assert (alerts.evaluate_rule(rule, measurement, RunningStats()) is not None) is fires


@pytest.mark.unit
def test_outlier_needs_min_samples_and_uses_the_prior_statistics() -> None:
    # Given an outlier rule (2 sd, 5 samples) and a history of 4, then of 5, values
    rule = _rule(kind="outlier", operator=None, threshold=None, stddevs=2.0, min_samples=5)
    history = [10.0, 12.0, 11.0, 9.0, 13.0]
    four, five = RunningStats(), RunningStats()
    for v in history[:4]:
        four = four.add(v)
    for v in history:
        five = five.add(v)
    far = Measurement(uuid4(), uuid4(), "answer_length", 100.0, NOW)
    near = Measurement(uuid4(), uuid4(), "answer_length", 12.5, NOW)
    # When evaluated
    too_early = alerts.evaluate_rule(rule, far, four)
    fired = alerts.evaluate_rule(rule, far, five)
    # Then nothing fires before min_samples, and the alert carries numpy's mean and stddev of the history
    assert too_early is None and alerts.evaluate_rule(rule, near, five) is None
    assert fired is not None and fired.sample_count == 5
    assert fired.mean == pytest.approx(np.mean(history)) and fired.stddev == pytest.approx(np.std(history))


@pytest.mark.unit
def test_disabled_rules_do_not_judge() -> None:
    judge = alerts.judge([_rule(enabled=False)])
    assert judge([Measurement(uuid4(), uuid4(), "answer_length", 99.0, NOW)], {}) == []


@pytest.mark.unit
def test_cursor_round_trip_and_tampering() -> None:
    # Given a cursor
    item = uuid4()
    cursor = Cursor.after(NOW, item).encode()
    # Then it decodes to its position, and anything else is invalid input
    assert Cursor.decode(cursor) == Cursor(NOW, str(item))
    for bad in ["x", "bm90IGpzb24", cursor[:-3]]:
        with pytest.raises(InvalidInput):
            Cursor.decode(bad)


@pytest.mark.unit
@pytest.mark.parametrize(("grounded", "expected"), [(False, 1.0), (True, 0.0), (None, None)])
def test_unanswered_counts_coverage_gaps_and_skips_unknowns(grounded: bool | None, expected: float | None) -> None:
    # Given an answer that the documents did not cover, one they did, and an imported one (unknown)
    interaction = _interaction(grounded=grounded)
    # When it is measured
    values = {m.metric: m.value for m in measure([interaction])}
    # Then `unanswered` is 1 for a gap, 0 for a grounded answer, and absent when unknown
    assert values.get("unanswered") == expected


@pytest.mark.unit
def test_an_alert_rule_can_watch_unanswered_questions() -> None:
    # Given a rule on every unanswered question
    spec = alerts.RuleSpec("threshold", "unanswered", ">=", 1.0)
    # When it is validated
    rule = alerts.validate_rule(spec)
    # Then it is accepted and named after the metric
    assert rule.name == "unanswered >= 1"
