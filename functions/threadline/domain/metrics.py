"""Interaction metrics: one small class per metric, computed off the chat's hot path.

A new metric is one class with a `name`, a `unit` and `compute(interaction) -> float | None`
(None when the interaction does not carry what the metric needs, e.g. no token counts for an
imported row), added to `METRICS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Interaction:
    """One question and its answer, as the metrics see it."""

    message_id: UUID
    thread_id: UUID
    project_id: UUID
    question: str
    answer: str
    occurred_at: datetime
    latency_ms: float | None = None
    first_token_ms: float | None = None
    tokens_used: int | None = None
    retrieval_score: float | None = None
    # None means "unknown" (an imported interaction), not "no sources".
    source_scores: tuple[float | None, ...] | None = None
    # False: no passage passed the relevance floor (the documents do not cover the question); None: unknown.
    grounded: bool | None = None


class Metric(Protocol):
    """A measure of one interaction."""

    name: ClassVar[str]
    unit: ClassVar[str]

    def compute(self, interaction: Interaction) -> float | None: ...


class QuestionLength:
    """Characters in the question."""

    name: ClassVar[str] = "question_length"
    unit: ClassVar[str] = "chars"

    def compute(self, interaction: Interaction) -> float | None:
        """Length of the question."""
        return float(len(interaction.question))


class AnswerLength:
    """Characters in the answer."""

    name: ClassVar[str] = "answer_length"
    unit: ClassVar[str] = "chars"

    def compute(self, interaction: Interaction) -> float | None:
        """Length of the answer."""
        return float(len(interaction.answer))


class LatencyMs:
    """Time from the question to the last token."""

    name: ClassVar[str] = "latency_ms"
    unit: ClassVar[str] = "ms"

    def compute(self, interaction: Interaction) -> float | None:
        """The recorded latency, if any."""
        return _finite(interaction.latency_ms)


class FirstTokenMs:
    """Time from the question to the first streamed token."""

    name: ClassVar[str] = "first_token_ms"
    unit: ClassVar[str] = "ms"

    def compute(self, interaction: Interaction) -> float | None:
        """The recorded time to first token, if any."""
        return _finite(interaction.first_token_ms)


class TokensUsed:
    """Prompt plus completion tokens."""

    name: ClassVar[str] = "tokens_used"
    unit: ClassVar[str] = "tokens"

    def compute(self, interaction: Interaction) -> float | None:
        """Total tokens; zero means the answerer did not report usage (offline answerer, import)."""
        return float(interaction.tokens_used) if interaction.tokens_used else None


class RetrievalScore:
    """Best similarity between the question and a retrieved passage."""

    name: ClassVar[str] = "retrieval_score"
    unit: ClassVar[str] = "cosine"

    def compute(self, interaction: Interaction) -> float | None:
        """The recorded best score, else the best score among the sources."""
        if interaction.retrieval_score is not None:
            return _finite(interaction.retrieval_score)
        scores = [s for s in interaction.source_scores or () if s is not None]
        return _finite(max(scores)) if scores else None


class SourceCount:
    """Passages cited with the answer."""

    name: ClassVar[str] = "source_count"
    unit: ClassVar[str] = "count"

    def compute(self, interaction: Interaction) -> float | None:
        """Number of sources, when known."""
        return None if interaction.source_scores is None else float(len(interaction.source_scores))


class Unanswered:
    """1 when the documents did not cover the question (no passage passed the relevance floor), else 0.

    A rule `unanswered >= 1` alerts on every coverage gap; an outlier rule on it fires when gaps become
    unusually frequent for the project.
    """

    name: ClassVar[str] = "unanswered"
    unit: ClassVar[str] = "count"

    def compute(self, interaction: Interaction) -> float | None:
        """1.0 for an unanswered question, 0.0 for a grounded answer, None when unknown (imported)."""
        return None if interaction.grounded is None else float(not interaction.grounded)


FEEDBACK_DOWN = "feedback_down"


class FeedbackDown:
    """1 when an answer's first rating is down, 0 when up: its mean over a project is the down-rate.

    Measured when the answer is rated (domain/feedback.py:rate_answer), not from the interaction, which is
    measured before anyone can rate it; listed here so that alert rules and the metrics listing know it.
    """

    name: ClassVar[str] = FEEDBACK_DOWN
    unit: ClassVar[str] = "ratio"

    def compute(self, interaction: Interaction) -> float | None:  # noqa: ARG002  (the Metric protocol's signature)
        """Never from the interaction (see the class)."""
        return None


METRICS: tuple[Metric, ...] = (
    QuestionLength(),
    AnswerLength(),
    LatencyMs(),
    FirstTokenMs(),
    TokensUsed(),
    RetrievalScore(),
    SourceCount(),
    Unanswered(),
    FeedbackDown(),
)
METRIC_UNITS: dict[str, str] = {m.name: m.unit for m in METRICS}


@dataclass(frozen=True, slots=True)
class Measurement:
    """One metric's value for one interaction."""

    message_id: UUID
    thread_id: UUID
    metric: str
    value: float
    occurred_at: datetime


def measure(interactions: Sequence[Interaction], metrics: Sequence[Metric] = METRICS) -> list[Measurement]:
    """Every defined metric of every interaction (metrics that do not apply are left out)."""
    out: list[Measurement] = []
    for interaction in interactions:
        for metric in metrics:
            value = metric.compute(interaction)
            if value is not None:
                out.append(
                    Measurement(
                        interaction.message_id, interaction.thread_id, metric.name, value, interaction.occurred_at
                    )
                )
    return out


@dataclass(frozen=True, slots=True)
class RunningStats:
    """Count, mean and M2 (sum of squared deviations) of a metric's history (Welford)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @property
    def stddev(self) -> float:
        """Population standard deviation (numpy's default, ddof=0)."""
        return math.sqrt(self.m2 / self.n) if self.n > 0 else 0.0

    def add(self, value: float) -> RunningStats:
        """The statistics with one more value (Welford's update)."""
        n = self.n + 1
        delta = value - self.mean
        mean = self.mean + delta / n
        return RunningStats(n, mean, self.m2 + delta * (value - mean))

    def combine(self, other: RunningStats) -> RunningStats:
        """The statistics of both histories together (Chan et al.); the SQL applies the same formula."""
        n = self.n + other.n
        if n == 0:
            return self
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        return RunningStats(n, mean, self.m2 + other.m2 + delta * delta * self.n * other.n / n)


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)
