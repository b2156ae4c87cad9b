"""Alert rules (threshold and outlier), their evaluation, and the measuring use case."""

from __future__ import annotations

import base64
import binascii
import json
import operator as op
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from threadline.domain.errors import InvalidInput
from threadline.domain.metrics import METRIC_UNITS, Interaction, Measurement, RunningStats, measure

RuleKind = Literal["threshold", "outlier"]
Operator = Literal[">", ">=", "<", "<="]
_COMPARE: dict[str, Callable[[float, float], bool]] = {">": op.gt, ">=": op.ge, "<": op.lt, "<=": op.le}
DEFAULT_STDDEVS = 2.0
DEFAULT_MIN_SAMPLES = 30


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What defines a rule, before it is stored."""

    kind: RuleKind
    metric: str
    operator: Operator | None = None
    threshold: float | None = None
    stddevs: float | None = None
    min_samples: int = DEFAULT_MIN_SAMPLES
    enabled: bool = True
    name: str = ""


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A stored rule of one project."""

    id: UUID
    project_id: UUID
    name: str
    kind: RuleKind
    metric: str
    operator: Operator | None
    threshold: float | None
    stddevs: float | None
    min_samples: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert a rule raised for one measurement, with the statistics at the time."""

    rule: AlertRule
    measurement: Measurement
    mean: float | None
    stddev: float | None
    sample_count: int | None


@dataclass(frozen=True, slots=True)
class Alert:
    """A stored alert."""

    id: UUID
    project_id: UUID
    rule_id: UUID | None
    rule_name: str
    message_id: UUID
    thread_id: UUID
    metric: str
    value: float
    kind: RuleKind
    operator: str | None
    threshold: float | None
    stddevs: float | None
    mean: float | None
    stddev: float | None
    sample_count: int | None
    occurred_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Filters of the alert listing; `cursor` is the opaque keyset position."""

    thread_id: UUID | None = None
    metric: str | None = None
    kind: RuleKind | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class AlertPage:
    """One page of alerts, newest first."""

    results: list[Alert]
    next_cursor: str | None


DEFAULT_RULES: tuple[RuleSpec, ...] = (
    RuleSpec("threshold", "answer_length", ">", 2000.0),
    RuleSpec("threshold", "latency_ms", ">", 5000.0),
    RuleSpec("threshold", "first_token_ms", ">", 2000.0),
    RuleSpec("threshold", "retrieval_score", "<", 0.3),
    RuleSpec("outlier", "answer_length", stddevs=DEFAULT_STDDEVS),
    RuleSpec("outlier", "latency_ms", stddevs=DEFAULT_STDDEVS),
    RuleSpec("outlier", "tokens_used", stddevs=DEFAULT_STDDEVS),
)

# The judge the repository calls inside its transaction: newly stored measurements and the
# statistics before them in, alerts out.
Judge = Callable[[Sequence[Measurement], dict[str, RunningStats]], list[AlertDraft]]


class AlertRepository(Protocol):
    """Storage of rules, alerts, metrics and running statistics."""

    def ensure_default_rules(self, project_id: UUID, rules: Sequence[RuleSpec]) -> None: ...
    def list_rules(self, project_id: UUID) -> list[AlertRule]: ...
    def get_rule(self, project_id: UUID, rule_id: UUID) -> AlertRule: ...
    def create_rule(self, project_id: UUID, spec: RuleSpec) -> AlertRule: ...
    def update_rule(self, project_id: UUID, rule_id: UUID, spec: RuleSpec) -> AlertRule: ...
    def delete_rule(self, project_id: UUID, rule_id: UUID) -> None: ...
    def list_alerts(
        self, project_id: UUID, filters: AlertFilter, after: tuple[datetime, UUID] | None
    ) -> list[Alert]: ...
    def load_interaction(self, project_id: UUID, message_id: UUID) -> Interaction | None: ...
    def record(self, project_id: UUID, measurements: Sequence[Measurement], judge: Judge) -> list[AlertDraft]: ...
    def stats(self, project_id: UUID) -> dict[str, RunningStats]: ...


def default_name(spec: RuleSpec) -> str:
    """A readable name such as `latency_ms > 5000` or `answer_length outlier (2 sd)`."""
    if spec.kind == "threshold":
        return f"{spec.metric} {spec.operator} {spec.threshold:g}"
    return f"{spec.metric} outlier ({spec.stddevs:g} sd)"


def _shape_problems(spec: RuleSpec) -> dict[str, str]:
    problems: dict[str, str] = {}
    if spec.kind == "threshold":
        if spec.operator not in _COMPARE:
            problems["operator"] = "a threshold rule needs an operator: >, >=, < or <="
        if spec.threshold is None:
            problems["threshold"] = "a threshold rule needs a threshold"
        if spec.stddevs is not None:
            problems["stddevs"] = "only outlier rules take stddevs"
    elif spec.kind == "outlier":
        if spec.stddevs is None or spec.stddevs <= 0:
            problems["stddevs"] = "an outlier rule needs stddevs > 0"
        if spec.operator is not None or spec.threshold is not None:
            problems["operator"] = "outlier rules take no operator or threshold"
    else:
        problems["kind"] = "kind is threshold or outlier"
    return problems


def validate_rule(spec: RuleSpec) -> RuleSpec:
    """Check a rule's shape; returns it with its name filled in."""
    problems = _shape_problems(spec)
    if spec.metric not in METRIC_UNITS:
        problems["metric"] = f"unknown metric; one of {sorted(METRIC_UNITS)}"
    if spec.min_samples < 2:
        problems["min_samples"] = "min_samples must be at least 2"
    name = spec.name.strip()
    if len(name) > 200:
        problems["name"] = "name must be at most 200 characters"
    if problems:
        raise InvalidInput("invalid alert rule", **problems)
    return replace(spec, name=name or default_name(spec))


def rules_for(repo: AlertRepository, project_id: UUID) -> list[AlertRule]:
    """A project's rules; projects created before alerting get the default rules on first use."""
    repo.ensure_default_rules(project_id, DEFAULT_RULES)
    return repo.list_rules(project_id)


def create_rule(repo: AlertRepository, project_id: UUID, spec: RuleSpec) -> AlertRule:
    """Validate and store a rule."""
    repo.ensure_default_rules(project_id, DEFAULT_RULES)
    return repo.create_rule(project_id, validate_rule(spec))


def update_rule(repo: AlertRepository, project_id: UUID, rule_id: UUID, changes: dict[str, object]) -> AlertRule:
    """Apply a partial change; the merged rule is validated as a whole."""
    current = repo.get_rule(project_id, rule_id)
    fields: dict[str, object] = {
        "kind": current.kind,
        "metric": current.metric,
        "operator": current.operator,
        "threshold": current.threshold,
        "stddevs": current.stddevs,
        "min_samples": current.min_samples,
        "enabled": current.enabled,
        "name": current.name,
    }
    # Switching kind drops the other kind's fields unless the change sets them.
    if "kind" in changes and changes["kind"] != current.kind:
        fields.update(operator=None, threshold=None, stddevs=None)
        if changes["kind"] == "outlier":
            fields["stddevs"] = DEFAULT_STDDEVS
    fields.update(changes)
    spec = RuleSpec(**fields)  # type: ignore[arg-type]
    return repo.update_rule(project_id, rule_id, validate_rule(spec))


def judge(rules: Sequence[AlertRule]) -> Judge:
    """The alerts each new measurement raises against the statistics before it."""
    by_metric: dict[str, list[AlertRule]] = {}
    for rule in rules:
        if rule.enabled:
            by_metric.setdefault(rule.metric, []).append(rule)

    def evaluate(measurements: Sequence[Measurement], prior: dict[str, RunningStats]) -> list[AlertDraft]:
        drafts: list[AlertDraft] = []
        for m in measurements:
            stats = prior.get(m.metric, RunningStats())
            for rule in by_metric.get(m.metric, ()):
                draft = evaluate_rule(rule, m, stats)
                if draft is not None:
                    drafts.append(draft)
        return drafts

    return evaluate


def evaluate_rule(rule: AlertRule, m: Measurement, stats: RunningStats) -> AlertDraft | None:
    """The alert one rule raises for one measurement, if any."""
    if rule.kind == "threshold":
        assert rule.operator is not None and rule.threshold is not None
        if _COMPARE[rule.operator](m.value, rule.threshold):
            return AlertDraft(rule, m, stats.mean if stats.n else None, stats.stddev if stats.n else None, stats.n)
        return None
    assert rule.stddevs is not None
    # Too little history makes every value look unusual, and a constant history has no spread.
    if stats.n < rule.min_samples or stats.stddev == 0.0:
        return None
    if abs(m.value - stats.mean) > rule.stddevs * stats.stddev:
        return AlertDraft(rule, m, stats.mean, stats.stddev, stats.n)
    return None


def measure_interactions(
    repo: AlertRepository, project_id: UUID, interactions: Sequence[Interaction]
) -> list[AlertDraft]:
    """Compute, store and judge the metrics of interactions of one project; a repeat is a no-op."""
    rules = rules_for(repo, project_id)
    return repo.record(project_id, measure(interactions), judge(rules))


def measure_message(repo: AlertRepository, project_id: UUID, message_id: UUID) -> list[AlertDraft] | None:
    """The MetricsQueue use case; None when the message is gone or not answered yet."""
    interaction = repo.load_interaction(project_id, message_id)
    if interaction is None:
        return None
    return measure_interactions(repo, project_id, [interaction])


def list_alerts(repo: AlertRepository, project_id: UUID, filters: AlertFilter) -> AlertPage:
    """A page of alerts, newest first, keyset-paginated."""
    if not 1 <= filters.limit <= 200:
        raise InvalidInput("limit must be between 1 and 200")
    if filters.since and filters.until and filters.since > filters.until:
        raise InvalidInput("since must not be after until")
    after = decode_cursor(filters.cursor) if filters.cursor else None
    rows = repo.list_alerts(project_id, filters, after)
    page, more = rows[: filters.limit], len(rows) > filters.limit
    next_cursor = encode_cursor(page[-1].occurred_at, page[-1].id) if more and page else None
    return AlertPage(page, next_cursor)


def encode_cursor(at: datetime, item_id: UUID) -> str:
    """An opaque keyset position."""
    raw = json.dumps([at.isoformat(), str(item_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The keyset position of a cursor; a tampered cursor is invalid input."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, item_id = json.loads(raw)
        return datetime.fromisoformat(at), UUID(item_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidInput("invalid cursor") from exc
