"""Fixtures of the analytics and report tests: a project with threads and messages at chosen instants."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import Parser
from uuid import UUID

import psycopg
import pytest

from threadline.bootstrap import Container
from threadline.domain import tenancy
from threadline.domain.usage import RELATIVE_ACCURACY
from threadline.local.mail import sent_mail
from threadline.settings import Settings


@dataclass(frozen=True)
class Seeded:
    """A project of a team, its key, and its categories by name."""

    team_id: UUID
    project_id: UUID
    key: str
    categories: dict[str, UUID]


class Data:
    """Writes threads and exchanges straight into the database (the chat path is another issue's)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.url = container.settings.database_url

    def project(self, team_name: str = "Acme", project_name: str = "Docs bot", team_id: UUID | None = None) -> Seeded:
        repo = self.container.tenancy
        team = team_id or tenancy.create_team(repo, team_name).id
        project = tenancy.create_project(repo, team, project_name)
        key = tenancy.issue_api_key(repo, project.id).key
        with psycopg.connect(self.url) as conn:
            rows = conn.execute("SELECT name, id FROM categories WHERE project_id = %s", (project.id,)).fetchall()
        return Seeded(team, project.id, key, {str(n): i for n, i in rows})

    def thread(
        self,
        project_id: UUID,
        at: datetime,
        question: str = "How do I start?",
        category_id: UUID | None = None,
        source: str | None = None,
        exchanges: tuple[tuple[str, int | None, int, int], ...] = (),
    ) -> UUID:
        """A thread created at `at`; each exchange is (status, latency_ms, prompt_tokens, completion_tokens)."""
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "INSERT INTO threads (project_id, first_question, category_id, label_source, created_at, message_count)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (project_id, question, category_id, source if category_id else None, at, len(exchanges)),
            ).fetchone()
            assert row is not None
            for status, latency, prompt, completion in exchanges:
                conn.execute(
                    "INSERT INTO messages (thread_id, project_id, question, answer, status, latency_ms,"
                    " first_token_ms, prompt_tokens, completion_tokens, created_at)"
                    " VALUES (%s, %s, %s, 'an answer', %s, %s, %s, %s, %s, %s)",
                    (
                        row[0],
                        project_id,
                        question,
                        status,
                        latency,
                        latency // 4 if latency else None,
                        prompt,
                        completion,
                        at,
                    ),
                )
        return UUID(str(row[0]))

    def scalar(self, sql: str, *params: object) -> object:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return row[0]


def estimates(reported: int | None, exact: int | None) -> bool:
    """A percentile read from the histograms: within 1% of the exact one, plus rounding to whole milliseconds."""
    if reported is None or exact is None:
        return reported is None and exact is None
    return abs(reported - exact) <= RELATIVE_ACCURACY * exact + 0.5


def sent_message(endpoint: str, message_id: str) -> EmailMessage:
    """The mail the local SES accepted under `message_id`, parsed (KeyError if there is none)."""
    for mail in sent_mail(endpoint):
        if mail.id == message_id and mail.raw is not None:
            parsed: EmailMessage = Parser(policy=policy.default).parsestr(mail.raw)  # type: ignore[assignment]
            return parsed
    raise KeyError(message_id)


def sent_raw(endpoint: str, containing: str) -> list[str]:
    """The raw text of every mail the local SES holds that contains `containing`."""
    return [m.raw for m in sent_mail(endpoint) if m.raw is not None and containing in m.raw]


@pytest.fixture
def data(container: Container) -> Data:
    return Data(container)


@pytest.fixture
def mail_container(settings: Settings, embedder: object, aws_endpoint: str) -> Iterator[Container]:
    """A container whose SES is the session's moto server, with the report sender verified (as SES requires)."""
    built = Container(settings.model_copy(update={"aws_endpoint_url": aws_endpoint}))
    built.__dict__["embedder"] = embedder
    from threadline.adapters.aws.mailer import ses_client

    ses_client(built.settings).verify_email_identity(EmailAddress=built.settings.report_sender)
    yield built
    built.close()
