"""The LLM classifier (openai SDK, structured output) against a real local chat-completions server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest

from tests.fixtures.app import ProjectKey
from tests.integration.labelling.conftest import SeedThreads
from tests.integration.labelling.support import thread_label
from threadline.bootstrap import Container
from threadline.domain.classification import LLM_PRECEDENTS, ClassifyRequest, classify_messages
from threadline.local.openai_stub import OpenAIStub, Reply
from threadline.local.serving import BackgroundServer
from threadline.settings import Settings

Make = Callable[[str], ProjectKey]


@pytest.fixture
def llm(settings: Settings) -> Iterator[OpenAIStub]:
    """The project's OpenAI-compatible stub on a real HTTP server, configured as the test's LLM."""
    stub = OpenAIStub()
    with BackgroundServer(stub.app) as server:
        settings.openai_base_url = f"{server.url}/v1"
        settings.openai_api_key = "test-key"
        settings.llm_model = "classifier-model"
        yield stub


def _answer(category_id: object, confidence: float = 0.8) -> Reply:
    return Reply(text=json.dumps({"category_id": str(category_id), "confidence": confidence}))


@pytest.mark.integration
def test_llm_as_primary_decides_with_a_schema_of_the_project_ids(
    llm: OpenAIStub, settings: Settings, container: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given the LLM as primary classifier, answering Troubleshooting
    settings.classifier = "llm"
    project = make_project("llm primary")
    ids = {c.name: c.id for c in container.categories.list_categories(project.id)}
    (thread,) = seed_threads(project.id, ["How do I get started?"])
    llm.script(_answer(ids["Troubleshooting"], 0.7))
    # When the worker classifies the thread
    classify_messages(container.labels, container.classifier, [("m", ClassifyRequest(project.id, thread))])
    # Then the LLM's verdict is stored under its model's name
    assert thread_label(settings.database_url, thread) == (ids["Troubleshooting"], "auto")
    assert container.labels.get_thread(project.id, thread).label_model == "llm:classifier-model"
    # And it was asked with a strict JSON schema whose enum is exactly the project's category ids
    (request,) = llm.requests
    schema = request["response_format"]["json_schema"]["schema"]
    assert request["model"] == "classifier-model" and request["response_format"]["type"] == "json_schema"
    assert sorted(schema["properties"]["category_id"]["enum"]) == sorted(str(i) for i in ids.values())
    assert "How do I get started?" in request["messages"][-1]["content"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("margin", "asked"),
    [(0.0, 0), (1.0, 2)],
)
def test_llm_as_fallback_is_asked_only_below_the_margin(
    llm: OpenAIStub, settings: Settings, container: Container, make_project: Make, margin: float, asked: int
) -> None:
    # Given the embedding classifier with the LLM as fallback, and a margin no question / every question is under
    settings.classifier_margin = margin
    project = make_project(f"fallback {margin}")
    discovery = {c.name: c.id for c in container.categories.list_categories(project.id)}["Discovery"]
    llm.default = _answer(discovery, 0.9)
    # When two questions are classified
    decisions = container.classifier.classify(project.id, [(uuid4(), "Crash on login"), (uuid4(), "Export?")])
    # Then the LLM was asked for each question under the margin, and decided those
    assert len(llm.requests) == asked
    assert all(d.model.startswith("llm:" if asked else "embedding:") for d in decisions)


@pytest.mark.integration
@pytest.mark.parametrize(
    "reply",
    [
        _answer(uuid4()),  # a category of no project
        Reply(text='{"category_id": "Troubleshooting", "confidence": 0.9}'),  # a name, not an id
        Reply(text='{"category_id": "%s", "confidence": 7}'),  # confidence out of range
        Reply(text="I think it is Troubleshooting"),  # not JSON
        Reply(status=500),  # the server fails
    ],
)
def test_invalid_llm_answers_leave_the_embedding_verdict(
    llm: OpenAIStub, settings: Settings, container: Container, make_project: Make, reply: Reply
) -> None:
    # Given the LLM as primary, answering something unusable
    settings.classifier = "llm"
    project = make_project("invalid llm")
    ids = {c.name: c.id for c in container.categories.list_categories(project.id)}
    llm.default = Reply(text=reply.text.replace("%s", str(ids["Discovery"])), status=reply.status)
    # When a clear troubleshooting question is classified
    (decision,) = container.classifier.classify(project.id, [(uuid4(), "The upload fails with error 500")])
    # Then the embedding classifier's verdict stands
    assert decision.category_id == ids["Troubleshooting"] and decision.model.startswith("embedding:")
    assert llm.requests


@pytest.mark.integration
def test_the_llm_is_shown_its_own_teams_nearest_corrections(
    llm: OpenAIStub, settings: Settings, container: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given the LLM as primary, a project whose team filed seat questions under Troubleshooting and an unrelated
    # question under Discovery, and another project whose team labelled a seat question too
    settings.classifier = "llm"
    project, other = make_project("llm precedents"), make_project("llm precedents, other team")
    ids = {c.name: c.id for c in container.categories.list_categories(project.id)}
    other_ids = {c.name: c.id for c in container.categories.list_categories(other.id)}
    seats = [f"Where do I see how many seats we use? ({n})" for n in range(LLM_PRECEDENTS + 2)]
    labelled = [*seats, "Can I pay by bank transfer?"]
    for thread, question in zip(seed_threads(project.id, labelled), labelled, strict=True):
        name = "Discovery" if question.startswith("Can I pay") else "Troubleshooting"
        container.labels.set_user_label(project.id, thread, ids[name])
    (theirs,) = seed_threads(other.id, ["How many seats are in use in our workspace?"])
    container.labels.set_user_label(other.id, theirs, other_ids["Discovery"])
    llm.default = _answer(ids["Troubleshooting"], 0.9)
    # When a seat question is classified, and the same question in a project without corrections
    (decision,) = container.classifier.classify(project.id, [(uuid4(), "How many seats does my workspace use?")])
    container.classifier.classify(make_project("no corrections").id, [(uuid4(), "How many seats are used?")])
    # Then the LLM decided, shown LLM_PRECEDENTS of this team's labels, the seat questions (the nearest) with
    # their category; the unrelated question and the other team's label were not shown
    assert decision.category_id == ids["Troubleshooting"] and decision.model == "llm:classifier-model"
    first, second = (json.loads(r["messages"][-1]["content"]) for r in llm.requests)
    shown = first["labelled_by_this_team"]
    assert len(shown) == LLM_PRECEDENTS
    assert {p["question"] for p in shown} < set(seats)
    assert {p["category_id"] for p in shown} == {str(ids["Troubleshooting"])}
    assert first["question"] == "How many seats does my workspace use?"
    # And a project with no corrections sends none
    assert "labelled_by_this_team" not in second


# llama.cpp's Python server (0.3.36) answers a json_schema response_format with a 500 saying this; the real server is
# tested in test_llm_server.py (make test-slow), this stub replays its answer in make test.
_NO_JSON_SCHEMA = (
    "1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}"
)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("refusals", "expected"),
    [
        # A 5xx is retried once by the SDK (max_retries=1), refused again, then asked as a JSON object
        ((Reply(status=500, error=_NO_JSON_SCHEMA),) * 2, ["json_schema", "json_schema", "json_object", "json_object"]),
        # Any other error leaves that question to the embedding, and the next is asked with the schema again
        ((Reply(status=400, error="This model's maximum context length is 4096 tokens"),), ["json_schema"] * 2),
    ],
)
def test_a_server_refusing_json_schema_is_asked_for_a_json_object_from_then_on(
    llm: OpenAIStub,
    settings: Settings,
    container: Container,
    make_project: Make,
    refusals: tuple[Reply, ...],
    expected: list[str],
) -> None:
    # Given the LLM as primary, its server refusing the first request, then answering Discovery
    settings.classifier = "llm"
    project = make_project(f"no json_schema {len(expected)}")
    ids = {c.name: c.id for c in container.categories.list_categories(project.id)}
    llm.script(*refusals)
    llm.default = _answer(ids["Discovery"])
    # When two questions are classified
    decisions = container.classifier.classify(project.id, [(uuid4(), "Export?"), (uuid4(), "Import?")])
    # Then the requests' formats are as expected; a JSON object carries the same schema, and the LLM decided each
    # question it answered
    assert [r["response_format"]["type"] for r in llm.requests] == expected
    for request in llm.requests:
        if request["response_format"]["type"] == "json_object":
            enum = request["response_format"]["schema"]["properties"]["category_id"]["enum"]
            assert sorted(enum) == sorted(str(i) for i in ids.values())
    deciders = ["llm", "llm"] if "json_object" in expected else ["embedding", "llm"]
    assert [d.model.split(":")[0] for d in decisions] == deciders
