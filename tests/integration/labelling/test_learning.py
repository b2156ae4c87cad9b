"""Labels learn and explain themselves: corrections steer the next classification of their project only, and
auto labels keep their confidence and runner-up for a review of the doubtful ones first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.integration.labelling.conftest import SeedThreads
from tests.integration.labelling.support import ProjectKey, category_ids, thread_label
from threadline.bootstrap import Container
from threadline.domain.classification import Classifier, ClassifyRequest, classify_messages
from threadline.domain.ports import Embedder, Vectors

Make = Callable[[str], ProjectKey]
pytestmark = pytest.mark.integration

QUESTION = "Where can I see how many seats my workspace uses?"
# Near paraphrases a team filed under Troubleshooting (say, seat counting is broken for them).
CORRECTED = [
    "Where do I see how many seats we use?",
    "How many seats does our workspace use right now?",
    "Where is the seat count of the workspace?",
    "Can I see the number of seats in use?",
    "Which page shows our used seats?",
    "How do I check how many seats are taken?",
    "Where can I find the seats used by my team?",
    "Show me how many seats my workspace has in use",
    "Where do I check seat usage?",
    "How can I see the seats my workspace uses?",
    "Where are used seats listed?",
    "How do I see how many seats are occupied?",
]


class CountingEmbedder:
    """The real embedder, remembering every text it was asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.texts: list[str] = []
        self.dimensions = inner.dimensions
        self.model_name = inner.model_name

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts.extend(texts)
        return self._inner.embed(texts)


def test_corrections_change_the_next_classification_for_that_project_only(
    client: TestClient, container: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given two projects with the default categories and one classifier serving both, prototypes cached
    project, other = make_project("learns"), make_project("untouched")
    ids, other_ids = category_ids(client, project), category_ids(client, other)
    embedder = CountingEmbedder(container.embedder)
    classifier = Classifier(container.categories, embedder, corrections=container.labels)
    before = classifier.classify(project.id, [(uuid4(), QUESTION)])[0]
    other_before = classifier.classify(other.id, [(uuid4(), QUESTION)])[0]
    other_prototypes = classifier.prototypes(other.id)
    assert before.category_id != ids["Troubleshooting"] and other_before.category_id != other_ids["Troubleshooting"]
    # When the team of the first project files paraphrases of the question under Troubleshooting
    threads = seed_threads(project.id, CORRECTED)
    for thread in threads:
        response = client.patch(
            f"/query/v1/threads/{thread}/", json={"category_id": str(ids["Troubleshooting"])}, headers=project.headers
        )
        assert response.status_code == 200
    after = classifier.classify(project.id, [(uuid4(), QUESTION)])[0]
    other_after = classifier.classify(other.id, [(uuid4(), QUESTION)])[0]
    # Then that project's next classification follows its corrections; the other project's does not move
    # and its cached prototypes were not even rebuilt
    assert after.category_id == ids["Troubleshooting"]
    assert other_after.category_id == other_before.category_id
    assert classifier.prototypes(other.id) is other_prototypes
    # And each corrected question was embedded once: a later rebuild (a category edit) reads it back stored
    assert sum(text in CORRECTED for text in embedder.texts) == len(CORRECTED)
    client.patch(
        f"/query/v1/projects/{project.id}/categories/{ids['Discovery']}/",
        json={"description": "How-to questions about features and setup."},
        headers=project.headers,
    )
    assert classifier.classify(project.id, [(uuid4(), QUESTION)])[0].category_id == ids["Troubleshooting"]
    assert sum(text in CORRECTED for text in embedder.texts) == len(CORRECTED)
    # And the corrected threads keep their user labels whatever the classifier runs over them
    classify_messages(container.labels, classifier, [(str(t), ClassifyRequest(project.id, t)) for t in threads])
    assert {thread_label(container.settings.database_url, t) for t in threads} == {(ids["Troubleshooting"], "user")}


def test_a_cleared_correction_stops_counting(
    client: TestClient, container: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given a project whose corrections moved the question to Troubleshooting
    project = make_project("cleared")
    ids = category_ids(client, project)
    classifier = Classifier(container.categories, container.embedder, corrections=container.labels)
    threads = seed_threads(project.id, CORRECTED)
    for thread in threads:
        client.patch(
            f"/query/v1/threads/{thread}/", json={"category_id": str(ids["Troubleshooting"])}, headers=project.headers
        )
    assert classifier.classify(project.id, [(uuid4(), QUESTION)])[0].category_id == ids["Troubleshooting"]
    # When the team clears those labels again
    for thread in threads:
        client.patch(f"/query/v1/threads/{thread}/", json={"category_id": None}, headers=project.headers)
    # Then the cache notices and the question goes back to where the categories alone put it
    assert classifier.classify(project.id, [(uuid4(), QUESTION)])[0].category_id != ids["Troubleshooting"]


def test_auto_labels_keep_a_runner_up_and_the_listing_filters_doubtful_ones(
    client: TestClient, container: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given auto-labelled threads, one clear and some ambiguous, and one user-labelled thread
    project = make_project("doubt")
    ids = category_ids(client, project)
    questions = ["Why was I charged twice this month?", "hello", "it does not work", "question about my account"]
    threads = seed_threads(project.id, questions)
    (corrected,) = seed_threads(project.id, ["refund please"])
    client.patch(
        f"/query/v1/threads/{corrected}/", json={"category_id": str(ids["Troubleshooting"])}, headers=project.headers
    )
    classify_messages(
        container.labels, container.classifier, [(str(t), ClassifyRequest(project.id, t)) for t in threads]
    )
    url = f"/query/v1/projects/{project.id}/threads/"
    everything = client.get(url, headers=project.headers).json()["results"]
    confidences = sorted(t["label_confidence"] for t in everything if t["label_source"] == "auto")
    threshold = (confidences[0] + confidences[-1]) / 2
    # When the team lists the labels below a confidence
    doubtful = client.get(url, params={"label_confidence_below": threshold}, headers=project.headers)
    # Then only auto labels below it come back, each with a runner-up other than its label
    assert doubtful.status_code == 200
    rows = doubtful.json()["results"]
    assert rows and len(rows) < len(threads)
    assert all(r["label_source"] == "auto" and r["label_confidence"] < threshold for r in rows)
    assert all(r["label_runner_up"] and r["label_runner_up"]["id"] != r["category"]["id"] for r in rows)
    assert str(corrected) not in {r["id"] for r in rows}
    # And the thread itself shows its runner-up; the user's label has none
    detail = client.get(f"/query/v1/threads/{rows[0]['id']}/", headers=project.headers).json()
    assert detail["label_runner_up"] == rows[0]["label_runner_up"]
    user = client.get(f"/query/v1/threads/{corrected}/", headers=project.headers).json()
    assert user["label_source"] == "user" and user["label_runner_up"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"label_confidence_below": "0"},
        {"label_confidence_below": "1.5"},
        {"label_confidence_below": "abc"},
        {"label_confidence_below": "0.5", "label_source": "user"},
        {"label_confidence_below": "0.5", "unlabelled": "true"},
    ],
)
def test_bad_confidence_filters_are_422(client: TestClient, make_project: Make, params: dict[str, str]) -> None:
    # Given a project
    project = make_project("bad-filter")
    # When the listing gets an impossible confidence filter
    response = client.get(f"/query/v1/projects/{project.id}/threads/", params=params, headers=project.headers)
    # Then it is a 422 with the one error shape
    assert response.status_code == 422
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_deleting_a_runner_up_category_leaves_the_label_without_one(
    client: TestClient, container: Container, make_project: Make, seed_threads: SeedThreads, database_url: str
) -> None:
    # Given an auto label whose runner-up is a category
    project = make_project("runner-up-deleted")
    (thread,) = seed_threads(project.id, ["Why was I charged twice this month?"])
    classify_messages(container.labels, container.classifier, [("m", ClassifyRequest(project.id, thread))])
    runner_up = client.get(f"/query/v1/threads/{thread}/", headers=project.headers).json()["label_runner_up"]
    # When that category is deleted
    deleted = client.delete(f"/query/v1/projects/{project.id}/categories/{runner_up['id']}/", headers=project.headers)
    # Then the label stays and shows no runner-up
    assert deleted.status_code == 200
    body = client.get(f"/query/v1/threads/{thread}/", headers=project.headers).json()
    assert body["label_source"] == "auto" and body["label_runner_up"] is None
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM threads WHERE id = %s", (thread,)).fetchone() == (1,)
