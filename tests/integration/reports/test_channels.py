"""Where threads come from: the channel on each thread, its listing filter and the analytics breakdown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.reports.conftest import Data
from tests.integration.reports.test_rollups import assert_rollups_match_the_rows
from threadline.adapters.postgres.chat import PostgresChat
from threadline.bootstrap import Container
from threadline.domain.channels import Channel
from threadline.domain.chat import Outcome

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def _asked(container: Container, project_id: UUID, channel: Channel, at: datetime | None = None) -> UUID:
    """A thread as the chat creates it in `channel`, optionally moved to `at`."""
    chat = PostgresChat(container.db)
    thread_id, message_id = uuid4(), uuid4()
    chat.record_question(project_id, thread_id, message_id, f"asked via {channel}", True, channel)
    chat.finish_exchange(message_id, Outcome(answer="an answer", latency_ms=100))
    if at is not None:
        with psycopg.connect(container.settings.database_url) as conn:
            conn.execute("UPDATE threads SET created_at = %s WHERE id = %s", (at, thread_id))
    return thread_id


def test_analytics_break_new_threads_down_by_channel(client: TestClient, container: Container, data: Data) -> None:
    # Given threads through every channel over two days, one of them in a half-hour zone's edge, and another tenant
    p = data.project()
    other = data.project("Other team", "Other bot")
    for channel, at in (
        ("api", T0 + timedelta(hours=1)),
        ("openai", T0 + timedelta(hours=2, minutes=15)),
        ("openai", T0 + timedelta(days=1, hours=3)),
        ("mcp", T0 + timedelta(days=1, minutes=7)),
        ("widget", T0 + timedelta(days=1, hours=23, minutes=59)),
    ):
        _asked(container, p.project_id, channel, at)  # type: ignore[arg-type]
    _asked(container, other.project_id, "mcp", T0 + timedelta(hours=1))
    # When two days are asked for by day, in UTC and in a half-hour zone (its days cut UTC hours in two)
    answers = {
        tz: client.get(
            f"/query/v1/projects/{p.project_id}/analytics/",
            params={"from": T0.isoformat(), "to": (T0 + timedelta(days=2)).isoformat(), "interval": "day", "tz": tz},
            headers={"X-API-KEY": p.key},
        ).json()
        for tz in ("UTC", "Asia/Kolkata")
    }
    # Then the window and each day count threads per channel, every channel present, exactly
    utc = answers["UTC"]
    assert utc["channels"] == {"api": 1, "widget": 1, "openai": 2, "mcp": 1}
    assert [i["by_channel"] for i in utc["intervals"]] == [
        {"api": 1, "widget": 0, "openai": 1, "mcp": 0},
        {"api": 0, "widget": 1, "openai": 1, "mcp": 1},
    ]
    assert sum(answers["Asia/Kolkata"]["channels"].values()) == 5
    assert [sum(i["by_channel"].values()) for i in answers["Asia/Kolkata"]["intervals"]] == [
        i["threads"] for i in answers["Asia/Kolkata"]["intervals"]
    ]
    # And the channel rollup agrees with a recount from the rows
    assert_rollups_match_the_rows(container.settings.database_url)


def test_the_listing_shows_and_filters_by_channel(client: TestClient, container: Container, data: Data) -> None:
    # Given a thread through the API and one through MCP
    p = data.project()
    via_api = _asked(container, p.project_id, "api")
    via_mcp = _asked(container, p.project_id, "mcp")
    path = f"/query/v1/projects/{p.project_id}/threads/"
    headers = {"X-API-KEY": p.key}
    # When the listing is read whole and by channel
    everything = client.get(path, headers=headers).json()["results"]
    only_mcp = client.get(path, params={"channel": "mcp"}, headers=headers).json()["results"]
    bad = client.get(path, params={"channel": "fax"}, headers=headers)
    # Then every thread shows its channel, the filter keeps one, and an unknown channel is a 422
    assert {(t["id"], t["channel"]) for t in everything} == {(str(via_api), "api"), (str(via_mcp), "mcp")}
    assert [t["id"] for t in only_mcp] == [str(via_mcp)]
    assert bad.status_code == 422 and "error" in bad.json()


def test_an_unknown_channel_cannot_be_written(container: Container, data: Data) -> None:
    # Given a project
    p = data.project()
    # When a thread with a channel Threadline does not know is written, then the database refuses it
    with psycopg.connect(container.settings.database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO threads (project_id, channel) VALUES (%s, 'fax')", (p.project_id,))
