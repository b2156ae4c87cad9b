"""Usage analytics of a project: GET /query/v1/projects/{project_id}/analytics/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel, Field

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.api.models import Instant
from threadline.api.routing import contract_router
from threadline.domain import analytics
from threadline.domain.analytics import ProjectAnalytics
from threadline.domain.usage import ExchangeFigures, FeedbackCounts

router = contract_router(prefix="/query/v1", tags=["analytics"])


class Latency(BaseModel):
    """Answer latency over the answers that have one (ms): the mean is exact, percentiles are within 1%.

    Percentiles are given for the whole window only, not per interval.
    """

    answered: int
    avg_ms: float | None
    p50_ms: int | None
    p95_ms: int | None
    first_token_p50_ms: int | None
    first_token_p95_ms: int | None


class Tokens(BaseModel):
    """Token usage."""

    prompt: int
    completion: int
    total: int


class Answers(BaseModel):
    """Questions asked, how they were answered, how fast, at what token cost."""

    questions: int
    incomplete: int
    failed: int
    # Questions the documents did not cover: the answer said so instead of citing unrelated passages.
    unanswered: int
    latency: Latency
    tokens: Tokens

    @classmethod
    def of(cls, f: ExchangeFigures) -> Answers:
        """From domain figures."""
        return cls(
            questions=f.questions,
            incomplete=f.incomplete,
            failed=f.failed,
            unanswered=f.unanswered,
            latency=Latency(
                answered=f.answered,
                avg_ms=f.latency_avg_ms,
                p50_ms=f.latency_p50_ms,
                p95_ms=f.latency_p95_ms,
                first_token_p50_ms=f.first_token_p50_ms,
                first_token_p95_ms=f.first_token_p95_ms,
            ),
            tokens=Tokens(
                prompt=f.prompt_tokens, completion=f.completion_tokens, total=f.prompt_tokens + f.completion_tokens
            ),
        )


class RatingsPublic(BaseModel):
    """Answer ratings (by the time of each first rating): up, down, and the share that is down."""

    up: int
    down: int
    down_rate: float | None = Field(description="down / (up + down); null when nothing was rated")

    @classmethod
    def of(cls, counts: FeedbackCounts) -> RatingsPublic:
        """From the domain counts."""
        rate = counts.down_rate
        return cls(up=counts.up, down=counts.down, down_rate=None if rate is None else round(rate, 4))


class CategoryTotal(BaseModel):
    """A category and its threads over the window."""

    id: UUID
    name: str
    threads: int


class IntervalPublic(BaseModel):
    """One interval: [start, next interval's start), clipped to the window."""

    start: datetime
    threads: int
    unlabelled: int
    by_category: dict[UUID, int]
    by_channel: dict[str, int] = Field(description="new threads per channel: api, widget, openai, mcp")
    answers: Answers
    feedback: RatingsPublic


class AnalyticsPublic(BaseModel):
    """A project's usage over [from, to)."""

    project_id: UUID
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    interval: str
    timezone: str
    threads: int
    unlabelled: int
    label_sources: dict[str, int]
    categories: list[CategoryTotal]
    channels: dict[str, int] = Field(description="new threads per channel (api, widget, openai, mcp)")
    answers: Answers
    feedback: RatingsPublic
    intervals: list[IntervalPublic]

    @classmethod
    def of(cls, a: ProjectAnalytics) -> AnalyticsPublic:
        """From the domain result."""
        return cls(
            project_id=a.project_id,
            from_=a.window.start,
            to=a.window.end,
            interval=a.window.interval,
            timezone=a.window.timezone,
            threads=a.threads,
            unlabelled=a.unlabelled,
            label_sources=a.label_sources,
            categories=[CategoryTotal(id=c.id, name=c.name, threads=a.category_totals[c.id]) for c in a.categories],
            channels=a.channel_totals,
            answers=Answers.of(a.totals),
            feedback=RatingsPublic.of(a.feedback),
            intervals=[
                IntervalPublic(
                    start=b.start,
                    threads=b.threads,
                    unlabelled=b.unlabelled,
                    by_category=b.by_category,
                    by_channel=b.by_channel,
                    answers=Answers.of(b.figures),
                    feedback=RatingsPublic.of(b.feedback),
                )
                for b in a.buckets
            ],
        )


@router.get("/projects/{project_id}/analytics/")
def project_analytics(
    container: ContainerDep,
    project_id: ProjectIdDep,
    from_: Annotated[Instant | None, Query(alias="from", description="inclusive, with a UTC offset")] = None,
    to: Annotated[Instant | None, Query(description="exclusive, with a UTC offset; default now")] = None,
    interval: Annotated[str, Query(description="day or week")] = "day",
    tz: Annotated[str, Query(description="IANA timezone of the day/week boundaries")] = "UTC",
) -> AnalyticsPublic:
    """Threads and questions per interval (zero-filled), per category, label sources, latency, tokens."""
    window = analytics.make_window(from_, to, interval, tz, datetime.now(UTC))
    return AnalyticsPublic.of(analytics.project_analytics(container.analytics, project_id, window))
