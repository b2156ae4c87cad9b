"""Report settings over the API (any project key of the team) and through `threadline admin`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.integration.reports.conftest import Data
from threadline import cli
from threadline.bootstrap import Container
from threadline.domain.errors import InvalidInput
from threadline.domain.reports import ReportSettings

URL = "/query/v1/team/report-settings/"


@pytest.mark.integration
def test_any_project_key_of_the_team_reads_and_writes_the_same_settings(client: TestClient, data: Data) -> None:
    # Given two projects of one team and a project of another team
    a = data.project("Acme", "A")
    b = data.project(project_name="B", team_id=a.team_id)
    stranger = data.project("Globex", "G")
    # When A's key sets the settings
    body = {
        "recipients": ["Ops@Example.com", "ops@example.com", "cto@example.org"],
        "cadence": "monthly",
        "timezone": "Europe/Paris",
        "enabled": True,
    }
    put = client.put(URL, json=body, headers={"X-API-KEY": a.key})
    # Then B's key reads them back (addresses normalised and de-duplicated), the other team sees its defaults
    assert put.status_code == 200, put.text
    read = client.get(URL, headers={"X-API-KEY": b.key}).json()
    assert read["team_id"] == str(a.team_id)
    assert read["recipients"] == ["Ops@example.com", "cto@example.org"]
    assert (read["cadence"], read["timezone"], read["enabled"]) == ("monthly", "Europe/Paris", True)
    theirs = client.get(URL, headers={"X-API-KEY": stranger.key}).json()
    assert theirs["team_id"] == str(stranger.team_id) and theirs["enabled"] is False and theirs["recipients"] == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipients": ["not-an-address"]}, "recipients"),
        ({"recipients": ["ops@example.com", "two@@example.com"]}, "recipients"),
        ({"recipients": ["ops@example.com"], "timezone": "Europe/Atlantis"}, "timezone"),
        ({"recipients": ["ops@example.com"], "timezone": "/etc/localtime"}, "timezone"),
        ({"recipients": ["ops@example.com"], "cadence": "hourly"}, "cadence"),
        ({"recipients": [], "enabled": True}, "recipients"),
    ],
)
def test_invalid_settings_are_a_clear_422(client: TestClient, data: Data, body: dict[str, object], field: str) -> None:
    # Given a team with valid settings
    p = data.project()
    client.put(URL, json={"recipients": ["ops@example.com"]}, headers={"X-API-KEY": p.key})
    # When an invalid update is sent
    response = client.put(URL, json=body, headers={"X-API-KEY": p.key})
    # Then it is refused with the offending field named, and nothing changed
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["details"]["field"] == field
    assert client.get(URL, headers={"X-API-KEY": p.key}).json()["recipients"] == ["ops@example.com"]


@pytest.mark.integration
def test_bad_address_is_named_in_the_error(client: TestClient, data: Data) -> None:
    p = data.project()
    response = client.put(URL, json={"recipients": ["ok@example.com", "bad@"]}, headers={"X-API-KEY": p.key})
    assert [i["address"] for i in response.json()["error"]["details"]["invalid"]] == ["bad@"]


@pytest.mark.integration
def test_settings_need_a_key(client: TestClient) -> None:
    assert client.get(URL).status_code == 401


@pytest.mark.integration
def test_admin_command_sets_and_shows_settings(container: Container, data: Data) -> None:
    # Given a team
    p = data.project()
    team = str(p.team_id)
    # When an operator sets a recipient and a timezone, then shows the settings
    cli.run(
        ["admin", "report-settings", team, "--recipients", "ops@example.com", "--timezone", "Asia/Tokyo"], container
    )
    shown = cli.run(["admin", "report-settings", team], container)
    # Then setting a recipient turned reports on, with the other defaults kept
    assert shown == ReportSettings(
        p.team_id,
        ("ops@example.com",),
        "weekly",
        "Asia/Tokyo",
        True,
        shown.updated_at,  # type: ignore[attr-defined]
    )
    # And an invalid timezone is refused
    with pytest.raises(InvalidInput):
        cli.run(["admin", "report-settings", team, "--timezone", "Nowhere/Special"], container)
