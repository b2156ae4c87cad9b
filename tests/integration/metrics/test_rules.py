"""Alert rules through the API: defaults, CRUD, validation and tenant isolation."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.app import ProjectKey
from threadline.bootstrap import Container
from threadline.domain.alerts import DEFAULT_RULES


def _url(project: ProjectKey, rule_id: str | None = None) -> str:
    base = f"/query/v1/projects/{project.id}/alert-rules/"
    return f"{base}{rule_id}/" if rule_id else base


@pytest.mark.integration
def test_new_project_starts_with_the_default_rules(
    app_container: Container, make_project: Callable[..., ProjectKey]
) -> None:
    # Given a project created through tenancy
    project = make_project("fresh")
    # Then the default rules are already stored, before anything reads them
    with psycopg.connect(app_container.settings.database_url) as conn:
        rows = conn.execute(
            "SELECT kind, metric FROM alert_rules WHERE project_id = %s ORDER BY created_at, id", (project.id,)
        ).fetchall()
    assert sorted(rows) == sorted((r.kind, r.metric) for r in DEFAULT_RULES)


@pytest.mark.integration
def test_existing_project_gets_defaults_lazily_once(
    api: TestClient, app_container: Container, make_project: Callable[..., ProjectKey]
) -> None:
    # Given a project from before alerting existed (no rules, no record of defaults)
    project = make_project("old")
    with psycopg.connect(app_container.settings.database_url) as conn:
        conn.execute("DELETE FROM alert_rules WHERE project_id = %s", (project.id,))
        conn.execute("DELETE FROM alert_rule_defaults WHERE project_id = %s", (project.id,))
    # When its rules are listed
    listed = api.get(_url(project), headers=project.headers)
    # Then it has the defaults
    assert listed.status_code == 200 and len(listed.json()["results"]) == len(DEFAULT_RULES)
    # And when the owner deletes them all, they do not come back
    for rule in listed.json()["results"]:
        assert api.delete(_url(project, rule["id"]), headers=project.headers).status_code == 204
    assert api.get(_url(project), headers=project.headers).json() == {"results": [], "next_cursor": None}


@pytest.mark.integration
def test_rule_crud(api: TestClient, make_project: Callable[..., ProjectKey]) -> None:
    # Given a project
    project = make_project("crud")
    # When a threshold rule is created, read, changed into an outlier rule, and deleted
    created = api.post(
        _url(project),
        json={"kind": "threshold", "metric": "latency_ms", "operator": ">=", "threshold": 750},
        headers=project.headers,
    )
    rule_id = created.json()["id"]
    read = api.get(_url(project, rule_id), headers=project.headers)
    patched = api.patch(_url(project, rule_id), json={"kind": "outlier", "stddevs": 3}, headers=project.headers)
    disabled = api.patch(_url(project, rule_id), json={"enabled": False, "name": "slow"}, headers=project.headers)
    deleted = api.delete(_url(project, rule_id), headers=project.headers)
    gone = api.get(_url(project, rule_id), headers=project.headers)
    # Then each step answers as it should
    assert created.status_code == 201 and created.json()["name"] == "latency_ms >= 750"
    assert read.json() == created.json()
    assert patched.status_code == 200
    assert {k: patched.json()[k] for k in ("kind", "operator", "threshold", "stddevs")} == {
        "kind": "outlier",
        "operator": None,
        "threshold": None,
        "stddevs": 3.0,
    }
    assert disabled.json()["enabled"] is False and disabled.json()["name"] == "slow"
    assert deleted.status_code == 204 and gone.status_code == 404


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "threshold", "metric": "latency_ms", "threshold": 5}, "operator"),
        ({"kind": "threshold", "metric": "made_up", "operator": ">", "threshold": 5}, "metric"),
        ({"kind": "outlier", "metric": "latency_ms", "stddevs": 0}, "stddevs"),
        ({"kind": "outlier", "metric": "latency_ms", "stddevs": 2, "operator": ">"}, "operator"),
        ({"kind": "sometimes", "metric": "latency_ms"}, "kind"),
        ({"kind": "threshold", "metric": "latency_ms", "operator": "!=", "threshold": 5}, "operator"),
        ({"kind": "outlier", "metric": "latency_ms", "stddevs": 2, "min_samples": 1}, "min_samples"),
        ({"kind": "outlier", "metric": "latency_ms", "stddevs": 2, "surprise": True}, "surprise"),
    ],
)
def test_invalid_rules_are_422_naming_the_field(
    api: TestClient, make_project: Callable[..., ProjectKey], body: dict[str, object], field: str
) -> None:
    project = make_project("invalid")
    response = api.post(_url(project), json=body, headers=project.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["details"]["field"] == field
    assert field in [e["field"] for e in error["details"]["errors"]]


@pytest.mark.integration
def test_patch_that_breaks_a_rule_is_422_and_changes_nothing(
    api: TestClient, make_project: Callable[..., ProjectKey]
) -> None:
    # Given a threshold rule
    project = make_project("patch")
    rule = api.post(
        _url(project),
        json={"kind": "threshold", "metric": "answer_length", "operator": "<", "threshold": 5},
        headers=project.headers,
    ).json()
    # When a PATCH would leave it without an operator, Then it is refused and the rule is unchanged
    response = api.patch(_url(project, rule["id"]), json={"stddevs": 2}, headers=project.headers)
    assert response.status_code == 422 and response.json()["error"]["details"]["field"] == "stddevs"
    assert api.get(_url(project, rule["id"]), headers=project.headers).json() == rule


@pytest.mark.integration
@pytest.mark.parametrize("body", [{}, {"bogus": 1}, {"name": None, "enabled": None}])
def test_patch_with_nothing_to_change_is_422_and_keeps_updated_at(
    api: TestClient, make_project: Callable[..., ProjectKey], body: dict[str, object]
) -> None:
    # Given a rule
    project = make_project("empty-patch")
    rule = api.get(_url(project), headers=project.headers).json()["results"][0]
    # When it is patched with nothing (or only an unknown field)
    response = api.patch(_url(project, rule["id"]), json=body, headers=project.headers)
    # Then it is a 422 and the rule, its updated_at included, is as it was
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"
    assert api.get(_url(project, rule["id"]), headers=project.headers).json() == rule


@pytest.mark.integration
def test_rules_of_another_project_are_404(api: TestClient, make_project: Callable[..., ProjectKey]) -> None:
    # Given two projects
    a, b = make_project("A"), make_project("B")
    rule_of_a = api.get(_url(a), headers=a.headers).json()["results"][0]["id"]
    # When B's key reaches for A's rules, through A's URL or its own
    through_a = api.get(_url(a), headers=b.headers)
    through_b = [
        api.get(_url(b, rule_of_a), headers=b.headers),
        api.patch(_url(b, rule_of_a), json={"enabled": False}, headers=b.headers),
        api.delete(_url(b, rule_of_a), headers=b.headers),
    ]
    # Then all are 404 and A's rule is untouched
    assert through_a.status_code == 404 and [r.status_code for r in through_b] == [404, 404, 404]
    assert api.get(_url(a, rule_of_a), headers=a.headers).json()["enabled"] is True
