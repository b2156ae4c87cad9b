"""Category CRUD per project, customised projects, and what deleting a category does to its threads."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.app import ProjectKey
from tests.integration.labelling.conftest import SeedThreads
from tests.integration.labelling.support import category_ids, drain, thread_label
from threadline.bootstrap import Container
from threadline.domain.classification import ClassifyRequest, classify_messages

Make = Callable[[str], ProjectKey]


def _url(project: ProjectKey, category_id: object | None = None) -> str:
    base = f"/query/v1/projects/{project.id}/categories/"
    return f"{base}{category_id}/" if category_id else base


@pytest.mark.integration
def test_crud_round_trip(client: TestClient, make_project: Make) -> None:
    # Given a new project, which starts with the two defaults
    project = make_project("crud")
    assert set(category_ids(client, project)) == {"Discovery", "Troubleshooting"}
    # When a category is created, read, renamed and given examples
    created = client.post(
        _url(project),
        json={"name": "Billing", "description": "Invoices and payments", "examples": ["Refund?"]},
        headers=project.headers,
    )
    assert created.status_code == 201
    category_id = created.json()["id"]
    read = client.get(_url(project, category_id), headers=project.headers)
    patched = client.patch(
        _url(project, category_id),
        json={"name": "Billing & plans", "examples": ["Refund?", "Upgrade?"]},
        headers=project.headers,
    )
    # Then each step shows the stored state, and unchanged fields are kept
    assert read.json()["name"] == "Billing" and read.json()["examples"] == ["Refund?"]
    assert patched.status_code == 200
    assert patched.json()["name"] == "Billing & plans" and patched.json()["description"] == "Invoices and payments"
    assert patched.json()["examples"] == ["Refund?", "Upgrade?"]
    assert patched.json()["updated_at"] > read.json()["updated_at"]
    # When it is deleted, Then it is gone
    assert client.delete(_url(project, category_id), headers=project.headers).status_code == 200
    assert client.get(_url(project, category_id), headers=project.headers).status_code == 404


@pytest.mark.integration
@pytest.mark.parametrize("name", ["discovery", "DISCOVERY", "  Discovery  "])
def test_names_are_unique_per_project_case_insensitively(client: TestClient, make_project: Make, name: str) -> None:
    # Given a project with "Discovery" and another project
    project, other = make_project("dup"), make_project("other")
    # When the same name in another case is created in the project, and in the other project
    same = client.post(_url(project), json={"name": name}, headers=project.headers)
    # Then it is a 409 with a JSON error in the project, and a rename onto it too
    assert same.status_code == 409 and same.json()["error"]["code"] == "conflict"
    billing = client.post(_url(project), json={"name": "Billing"}, headers=project.headers).json()
    renamed = client.patch(_url(project, billing["id"]), json={"name": name}, headers=project.headers)
    assert renamed.status_code == 409
    # And the name is still free in another project
    assert client.post(_url(other), json={"name": "Billing"}, headers=other.headers).status_code == 201


@pytest.mark.integration
@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 101},
        {"name": "ok", "description": "d" * 1001},
        {"name": "ok", "examples": ["q"] * 21},
        {"name": "ok", "examples": ["q" * 501]},
        {"name": "ok", "examples": [""]},
        {"name": "   "},
    ],
)
def test_sizes_are_validated(client: TestClient, make_project: Make, body: dict[str, object]) -> None:
    project = make_project("sizes")
    response = client.post(_url(project), json=body, headers=project.headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"


@pytest.mark.integration
@pytest.mark.parametrize("body", [{}, {"name": None}, {"bogus": 1}, {"name": "Billing", "colour": "red"}])
def test_patch_with_nothing_to_change_or_unknown_fields_is_422(
    client: TestClient, make_project: Make, body: dict[str, object]
) -> None:
    # Given a category
    project = make_project("empty-patch")
    category = client.post(_url(project), json={"name": "Billing"}, headers=project.headers).json()
    # When a PATCH brings nothing to change, or a field the API does not know
    response = client.patch(_url(project, category["id"]), json=body, headers=project.headers)
    # Then it is a 422 (naming the unknown field, if any) and the category, updated_at included, is unchanged
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_input"
    unknown = set(body) - {"name", "description", "examples"}
    if unknown:
        assert response.json()["error"]["details"]["field"] in unknown
    assert client.get(_url(project, category["id"]), headers=project.headers).json() == category


@pytest.mark.integration
def test_categories_page_like_every_list(client: TestClient, make_project: Make) -> None:
    # Given a project with its two default categories and three more
    project = make_project("pages")
    for name in ("A", "B", "C"):
        assert client.post(_url(project), json={"name": name}, headers=project.headers).status_code == 201
    everything = client.get(_url(project), headers=project.headers).json()
    # When they are read two at a time
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(_url(project), params=params, headers=project.headers).json()
        seen += [c["name"] for c in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then the pages hold all five, oldest first, like the single page
    assert everything["next_cursor"] is None and len(everything["results"]) == 5
    assert seen == [c["name"] for c in everything["results"]]


@pytest.mark.integration
def test_another_projects_category_is_not_found(client: TestClient, make_project: Make) -> None:
    # Given two projects
    project, other = make_project("mine"), make_project("theirs")
    theirs = category_ids(client, other)["Discovery"]
    # When the first reaches for the second's category through its own project, or the other project's URL
    through_own = client.get(_url(project, theirs), headers=project.headers)
    through_theirs = client.delete(_url(other, theirs), headers=project.headers)
    # Then both are 404, and nothing was deleted
    assert through_own.status_code == through_theirs.status_code == 404
    assert "Discovery" in category_ids(client, other)


CUSTOMISED = {
    "A": {"keep": ["Discovery", "Troubleshooting"], "add": []},
    "B": {
        "keep": ["Discovery", "Troubleshooting"],
        "add": [
            (
                "Careers",
                "Jobs at the company: open positions, applying, interviews, internships.",
                ["Are you hiring?", "How do I apply for the engineering job?"],
            ),
            (
                "Legal",
                "Contracts, terms of service, privacy policy, GDPR, data processing agreements.",
                ["Where is your DPA?", "Are you GDPR compliant?"],
            ),
        ],
    },
    "C": {
        "keep": ["Troubleshooting"],
        "add": [
            (
                "Coding",
                "Writing code: programming questions, snippets, APIs, SDK usage in a language.",
                ["How do I write a loop in Python?", "Show me how to call the API from JavaScript"],
            ),
        ],
    },
}
QUESTIONS = {
    "A": [("How do I set up my account?", "Discovery"), ("The app crashes when I open it", "Troubleshooting")],
    "B": [
        ("Do you have any open positions for data engineers?", "Careers"),
        ("Can you send me your data processing agreement for GDPR?", "Legal"),
        ("The app crashes when I open it", "Troubleshooting"),
    ],
    "C": [
        ("How do I write a function in Python that reverses a string?", "Coding"),
        ("The app crashes when I open it", "Troubleshooting"),
    ],
}


def _customise(client: TestClient, project: ProjectKey, team: str) -> None:
    plan = CUSTOMISED[team]
    for name, category_id in category_ids(client, project).items():
        if name not in plan["keep"]:
            assert client.delete(_url(project, category_id), headers=project.headers).status_code == 200
    for name, description, examples in plan["add"]:
        body = {"name": name, "description": description, "examples": examples}
        assert client.post(_url(project), json=body, headers=project.headers).status_code == 201


@pytest.mark.integration
@pytest.mark.parametrize("team", ["A", "B", "C"])
def test_customised_projects_are_classified_with_their_own_categories(
    client: TestClient, container: Container, make_project: Make, seed_threads: SeedThreads, team: str
) -> None:
    # Given team A keeping the defaults, B adding Careers and Legal, C replacing Discovery with Coding
    project = make_project(f"team {team}")
    _customise(client, project, team)
    expected_names = sorted(CUSTOMISED[team]["keep"] + [a[0] for a in CUSTOMISED[team]["add"]])
    assert sorted(category_ids(client, project)) == expected_names
    # And threads whose first questions fit those categories
    threads = seed_threads(project.id, [q for q, _ in QUESTIONS[team]])
    # When the classifier worker processes their messages
    messages = [(str(t), ClassifyRequest(project.id, t)) for t in threads]
    outcome = classify_messages(container.labels, container.classifier, messages)
    # Then each thread carries its project's category, labelled automatically
    names = {v: k for k, v in category_ids(client, project).items()}
    labels = [thread_label(container.settings.database_url, t) for t in threads]
    assert outcome.labelled == len(threads)
    assert [(names[c], s) for c, s in labels if c] == [(n, "auto") for _, n in QUESTIONS[team]]


@pytest.mark.integration
def test_deleting_a_category_clears_its_threads_and_queues_them(
    client: TestClient, container: Container, make_project: Make, seed_threads: SeedThreads, classify_queue: str
) -> None:
    # Given threads labelled Discovery automatically, one corrected to Discovery by a user, one Troubleshooting
    project = make_project("delete")
    ids = category_ids(client, project)
    auto_a, auto_b, by_user, other = seed_threads(project.id, ["How do I start?", "Export?", "Hm?", "Error 500"])
    messages = [(str(t), ClassifyRequest(project.id, t)) for t in (auto_a, auto_b, other)]
    classify_messages(container.labels, container.classifier, messages)
    client.patch(f"/query/v1/threads/{by_user}/", json={"category_id": str(ids["Discovery"])}, headers=project.headers)
    db = container.settings.database_url
    assert [thread_label(db, t)[0] for t in (auto_a, auto_b, by_user)] == [ids["Discovery"]] * 3
    assert thread_label(db, other)[0] == ids["Troubleshooting"]
    # When Discovery is deleted
    response = client.delete(_url(project, ids["Discovery"]), headers=project.headers)
    # Then its three threads are unlabelled (user label included) and queued, and the other keeps its label
    assert response.status_code == 200
    assert response.json()["threads_cleared"] == 3 and response.json()["threads_queued"] == 3
    assert [thread_label(db, t) for t in (auto_a, auto_b, by_user)] == [(None, None)] * 3
    assert thread_label(db, other) == (ids["Troubleshooting"], "auto")
    queued = drain(container.settings.aws_endpoint_url, classify_queue)
    assert sorted(m["thread_id"] for m in queued) == sorted(str(t) for t in (auto_a, auto_b, by_user))
    assert {m["kind"] for m in queued} == {"classify_thread"} and {m["project_id"] for m in queued} == {str(project.id)}
    # And relabelling them uses the remaining category only
    relabel = [(str(i), ClassifyRequest(project.id, i)) for i in (auto_a, auto_b, by_user)]
    classify_messages(container.labels, container.classifier, relabel)
    assert [thread_label(db, t) for t in (auto_a, auto_b, by_user)] == [(ids["Troubleshooting"], "auto")] * 3
