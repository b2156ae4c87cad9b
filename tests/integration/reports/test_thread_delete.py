"""DELETE of a thread: its exchanges, metrics, alerts, the metric statistics and the analytics rollups after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.reports.conftest import Data
from tests.integration.reports.test_rollups import assert_rollups_match_the_rows
from threadline.bootstrap import Container
from threadline.domain.alerts import measure_message

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _measure_all(container: Container, data: Data, project_id: UUID) -> None:
    with psycopg.connect(data.url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM messages WHERE project_id = %s ORDER BY id", (project_id,))]
    for message_id in ids:
        measure_message(container.alerts, project_id, message_id)


def _analytics(client: TestClient, project_id: UUID, key: str) -> dict[str, object]:
    params = {"from": (T0 - timedelta(days=1)).isoformat(), "to": (T0 + timedelta(days=2)).isoformat()}
    response = client.get(f"/query/v1/projects/{project_id}/analytics/", params=params, headers={"X-API-KEY": key})
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


@pytest.mark.integration
def test_deleting_a_thread_leaves_everything_consistent(client: TestClient, container: Container, data: Data) -> None:
    # Given a project with a slow two-exchange thread (it raised alerts) and a quick one, all measured
    p = data.project()
    slow = data.thread(p.project_id, T0, exchanges=(("complete", 9000, 10, 20), ("complete", 7000, 5, 5)))
    quick = data.thread(p.project_id, T0 + timedelta(hours=1), exchanges=(("complete", 300, 7, 9),))
    _measure_all(container, data, p.project_id)
    headers = {"X-API-KEY": p.key}
    before = _analytics(client, p.project_id, p.key)
    alerts_url = f"/query/v1/projects/{p.project_id}/alerts/"
    assert client.get(alerts_url, params={"thread_id": str(slow)}, headers=headers).json()["results"]
    # When the slow thread is deleted (and another project's key tries the quick one)
    deleted = client.delete(f"/query/v1/threads/{slow}/", headers=headers)
    other = data.project("Other", "Other bot")
    foreign = client.delete(f"/query/v1/threads/{quick}/", headers={"X-API-KEY": other.key})
    # Then it is gone with its exchanges, metrics and alerts, and the other project could not touch the quick one
    assert deleted.status_code == 204 and foreign.status_code == 404
    assert client.get(f"/query/v1/threads/{slow}/", headers=headers).status_code == 404
    assert client.get(f"/query/v1/threads/{quick}/", headers=headers).status_code == 200
    assert client.get(alerts_url, params={"thread_id": str(slow)}, headers=headers).json()["results"] == []
    assert data.scalar("SELECT count(*) FROM messages WHERE thread_id = %s", slow) == 0
    assert data.scalar("SELECT count(*) FROM interaction_metrics WHERE project_id = %s", p.project_id) > 0
    # And analytics count only the quick thread, exactly as a recount from the rows would
    after = _analytics(client, p.project_id, p.key)
    assert (before["threads"], after["threads"]) == (2, 1)
    assert before["answers"]["questions"] == 3 and after["answers"]["questions"] == 1  # type: ignore[index]
    assert after["answers"]["latency"]["avg_ms"] == 300.0  # type: ignore[index]
    assert_rollups_match_the_rows(data.url)
    # And the running statistics are those of the values left, as if the slow thread had never been measured
    with psycopg.connect(data.url) as conn:
        left = conn.execute(
            "SELECT metric, array_agg(value) FROM interaction_metrics WHERE project_id = %s GROUP BY metric",
            (p.project_id,),
        ).fetchall()
    stats = container.alerts.stats(p.project_id)
    for metric, values in left:
        assert stats[metric].n == len(values)
        assert stats[metric].mean == pytest.approx(np.mean(values), rel=1e-9)
        # (within the rounding the removed values leave: ~1e-16 of their squares)
        assert stats[metric].stddev == pytest.approx(np.std(values), rel=1e-6, abs=1e-3)
    assert {m for m, _ in left} == {m for m, s in stats.items() if s.n}
