"""User corrections: a user label outranks every automatic path, enforced by the SQL guard (race included)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.fixtures.app import ProjectKey
from tests.integration.labelling.conftest import SeedThreads
from tests.integration.labelling.support import category_ids, drain, thread_label
from threadline.bootstrap import Container
from threadline.domain.classification import ClassifyRequest, classify_messages
from threadline.domain.ports import LabelDecision

Make = Callable[[str], ProjectKey]


@pytest.mark.integration
def test_patch_sets_a_user_label(client: TestClient, make_project: Make, seed_threads: SeedThreads) -> None:
    # Given a thread
    project = make_project("patch")
    ids = category_ids(client, project)
    (thread,) = seed_threads(project.id, ["How do I invite a colleague?"])
    # When the user labels it Troubleshooting
    response = client.patch(
        f"/query/v1/threads/{thread}/", json={"category_id": str(ids["Troubleshooting"])}, headers=project.headers
    )
    # Then the thread shows the user's label
    body = response.json()
    assert response.status_code == 200
    assert body["category"] == {"id": str(ids["Troubleshooting"]), "name": "Troubleshooting"}
    assert body["label_source"] == "user" and body["labelled_at"] is not None


@pytest.mark.integration
def test_patch_rejects_foreign_categories_and_threads(
    client: TestClient, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given two projects with a thread each
    project, other = make_project("one"), make_project("two")
    (mine,) = seed_threads(project.id, ["q"])
    (theirs,) = seed_threads(other.id, ["q"])
    foreign_category = category_ids(client, other)["Discovery"]
    own_category = category_ids(client, project)["Discovery"]
    # When a category of the other project, or an unknown one, is set; or the other project's thread is touched
    foreign = client.patch(
        f"/query/v1/threads/{mine}/", json={"category_id": str(foreign_category)}, headers=project.headers
    )
    unknown = client.patch(f"/query/v1/threads/{mine}/", json={"category_id": str(uuid4())}, headers=project.headers)
    cross = client.patch(
        f"/query/v1/threads/{theirs}/", json={"category_id": str(own_category)}, headers=project.headers
    )
    missing = client.patch(f"/query/v1/threads/{uuid4()}/", json={"category_id": None}, headers=project.headers)
    # Then categories outside the project are 422, threads outside it 404, all with JSON errors
    assert foreign.status_code == unknown.status_code == 422
    assert foreign.json()["error"]["code"] == "invalid_input"
    assert cross.status_code == missing.status_code == 404 and cross.json() == missing.json()
    assert client.patch(f"/query/v1/threads/{mine}/", json={}, headers=project.headers).status_code == 422
    bogus = client.patch(f"/query/v1/threads/{mine}/", json={"category_id": None, "bogus": 1}, headers=project.headers)
    assert bogus.status_code == 422 and bogus.json()["error"]["details"]["field"] == "bogus"


@pytest.mark.integration
def test_get_thread_shows_the_label_patch_returns(
    client: TestClient, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given a thread the user labelled
    project = make_project("get-label")
    ids = category_ids(client, project)
    (thread,) = seed_threads(project.id, ["Where is my invoice?"])
    patched = client.patch(
        f"/query/v1/threads/{thread}/", json={"category_id": str(ids["Discovery"])}, headers=project.headers
    ).json()
    # When the thread is read
    read = client.get(f"/query/v1/threads/{thread}/", headers=project.headers)
    # Then it carries the same label fields as the PATCH answer
    assert read.status_code == 200
    fields = ("category", "label_source", "label_confidence", "label_model", "labelled_at")
    assert {f: read.json()[f] for f in fields} == {f: patched[f] for f in fields}
    assert read.json()["category"] == {"id": str(ids["Discovery"]), "name": "Discovery"}


@pytest.mark.integration
def test_null_hands_the_thread_back_to_the_classifier(
    client: TestClient, container: Container, make_project: Make, seed_threads: SeedThreads, classify_queue: str
) -> None:
    # Given a thread the user labelled
    project = make_project("handback")
    ids = category_ids(client, project)
    (thread,) = seed_threads(project.id, ["The export fails with an error"])
    url = f"/query/v1/threads/{thread}/"
    client.patch(url, json={"category_id": str(ids["Discovery"])}, headers=project.headers)
    # When the user hands it back
    response = client.patch(url, json={"category_id": None}, headers=project.headers)
    # Then the label is cleared and a classify message is queued
    assert response.status_code == 200 and response.json()["category"] is None
    assert response.json()["label_source"] is None
    queued = drain(container.settings.aws_endpoint_url, classify_queue)
    assert queued == [{"kind": "classify_thread", "project_id": str(project.id), "thread_id": str(thread)}]
    # And the classifier labels it automatically again
    classify_messages(container.labels, container.classifier, [("m", ClassifyRequest(project.id, thread))])
    assert thread_label(container.settings.database_url, thread) == (ids["Troubleshooting"], "auto")


@pytest.mark.integration
def test_classifier_finishing_after_a_correction_leaves_the_user_label(
    client: TestClient, container: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given the classifier has computed a label for an unlabelled thread
    project = make_project("race")
    ids = category_ids(client, project)
    (thread,) = seed_threads(project.id, ["How do I get started?"])
    decisions = container.classifier.classify(project.id, [(thread, "How do I get started?")])
    assert decisions[0].category_id == ids["Discovery"]
    # When the user corrects it before the classifier's write lands
    client.patch(
        f"/query/v1/threads/{thread}/", json={"category_id": str(ids["Troubleshooting"])}, headers=project.headers
    )
    applied = container.labels.apply_auto_labels(project.id, decisions)
    # Then the write changes nothing and the user's label stays
    assert applied == []
    assert thread_label(container.settings.database_url, thread) == (ids["Troubleshooting"], "user")


@pytest.mark.integration
def test_concurrent_correction_wins_over_a_blocked_classifier_write(
    client: TestClient, container: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given the user's correction is in an open transaction holding the thread's row lock
    project = make_project("lock race")
    ids = category_ids(client, project)
    (thread,) = seed_threads(project.id, ["How do I get started?"])
    decisions = container.classifier.classify(project.id, [(thread, "How do I get started?")])
    user = psycopg.connect(container.settings.database_url)
    user.execute(
        "UPDATE threads SET category_id = %s, label_source = 'user', labelled_at = now() WHERE id = %s",
        (ids["Troubleshooting"], thread),
    )
    # When the classifier writes meanwhile (it blocks on the lock), and the user's transaction commits
    result: list[object] = []
    writer = threading.Thread(target=lambda: result.append(container.labels.apply_auto_labels(project.id, decisions)))
    writer.start()
    writer.join(timeout=1.0)
    blocked = writer.is_alive()
    user.commit()
    user.close()
    writer.join(timeout=10)
    # Then the classifier waited, re-checked its WHERE on the committed row, and left the user's label
    assert blocked and result == [[]]
    assert thread_label(container.settings.database_url, thread) == (ids["Troubleshooting"], "user")


@pytest.mark.integration
def test_concurrent_bulk_label_writes_over_the_same_threads_do_not_deadlock(
    container: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given threads that several classifier batches label at once, each listing them in its own order
    project = make_project("bulk race")
    threads = seed_threads(project.id, [f"Question {i}" for i in range(60)])
    categories = [c.id for c in container.categories.list_categories(project.id)]

    def label(worker: int) -> None:
        rng = random.Random(worker)
        for _ in range(25):
            picked = rng.sample(threads, 40)
            decisions = [LabelDecision(t, rng.choice(categories), 0.5, "test") for t in picked]
            container.labels.apply_auto_labels(project.id, decisions)

    # When eight writers run together (each update moves rows on the heap, so scan orders keep changing)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = [pool.submit(label, w) for w in range(8)]
    # Then none of them failed, a deadlock included
    assert [f.exception() for f in outcomes] == [None] * 8
