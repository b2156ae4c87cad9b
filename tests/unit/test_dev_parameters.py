"""`make dev` deploys template.yaml with the language model the environment configures (issue 17)."""

from __future__ import annotations

import pytest

from threadline.local.cloud import TEMPLATE
from threadline.local.dev import template_parameters
from threadline.local.template import translate
from threadline.settings import Settings

pytestmark = pytest.mark.unit


def test_the_environments_model_settings_become_the_stacks_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given OPENAI_BASE_URL, OPENAI_API_KEY and LLM_MODEL in the environment `make dev` starts in
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    monkeypatch.setenv("LLM_MODEL", "llama3")
    monkeypatch.delenv("EMBEDDING_THREADS", raising=False)
    # When the stack's parameters are built from the settings
    parameters = template_parameters(Settings(), "postgresql://db")
    # Then they carry them, under names template.yaml declares (so every function's environment gets them)
    assert parameters == {
        "DatabaseUrl": "postgresql://db",
        "OpenAIBaseUrl": "http://127.0.0.1:9999/v1",
        "OpenAIApiKey": "sk-local",
        "LlmModel": "llama3",
        "EmbeddingThreads": "1",
    }
    declared = translate(TEMPLATE, parameters).cfn["Parameters"]
    assert set(parameters) <= set(declared)


def test_without_a_model_in_the_environment_the_stack_stays_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no language model configured
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "LLM_MODEL", "EMBEDDING_THREADS"):
        monkeypatch.delenv(name, raising=False)
    # When / Then: the template's defaults apply (an empty base URL: the offline answerer)
    assert template_parameters(Settings(), "postgresql://db") == {
        "DatabaseUrl": "postgresql://db",
        "LlmModel": "gpt-4o-mini",
        "EmbeddingThreads": "1",
    }


def test_local_environments_share_the_cores_so_the_model_runs_on_one_thread_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no EMBEDDING_THREADS, then one set by the developer
    monkeypatch.delenv("EMBEDDING_THREADS", raising=False)
    unset = template_parameters(Settings(), "postgresql://db")
    monkeypatch.setenv("EMBEDDING_THREADS", "3")
    chosen = template_parameters(Settings(), "postgresql://db")

    # Then the local stack runs each environment's model on one thread, or on what was asked for,
    # while the template's own default (AWS) stays onnxruntime's choice
    assert unset["EmbeddingThreads"] == "1"
    assert chosen["EmbeddingThreads"] == "3"
    template = translate(TEMPLATE, {"DatabaseUrl": "postgresql://db"}).cfn
    assert template["Parameters"]["EmbeddingThreads"]["Default"] == 0
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert functions
    assert all(
        f["Properties"]["Environment"]["Variables"]["EMBEDDING_THREADS"] == {"Ref": "EmbeddingThreads"}
        for f in functions
    )
