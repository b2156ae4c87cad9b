"""Fixtures for categories, listing, corrections and classification: a project with a key, threads seeded in SQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.integration.labelling.support import make_queue
from threadline.bootstrap import Container
from threadline.settings import Settings

SeedThreads = Callable[..., list[UUID]]


@pytest.fixture
def seed_threads(database_url: str) -> SeedThreads:
    """Inserts threads with first questions as the chat path would (the chat itself is issue 3)."""

    def seed(project_id: UUID, questions: Sequence[str], created_at: Sequence[datetime] | None = None) -> list[UUID]:
        ids: list[UUID] = []
        with psycopg.connect(database_url) as conn:
            for index, question in enumerate(questions):
                row = conn.execute(
                    "INSERT INTO threads (project_id, first_question, message_count, created_at)"
                    " VALUES (%s, %s, 1, coalesce(%s, clock_timestamp())) RETURNING id",
                    (project_id, question, created_at[index] if created_at else None),
                ).fetchone()
                assert row is not None
                ids.append(row[0])
        return ids

    return seed


@pytest.fixture
def classify_queue(settings: Settings, aws_endpoint: str) -> str:
    """A ClassifyQueue (with DLQ) in moto, wired into the test's settings; returns its URL."""
    url, _ = make_queue(aws_endpoint, f"classify-{uuid4().hex[:8]}")
    settings.aws_endpoint_url = aws_endpoint
    settings.classify_queue_url = url
    return url


@pytest.fixture
def lambda_env(settings: Settings, embedder: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    """The process-wide container a Lambda handler uses, built from the environment of this test."""
    from threadline.bootstrap import get_container
    from threadline.settings import get_settings

    for name in ("database_url", "embedding_tokenizer_path", "aws_endpoint_url", "classify_queue_url"):
        monkeypatch.setenv(name.upper(), str(getattr(settings, name)))
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    monkeypatch.setenv("OPENAI_API_KEY", "")
    get_settings.cache_clear()
    get_container.cache_clear()
    built = get_container()
    built.__dict__["embedder"] = embedder
    yield built
    built.close()
    get_settings.cache_clear()
    get_container.cache_clear()
