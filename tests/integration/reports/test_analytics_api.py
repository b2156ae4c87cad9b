"""The analytics endpoint against a real database: exact, zero-filled, half-open, tenant-scoped."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from tests.integration.reports.conftest import Data, estimates

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def _nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


@pytest.mark.integration
def test_daily_analytics_match_the_rows(client: TestClient, data: Data) -> None:
    # Given threads on days 0, 0, 2 and 6 of a week, one exactly on `from` and one exactly on `to`
    p = data.project()
    other = data.project("Other team", "Other bot")
    discovery, trouble = p.categories["Discovery"], p.categories["Troubleshooting"]
    latencies = [100, 200, 300, 400, 1000]
    data.thread(
        p.project_id,
        T0,
        category_id=discovery,
        source="auto",
        exchanges=(("complete", 100, 10, 20), ("complete", 200, 11, 21)),
    )
    data.thread(
        p.project_id,
        T0 + timedelta(hours=5),
        category_id=trouble,
        source="user",
        exchanges=(("incomplete", 300, 12, 22),),
    )
    data.thread(p.project_id, T0 + timedelta(days=2, hours=23, minutes=59), exchanges=(("complete", 400, 13, 23),))
    data.thread(
        p.project_id,
        T0 + timedelta(days=6),
        category_id=discovery,
        source="user",
        exchanges=(("complete", 1000, 14, 24), ("failed", None, 0, 0)),
    )
    data.thread(p.project_id, T0 + timedelta(days=7), exchanges=(("complete", 5, 1, 1),))  # == to: excluded
    data.thread(p.project_id, T0 - timedelta(microseconds=1))  # before from: excluded
    data.thread(other.project_id, T0 + timedelta(days=1))  # another tenant: excluded
    # When the week is asked for by day
    response = client.get(
        f"/query/v1/projects/{p.project_id}/analytics/",
        params={"from": T0.isoformat(), "to": (T0 + timedelta(days=7)).isoformat(), "interval": "day"},
        headers={"X-API-KEY": p.key},
    )
    # Then every figure is exact
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["from"].startswith("2026-03-02T00:00:00")
    assert [i["threads"] for i in body["intervals"]] == [2, 0, 1, 0, 0, 0, 1]
    assert [i["answers"]["questions"] for i in body["intervals"]] == [3, 0, 1, 0, 0, 0, 2]
    assert body["threads"] == 4 and body["unlabelled"] == 1
    assert body["intervals"][0]["by_category"] == {str(discovery): 1, str(trouble): 1}
    assert body["intervals"][2]["unlabelled"] == 1
    assert {c["name"]: c["threads"] for c in body["categories"]} == {"Discovery": 2, "Troubleshooting": 1}
    assert body["label_sources"] == {"auto": 1, "user": 2, "none": 1}
    answers = body["answers"]
    assert answers["questions"] == 6 and answers["incomplete"] == 1 and answers["failed"] == 1
    assert answers["latency"]["answered"] == 5
    assert answers["latency"]["avg_ms"] == sum(latencies) / 5
    assert estimates(answers["latency"]["p50_ms"], _nearest_rank(latencies, 0.5))
    assert estimates(answers["latency"]["p95_ms"], _nearest_rank(latencies, 0.95))
    first_tokens = [latency // 4 for latency in latencies]  # what the fixture writes
    assert estimates(answers["latency"]["first_token_p50_ms"], _nearest_rank(first_tokens, 0.5))
    assert estimates(answers["latency"]["first_token_p95_ms"], _nearest_rank(first_tokens, 0.95))
    assert answers["tokens"] == {"prompt": 60, "completion": 110, "total": 170}
    # And the figures agree with a plain count over the same half-open range (the listing's predicate)
    listed = data.scalar(
        "SELECT count(*) FROM threads WHERE project_id = %s AND created_at >= %s AND created_at < %s",
        p.project_id,
        T0,
        T0 + timedelta(days=7),
    )
    assert listed == body["threads"]


@pytest.mark.integration
def test_weekly_buckets_follow_the_local_calendar(client: TestClient, data: Data) -> None:
    # Given a thread late on Sunday in New York, which is already Monday in UTC
    p = data.project()
    data.thread(p.project_id, datetime(2026, 3, 9, 3, 0, tzinfo=UTC))  # Sun 8 Mar 23:00 in New York
    data.thread(p.project_id, datetime(2026, 3, 9, 6, 0, tzinfo=UTC))  # Mon 9 Mar 02:00 in New York
    # When three weeks are asked for by week in New York time (DST starts on 8 March 2026 there)
    response = client.get(
        f"/query/v1/projects/{p.project_id}/analytics/",
        params={
            "from": "2026-02-23T05:00:00Z",
            "to": "2026-03-16T04:00:00Z",
            "interval": "week",
            "tz": "America/New_York",
        },
        headers={"X-API-KEY": p.key},
    )
    # Then the buckets start on local Mondays, and each thread falls in its local week
    assert response.status_code == 200, response.text
    intervals = response.json()["intervals"]
    assert [i["start"][:19] for i in intervals] == ["2026-02-23T05:00:00", "2026-03-02T05:00:00", "2026-03-09T04:00:00"]
    assert [i["threads"] for i in intervals] == [0, 1, 1]


@pytest.mark.integration
def test_default_window_is_the_last_30_days(client: TestClient, data: Data) -> None:
    p = data.project()
    data.thread(p.project_id, datetime.now(UTC) - timedelta(days=1))
    data.thread(p.project_id, datetime.now(UTC) - timedelta(days=40))
    body = client.get(f"/query/v1/projects/{p.project_id}/analytics/", headers={"X-API-KEY": p.key}).json()
    assert body["threads"] == 1
    assert len(body["intervals"]) in (30, 31)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-02T00:00:00Z"}, "from"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"interval": "month"}, "interval"),
        ({"tz": "Mars/Olympus"}, "timezone"),
        ({"from": "2026-03-02T00:00:00"}, "from"),
    ],
)
def test_invalid_parameters_are_422_json(client: TestClient, data: Data, params: dict[str, str], field: str) -> None:
    p = data.project()
    response = client.get(f"/query/v1/projects/{p.project_id}/analytics/", params=params, headers={"X-API-KEY": p.key})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["details"]["field"] == field


@pytest.mark.integration
def test_malformed_date_is_422_json(client: TestClient, data: Data) -> None:
    p = data.project()
    response = client.get(
        f"/query/v1/projects/{p.project_id}/analytics/", params={"from": "yesterday"}, headers={"X-API-KEY": p.key}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"
    assert response.json()["error"]["details"]["field"] == "from"


@pytest.mark.integration
def test_another_projects_analytics_are_404(client: TestClient, data: Data) -> None:
    p = data.project()
    other = data.project("B", "B bot")
    for target in (other.project_id, uuid4()):
        response = client.get(f"/query/v1/projects/{target}/analytics/", headers={"X-API-KEY": p.key})
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def _listed(client: TestClient, key: str, project_id: object, **params: str) -> int:
    count, cursor = 0, None
    while True:
        page = client.get(
            f"/query/v1/projects/{project_id}/threads/",
            params={**params, "limit": "100", **({"cursor": cursor} if cursor else {})},
            headers={"X-API-KEY": key},
        ).json()
        count += len(page["results"])
        cursor = page["next_cursor"]
        if not cursor:
            return count


@pytest.mark.integration
def test_counts_agree_with_the_thread_listing(client: TestClient, data: Data) -> None:
    # Given labelled and unlabelled threads, some exactly on the window's edges
    p = data.project()
    discovery, trouble = p.categories["Discovery"], p.categories["Troubleshooting"]
    for i in range(7):
        at = T0 + timedelta(hours=13 * i)
        data.thread(p.project_id, at, category_id=(discovery, trouble, None)[i % 3], source=("auto", "user")[i % 2])
    data.thread(p.project_id, T0 + timedelta(days=7), category_id=discovery, source="auto")  # on `to`: outside
    data.thread(p.project_id, T0 - timedelta(microseconds=1), category_id=trouble, source="user")  # before: outside
    to = T0 + timedelta(days=7)
    # When the analytics and the listing are asked about the same window. The listing's `created_after`
    # is exclusive and timestamps have microsecond precision, so [from, to) is (from - 1 us, to) there.
    body = client.get(
        f"/query/v1/projects/{p.project_id}/analytics/",
        params={"from": T0.isoformat(), "to": to.isoformat()},
        headers={"X-API-KEY": p.key},
    ).json()
    window = {"created_after": (T0 - timedelta(microseconds=1)).isoformat(), "created_before": to.isoformat()}
    # Then every category, the unlabelled and the user labels count the same threads in both
    for category in body["categories"]:
        assert _listed(client, p.key, p.project_id, category_id=category["id"], **window) == category["threads"]
    assert _listed(client, p.key, p.project_id, unlabelled="true", **window) == body["unlabelled"] == 2
    assert _listed(client, p.key, p.project_id, label_source="user", **window) == body["label_sources"]["user"]
    assert _listed(client, p.key, p.project_id, **window) == body["threads"] == 7
