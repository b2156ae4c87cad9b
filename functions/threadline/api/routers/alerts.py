"""Alert rules, alerts, a project's metric statistics, and one answer's metrics and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import Query, Response
from pydantic import BaseModel, ConfigDict, Field

from threadline.api.deps import ContainerDep, PrincipalDep, ProjectIdDep
from threadline.api.models import Instant, Omittable, RequestModel
from threadline.api.pagination import PageDep, PagePublic
from threadline.api.routing import contract_router
from threadline.domain import alerts
from threadline.domain.alerts import AnswerMeasures
from threadline.domain.metrics import METRIC_UNITS

router = contract_router(prefix="/query/v1", tags=["alerts"])

Kind = Literal["threshold", "outlier"]
Op = Literal[">", ">=", "<", "<="]


class AlertRuleCreate(RequestModel):
    """A new rule: a threshold (`metric operator threshold`) or an outlier (`|value - mean| > stddevs * sd`)."""

    kind: Kind
    metric: str = Field(description=f"one of {sorted(METRIC_UNITS)}")
    operator: Op | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    stddevs: float | None = Field(default=None, allow_inf_nan=False, description="outlier rules; default 2")
    min_samples: int = Field(default=alerts.DEFAULT_MIN_SAMPLES, ge=2, le=1_000_000)
    enabled: bool = True
    name: str = Field(default="", max_length=200)


class AlertRuleUpdate(RequestModel):
    """A partial change (at least one field); the merged rule must be valid as a whole. Null clears `operator`,
    `threshold` or `stddevs`; the other fields always have a value, so null for them is a 422 naming the field."""

    kind: Omittable[Kind] = None
    metric: Omittable[str] = None
    operator: Op | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    stddevs: float | None = Field(default=None, allow_inf_nan=False)
    min_samples: Omittable[int] = Field(default=None, ge=2, le=1_000_000)
    enabled: Omittable[bool] = None
    name: Omittable[str] = Field(default=None, max_length=200)


class AlertRulePublic(BaseModel):
    """A stored rule."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    kind: Kind
    metric: str
    operator: Op | None
    threshold: float | None
    stddevs: float | None
    min_samples: int
    enabled: bool
    created_at: datetime
    updated_at: datetime


class AlertPublic(BaseModel):
    """An alert: the interaction, the value, the rule, and the statistics when it fired."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    rule_id: UUID | None
    rule_name: str
    message_id: UUID = Field(description="the answer's question_answer_id")
    thread_id: UUID
    metric: str
    value: float
    kind: Kind
    operator: str | None
    threshold: float | None
    stddevs: float | None
    mean: float | None
    stddev: float | None
    sample_count: int | None
    occurred_at: datetime
    created_at: datetime


class MetricStatsPublic(BaseModel):
    """A metric's running statistics over the project's history."""

    model_config = ConfigDict(from_attributes=True)

    metric: str
    unit: str
    count: int
    mean: float
    stddev: float


class MetricValuePublic(BaseModel):
    """One metric of one answer."""

    metric: str
    unit: str
    value: float


class AnswerMeasuresPublic(BaseModel):
    """One answer's metrics (those known for it) and the alerts it raised, newest first."""

    question_answer_id: UUID
    thread_id: UUID
    metrics: list[MetricValuePublic]
    alerts: list[AlertPublic]

    @classmethod
    def of(cls, found: AnswerMeasures) -> AnswerMeasuresPublic:
        """From the domain result."""
        return cls(
            question_answer_id=found.message_id,
            thread_id=found.thread_id,
            metrics=[
                MetricValuePublic(metric=name, unit=METRIC_UNITS.get(name, ""), value=value)
                for name, value in found.metrics.items()
            ],
            alerts=[AlertPublic.model_validate(a) for a in found.alerts],
        )


@router.get("/projects/{project_id}/alert-rules/")
def list_rules(container: ContainerDep, project_id: ProjectIdDep, page: PageDep) -> PagePublic[AlertRulePublic]:
    """The project's rules, oldest first (a project from before alerting gets the defaults on first use)."""
    return PagePublic[AlertRulePublic].of(alerts.list_rules(container.alerts, project_id, page))


@router.post("/projects/{project_id}/alert-rules/", status_code=201)
def create_rule(container: ContainerDep, project_id: ProjectIdDep, body: AlertRuleCreate) -> AlertRulePublic:
    """Add a rule; 422 with details when its shape is wrong."""
    spec = alerts.RuleSpec(**body.model_dump())
    return AlertRulePublic.model_validate(alerts.create_rule(container.alerts, project_id, spec))


@router.get("/projects/{project_id}/alert-rules/{rule_id}/")
def get_rule(container: ContainerDep, project_id: ProjectIdDep, rule_id: UUID) -> AlertRulePublic:
    """One rule."""
    return AlertRulePublic.model_validate(container.alerts.get_rule(project_id, rule_id))


@router.patch("/projects/{project_id}/alert-rules/{rule_id}/")
def update_rule(
    container: ContainerDep, project_id: ProjectIdDep, rule_id: UUID, body: AlertRuleUpdate
) -> AlertRulePublic:
    """Change some fields of a rule (`{}` is a 422); past alerts keep the rule as it was when they fired."""
    changes = body.model_dump(exclude_unset=True)
    return AlertRulePublic.model_validate(alerts.update_rule(container.alerts, project_id, rule_id, changes))


@router.delete("/projects/{project_id}/alert-rules/{rule_id}/", status_code=204)
def delete_rule(container: ContainerDep, project_id: ProjectIdDep, rule_id: UUID) -> Response:
    """Remove a rule; its past alerts stay."""
    container.alerts.delete_rule(project_id, rule_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/alerts/")
def list_alerts(
    container: ContainerDep,
    project_id: ProjectIdDep,
    page: PageDep,
    thread_id: UUID | None = None,
    message_id: Annotated[UUID | None, Query(description="one answer's question_answer_id")] = None,
    metric: Annotated[str | None, Query(description=f"one of {sorted(METRIC_UNITS)}")] = None,
    kind: Kind | None = None,
    since: Annotated[Instant | None, Query(description="occurred at or after (ISO 8601 with a zone)")] = None,
    until: Annotated[Instant | None, Query(description="occurred before (ISO 8601 with a zone)")] = None,
) -> PagePublic[AlertPublic]:
    """Alerts, newest first, keyset-paginated; an unknown metric is a 422."""
    filters = alerts.AlertFilter(thread_id, metric, kind, since, until, message_id, page)
    return PagePublic[AlertPublic].of(alerts.list_alerts(container.alerts, project_id, filters))


@router.get("/projects/{project_id}/metrics/")
def metric_stats(container: ContainerDep, project_id: ProjectIdDep, page: PageDep) -> PagePublic[MetricStatsPublic]:
    """Count, mean and standard deviation of each metric over the project's interactions, by metric name."""
    return PagePublic[MetricStatsPublic].of(alerts.metric_summaries(container.alerts, project_id, page))


@router.get("/answers/{question_answer_id}/")
def answer_measures(container: ContainerDep, principal: PrincipalDep, question_answer_id: UUID) -> AnswerMeasuresPublic:
    """One answer's metrics and alerts; 404 for another project's answer. Measured seconds after it is saved."""
    found = alerts.answer_measures(container.alerts, principal.project_id, question_answer_id)
    return AnswerMeasuresPublic.of(found)
