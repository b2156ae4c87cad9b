"""Alert rules, alerts, and a project's metric statistics."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.domain import alerts
from threadline.domain.metrics import METRIC_UNITS

router = APIRouter(prefix="/query/v1/projects/{project_id}", tags=["alerts"])

Kind = Literal["threshold", "outlier"]
Op = Literal[">", ">=", "<", "<="]


class AlertRuleCreate(BaseModel):
    """A new rule: a threshold (`metric operator threshold`) or an outlier (`|value - mean| > stddevs * sd`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    metric: str = Field(description=f"one of {sorted(METRIC_UNITS)}")
    operator: Op | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    stddevs: float | None = Field(default=None, allow_inf_nan=False, description="outlier rules; default 2")
    min_samples: int = Field(default=alerts.DEFAULT_MIN_SAMPLES, ge=2, le=1_000_000)
    enabled: bool = True
    name: str = Field(default="", max_length=200)


class AlertRuleUpdate(BaseModel):
    """A partial change; the merged rule must be valid as a whole."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
    metric: str | None = None
    operator: Op | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    stddevs: float | None = Field(default=None, allow_inf_nan=False)
    min_samples: int | None = Field(default=None, ge=2, le=1_000_000)
    enabled: bool | None = None
    name: str | None = Field(default=None, max_length=200)


class AlertRulePublic(BaseModel):
    """A stored rule."""

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

    id: UUID
    rule_id: UUID | None
    rule_name: str
    message_id: UUID
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


class AlertPagePublic(BaseModel):
    """A page of alerts; pass `next_cursor` back as `cursor` for the next one."""

    results: list[AlertPublic]
    next_cursor: str | None


class MetricStatsPublic(BaseModel):
    """A metric's running statistics over the project's history."""

    metric: str
    unit: str
    count: int
    mean: float
    stddev: float


def _rule(rule: alerts.AlertRule) -> AlertRulePublic:
    fields = asdict(rule)
    fields.pop("project_id")
    return AlertRulePublic(**fields)


@router.get("/alert-rules/")
async def list_rules(container: ContainerDep, project_id: ProjectIdDep) -> list[AlertRulePublic]:
    """The project's rules (a project from before alerting gets the defaults on first use)."""
    rules = await run_in_threadpool(alerts.rules_for, container.alerts, project_id)
    return [_rule(r) for r in rules]


@router.post("/alert-rules/", status_code=201)
async def create_rule(container: ContainerDep, project_id: ProjectIdDep, body: AlertRuleCreate) -> AlertRulePublic:
    """Add a rule; 422 with details when its shape is wrong."""
    spec = alerts.RuleSpec(**body.model_dump())
    return _rule(await run_in_threadpool(alerts.create_rule, container.alerts, project_id, spec))


@router.get("/alert-rules/{rule_id}/")
async def get_rule(container: ContainerDep, project_id: ProjectIdDep, rule_id: UUID) -> AlertRulePublic:
    """One rule."""
    return _rule(await run_in_threadpool(container.alerts.get_rule, project_id, rule_id))


@router.patch("/alert-rules/{rule_id}/")
async def update_rule(
    container: ContainerDep, project_id: ProjectIdDep, rule_id: UUID, body: AlertRuleUpdate
) -> AlertRulePublic:
    """Change some fields of a rule; past alerts keep the rule as it was when they fired."""
    changes = body.model_dump(exclude_unset=True)
    return _rule(await run_in_threadpool(alerts.update_rule, container.alerts, project_id, rule_id, changes))


@router.delete("/alert-rules/{rule_id}/", status_code=204)
async def delete_rule(container: ContainerDep, project_id: ProjectIdDep, rule_id: UUID) -> Response:
    """Remove a rule; its past alerts stay."""
    await run_in_threadpool(container.alerts.delete_rule, project_id, rule_id)
    return Response(status_code=204)


@router.get("/alerts/")
async def list_alerts(
    container: ContainerDep,
    project_id: ProjectIdDep,
    thread_id: UUID | None = None,
    metric: str | None = None,
    kind: Kind | None = None,
    since: Annotated[datetime | None, Query(description="occurred at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="occurred before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> AlertPagePublic:
    """Alerts, newest first, keyset-paginated."""
    filters = alerts.AlertFilter(thread_id, metric, kind, since, until, limit, cursor)
    page = await run_in_threadpool(alerts.list_alerts, container.alerts, project_id, filters)
    results = [AlertPublic(**{k: v for k, v in asdict(a).items() if k != "project_id"}) for a in page.results]
    return AlertPagePublic(results=results, next_cursor=page.next_cursor)


@router.get("/metrics/")
async def metric_stats(container: ContainerDep, project_id: ProjectIdDep) -> list[MetricStatsPublic]:
    """Count, mean and standard deviation of each metric over the project's interactions."""
    stats = await run_in_threadpool(container.alerts.stats, project_id)
    return [
        MetricStatsPublic(metric=name, unit=METRIC_UNITS.get(name, ""), count=s.n, mean=s.mean, stddev=s.stddev)
        for name, s in stats.items()
    ]
