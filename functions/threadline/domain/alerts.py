"""Alert rules (threshold and outlier), their evaluation, and the measuring use case."""

from __future__ import annotations

import operator as op
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from threadline.domain.errors import InvalidInput
from threadline.domain.metrics import METRIC_UNITS, Interaction, Measurement, RunningStats, measure
from threadline.domain.pagination import FIRST_PAGE, MAX_LIMIT, Cursor, Page, PageRequest, page_in_memory, page_of

RuleKind = Literal["threshold", "outlier"]
Operator = Literal[">", ">=", "<", "<="]
_COMPARE: dict[str, Callable[[float, float], bool]] = {">": op.gt, ">=": op.ge, "<": op.lt, "<=": op.le}
DEFAULT_STDDEVS = 2.0
DEFAULT_MIN_SAMPLES = 30
_NULLABLE = frozenset({"operator", "threshold", "stddevs"})


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
    message_id: UUID | None = None
    page: PageRequest = FIRST_PAGE


AlertPage = Page[Alert]


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
    def list_alerts(self, project_id: UUID, filters: AlertFilter) -> list[Alert]:
        """Up to `filters.page.fetch` alerts, newest first (occurred_at, id), after the page's cursor."""
        ...

    def answer_metrics(self, project_id: UUID, message_id: UUID) -> tuple[UUID, dict[str, float]]:
        """One answer's thread id and metric values by name; NotFound when the project has no such answer."""
        ...

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
        errors = [{"field": name, "message": message} for name, message in problems.items()]
        raise InvalidInput(f"invalid alert rule: {errors[0]['message']}", field=errors[0]["field"], errors=errors)
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
    """Apply a partial change; the merged rule is validated as a whole. No change at all is InvalidInput.

    Null clears the fields that may be empty (operator, threshold, stddevs); the others need a value.
    """
    if nulled := sorted(k for k, v in changes.items() if v is None and k not in _NULLABLE):
        raise InvalidInput(f"{nulled[0]} may be omitted, but not null: it needs a value", field=nulled[0])
    if not changes:
        raise InvalidInput("nothing to change: send at least one field of the rule", field="body")
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
    """A page of alerts, newest first, keyset-paginated; an unknown metric is InvalidInput, not an empty page."""
    if filters.metric is not None and filters.metric not in METRIC_UNITS:
        raise InvalidInput(f"unknown metric; one of {sorted(METRIC_UNITS)}", field="metric")
    if filters.since and filters.until and filters.since > filters.until:
        raise InvalidInput("since must not be after until", field="since")
    return page_of(repo.list_alerts(project_id, filters), filters.page, alert_cursor)


def list_rules(repo: AlertRepository, project_id: UUID, page: PageRequest) -> Page[AlertRule]:
    """A page of the project's rules, oldest first (a project has a handful: they are read whole)."""
    return page_in_memory(rules_for(repo, project_id), page, lambda r: Cursor.after(r.created_at, r.id))


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """A metric's running statistics over a project's history."""

    metric: str
    unit: str
    count: int
    mean: float
    stddev: float


def metric_summaries(repo: AlertRepository, project_id: UUID, page: PageRequest) -> Page[MetricSummary]:
    """A page of the project's metric statistics by metric name (at most one row per metric of METRICS)."""
    summaries = [
        MetricSummary(name, METRIC_UNITS.get(name, ""), s.n, s.mean, s.stddev)
        for name, s in sorted(repo.stats(project_id).items())
    ]
    return page_in_memory(summaries, page, lambda m: Cursor.after(m.metric, m.metric))


def alert_cursor(alert: Alert) -> Cursor:
    """The listing's position after an alert: (occurred_at, id)."""
    return Cursor.after(alert.occurred_at, alert.id)


@dataclass(frozen=True, slots=True)
class AnswerMeasures:
    """One answer's metric values and the alerts it raised."""

    message_id: UUID
    thread_id: UUID
    metrics: dict[str, float]
    alerts: list[Alert]


def answer_measures(repo: AlertRepository, project_id: UUID, message_id: UUID) -> AnswerMeasures:
    """The metrics and alerts of one answer (its `question_answer_id`); NotFound for another project's."""
    thread_id, metrics = repo.answer_metrics(project_id, message_id)
    # An answer raises at most one alert per rule (unique in SQL), far fewer than a page of the largest size.
    found = repo.list_alerts(project_id, AlertFilter(message_id=message_id, page=PageRequest(MAX_LIMIT)))
    return AnswerMeasures(message_id, thread_id, metrics, found[:MAX_LIMIT])
