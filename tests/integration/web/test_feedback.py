"""Answer feedback through the real app and database: idempotent per answer and key, shown in the thread,
counted in analytics and reports, and measured as `feedback_down` for alert rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.web.conftest import DOCS, Site
from threadline.bootstrap import Container
from threadline.domain import reports, tenancy
from threadline.domain.report_render import render_text

pytestmark = pytest.mark.integration


def _ask(client: TestClient, site: Site, headers: dict[str, str], query: str = "How do I start?") -> dict[str, Any]:
    answer = client.post(f"/query/v1/projects/{site.project_id}/chat/", json={"query": query}, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _rate(client: TestClient, headers: dict[str, str], answer_id: str, **body: object) -> Any:
    return client.post(f"/query/v1/answers/{answer_id}/feedback/", json=body, headers=headers)


def _rows(container: Container, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(container.settings.database_url) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_second_rating_by_the_same_key_replaces_the_first(
    client: TestClient, site: Site, web_container: Container
) -> None:
    # Given an answer the widget got
    answer = _ask(client, site, site.widget)
    qa = answer["question_answer_id"]
    # When the widget rates it up, retries the same, then changes its mind with a comment
    first = _rate(client, site.widget, qa, rating="up")
    retried = _rate(client, site.widget, qa, rating="up", comment=None)
    changed = _rate(client, site.widget, qa, rating="down", comment="  It missed the refund policy.  ")
    # Then every POST answers the one stored rating, and the last one wins
    assert first.status_code == retried.status_code == changed.status_code == 200
    body = changed.json()
    assert body["question_answer_id"] == qa and body["rating"] == "down"
    assert body["comment"] == "It missed the refund policy."
    assert body["created_at"] == first.json()["created_at"] and body["updated_at"] > first.json()["updated_at"]
    stored = _rows(web_container, "SELECT rating, comment FROM answer_feedback WHERE message_id = %s", qa)
    assert stored == [("down", "It missed the refund policy.")]
    # And the rollup counts one down rating and no up (the retry and the change netted out)
    rollup = _rows(
        web_container, "SELECT sum(up), sum(down) FROM analytics_feedback_hours WHERE project_id = %s", site.project_id
    )
    assert rollup == [(0, 1)]


def test_the_thread_shows_each_answers_ratings_and_whose_is_mine(client: TestClient, site: Site) -> None:
    # Given a widget thread with two answers, the first rated down by the widget and up by the admin
    first = _ask(client, site, site.widget)
    thread = first["thread_id"]
    follow = client.post(f"/query/v1/threads/{thread}/chat/", json={"query": "And after?"}, headers=site.widget)
    assert follow.status_code == 200
    _rate(client, site.widget, first["question_answer_id"], rating="down", comment="Too vague")
    _rate(client, site.admin, first["question_answer_id"], rating="up")
    # When the widget and the admin read the thread
    as_widget = client.get(f"/query/v1/threads/{thread}/", headers=site.widget).json()["messages"]
    as_admin = client.get(f"/query/v1/threads/{thread}/", headers=site.admin).json()["messages"]
    # Then the rated answer shows both ratings, the comment, and each reader's own rating
    rated = as_widget[0]["feedback"]
    assert (rated["up"], rated["down"], rated["mine"]) == (1, 1, "down")
    assert [(c["rating"], c["comment"]) for c in rated["comments"]] == [("down", "Too vague")]
    assert as_admin[0]["feedback"]["mine"] == "up"
    # And the unrated answer shows zeros
    assert as_widget[1]["feedback"] == {"up": 0, "down": 0, "mine": None, "comments": []}


def test_a_widget_key_rates_only_answers_in_its_own_threads(
    client: TestClient, site: Site, web_container: Container
) -> None:
    # Given an answer in a thread the admin started, and one in a thread of another widget key
    admin_answer = _ask(client, site, site.admin)["question_answer_id"]
    other = tenancy.issue_api_key(web_container.tenancy, site.project_id, "blog", tenancy.WIDGET, [DOCS]).key
    other_answer = _ask(client, site, {"X-API-KEY": other, "Origin": DOCS})["question_answer_id"]
    # When the widget rates them, and an answer that does not exist
    refused = [_rate(client, site.widget, qa, rating="up") for qa in (admin_answer, other_answer, str(uuid4()))]
    # Then each is 404, as if absent, and nothing is stored
    assert [r.status_code for r in refused] == [404, 404, 404]
    assert _rows(web_container, "SELECT count(*) FROM answer_feedback") == [(0,)]
    # And the admin key may rate any answer of its project
    assert _rate(client, site.admin, other_answer, rating="up").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": "meh"}, "rating"),
        ({}, "rating"),
        ({"rating": "up", "comment": "x" * 2001}, "comment"),
        ({"rating": "up", "stars": 5}, "stars"),
    ],
)
def test_bad_feedback_is_a_422_naming_the_field(
    client: TestClient, site: Site, body: dict[str, object], field: str
) -> None:
    # Given an answer
    qa = _ask(client, site, site.widget)["question_answer_id"]
    # When a bad rating is posted
    response = _rate(client, site.widget, qa, **body)
    # Then it is refused naming the field
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == field


def test_ratings_are_counted_in_analytics_and_the_report(
    client: TestClient, site: Site, web_container: Container
) -> None:
    # Given three answers: two rated down (one by two keys), one rated up
    answers = [_ask(client, site, site.widget, f"question {i}")["question_answer_id"] for i in range(3)]
    _rate(client, site.widget, answers[0], rating="down")
    _rate(client, site.admin, answers[0], rating="down")
    _rate(client, site.widget, answers[1], rating="down")
    _rate(client, site.widget, answers[2], rating="up")
    # When analytics are read for today
    now = datetime.now(UTC)
    params = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    analytics = client.get(f"/query/v1/projects/{site.project_id}/analytics/", params=params, headers=site.admin)
    # Then the totals and the intervals count every key's rating
    assert analytics.status_code == 200, analytics.text
    body = analytics.json()
    assert body["feedback"] == {"up": 1, "down": 3, "down_rate": 0.75}
    assert sum(i["feedback"]["down"] for i in body["intervals"]) == 3
    # And the rollup equals a recount from the rows
    before = _rows(web_container, "SELECT hour, up, down FROM analytics_feedback_hours WHERE up + down > 0")
    with psycopg.connect(web_container.settings.database_url) as conn:
        conn.execute("SELECT analytics_recount(ARRAY[%s::uuid])", (site.project_id,))
    after = _rows(web_container, "SELECT hour, up, down FROM analytics_feedback_hours WHERE up + down > 0")
    assert before == after and sum(r[2] for r in after) == 3
    # And the team's daily report shows the ratings
    team = web_container.tenancy.get_project(site.project_id).team_id
    period = reports.last_complete_period("daily", "UTC", now + timedelta(days=1))
    report = reports.build_team_report(web_container.reports, team, period)
    assert "Answer ratings: 1 up, 3 down (75.0% down; previous 0 up, 0 down)" in render_text(report)


def test_feedback_down_is_measured_once_per_answer_and_alert_rules_use_it(
    client: TestClient, site: Site, web_container: Container
) -> None:
    # Given a rule that alerts on every down-rated answer
    rule = client.post(
        f"/query/v1/projects/{site.project_id}/alert-rules/",
        json={"kind": "threshold", "metric": "feedback_down", "operator": ">=", "threshold": 1, "name": "thumbs down"},
        headers=site.admin,
    )
    assert rule.status_code == 201, rule.text
    up, down = (_ask(client, site, site.widget, q)["question_answer_id"] for q in ("first", "second"))
    # When one answer is rated up, the other down (twice, by two keys)
    _rate(client, site.widget, up, rating="up")
    _rate(client, site.widget, down, rating="down")
    _rate(client, site.admin, down, rating="down")
    # Then each answer is measured once: 0 and 1
    values = _rows(
        web_container,
        "SELECT message_id::text, value FROM interaction_metrics WHERE metric = 'feedback_down' ORDER BY value",
    )
    assert values == [(up, 0.0), (down, 1.0)]
    # And the down-rated answer raised the rule's one alert
    alerts = client.get(
        f"/query/v1/projects/{site.project_id}/alerts/", params={"metric": "feedback_down"}, headers=site.admin
    ).json()["results"]
    assert [(a["rule_name"], a["message_id"]) for a in alerts] == [("thumbs down", down)]
    # And the metrics listing reports the down-rate as the mean
    metrics = client.get(f"/query/v1/projects/{site.project_id}/metrics/", headers=site.admin).json()["results"]
    feedback = next(m for m in metrics if m["metric"] == "feedback_down")
    assert feedback["count"] == 2 and feedback["mean"] == pytest.approx(0.5)


def test_deleting_a_thread_takes_its_ratings_out_of_the_counts(
    client: TestClient, site: Site, web_container: Container
) -> None:
    # Given a rated answer
    answer = _ask(client, site, site.widget)
    _rate(client, site.widget, answer["question_answer_id"], rating="down", comment="wrong")
    # When its thread is deleted
    deleted = client.delete(f"/query/v1/threads/{answer['thread_id']}/", headers=site.admin)
    # Then the rating goes with it and the rollup counts nothing
    assert deleted.status_code == 204
    assert _rows(web_container, "SELECT count(*) FROM answer_feedback") == [(0,)]
    rollup = _rows(web_container, "SELECT coalesce(sum(up), 0), coalesce(sum(down), 0) FROM analytics_feedback_hours")
    assert rollup == [(0, 0)]
