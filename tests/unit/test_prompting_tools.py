"""Prompt building, the history budget, the offline answer and tool-argument validation."""

from __future__ import annotations

from uuid import uuid4

import pytest

from threadline.domain.chat import PASSAGE_MARGIN, relevant_passages, source_list
from threadline.domain.chat_tools import (
    HandoffToHuman,
    SearchDocuments,
    ToolArgumentError,
    parse_tool_call,
    tool_schemas,
)
from threadline.domain.prompting import (
    NO_SOURCES,
    Passage,
    Turn,
    build_messages,
    estimate_tokens,
    extractive_answer,
    history_within_budget,
)

pytestmark = pytest.mark.unit


def _passage(title: str, heading: str, content: str) -> Passage:
    return Passage(
        chunk_id=hash(content) % 10_000, document_id=uuid4(), title=title, heading=heading, content=content, score=0.8
    )


@pytest.mark.parametrize(
    ("scores", "kept"),
    [
        # covered: the best passage reaches the floor, and a weaker one within the margin comes with it
        ((0.52, 0.31, 0.26, 0.18), (0.52, 0.31, 0.26)),
        # not covered: passages within the margin alone are not evidence that the documents answer it
        ((0.34, 0.30, 0.28), ()),
        ((0.35, -0.10), (0.35,)),
        ((), ()),
    ],
)
def test_the_floor_decides_coverage_by_the_best_passage_and_keeps_the_covered_ones_near_it(
    scores: tuple[float, ...], kept: tuple[float, ...]
) -> None:
    passages = [
        Passage(chunk_id=i, document_id=uuid4(), title="t", heading="h", content="c", score=s)
        for i, s in enumerate(scores)
    ]
    assert PASSAGE_MARGIN == pytest.approx(0.10)
    assert tuple(p.score for p in relevant_passages(passages, 0.35)) == kept


def test_history_keeps_the_newest_turns_that_fit_the_budget_oldest_first() -> None:
    # Given three turns, newest first, each costing about 30 tokens
    turns = [Turn(f"question {i} " + "x" * 40, f"answer {i} " + "y" * 40) for i in (3, 2, 1)]
    cost = estimate_tokens(turns[0].question) + estimate_tokens(turns[0].answer)
    # When the budget holds two of them
    kept = history_within_budget(turns, 2 * cost + 1)
    # Then the two newest are kept, in conversation order
    assert [t.question.split()[1] for t in kept] == ["2", "3"]
    assert history_within_budget(turns, 0) == []


def test_messages_carry_rules_operator_prompt_history_and_numbered_sources() -> None:
    passages = [_passage("Guide", "Install", "Run the installer."), _passage("FAQ", "", "It is free.")]
    messages = build_messages("How to install?", passages, [Turn("Hi", "Hello")], "Be brief.", history_budget=100)
    assert messages[0]["role"] == "system" and "[1]" in messages[0]["content"] and "Be brief." in messages[0]["content"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert (
        messages[-1]["content"]
        == "Sources:\n[1] Guide > Install\nRun the installer.\n\n[2] FAQ\nIt is free.\n\nQuestion: How to install?"
    )
    assert NO_SOURCES in build_messages("?", [], [], None, 100)[-1]["content"]


def test_offline_answer_names_the_missing_model_and_quotes_sources() -> None:
    text = "".join(extractive_answer([_passage("Guide", "Install", "Run the installer.")]))
    assert text.startswith("No language model is configured") and "[1] Guide > Install:\nRun the installer." in text
    assert "no passage" in "".join(extractive_answer([]))


def test_sources_are_marked_cited_when_the_answer_cites_them() -> None:
    passages = [_passage("A", "", "one"), _passage("B", "", "two")]
    sources = source_list(passages, "See [2].")
    assert [(s["index"], s["cited"]) for s in sources] == [(1, False), (2, True)]


@pytest.mark.parametrize(
    ("name", "arguments", "expected"),
    [
        ("search_documents", '{"query": "refunds"}', SearchDocuments(query="refunds")),
        ("handoff_to_human", '{"reason": "angry customer"}', HandoffToHuman(reason="angry customer")),
    ],
)
def test_valid_tool_calls_parse(name: str, arguments: str, expected: object) -> None:
    assert parse_tool_call(name, arguments) == expected


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("search_documents", '{"query": "refunds", "top_k": 99}'),
        ("search_documents", "not json"),
        ("search_documents", '{"query": "ok", "extra": 1}'),
        ("nope", "{}"),
    ],
)
def test_invalid_tool_calls_raise_a_message_for_the_model(name: str, arguments: str) -> None:
    with pytest.raises(ToolArgumentError):
        parse_tool_call(name, arguments)


def test_tool_schemas_are_openai_function_tools() -> None:
    schemas = {t["function"]["name"]: t for t in tool_schemas()}
    assert schemas["search_documents"]["type"] == "function"
    assert schemas["search_documents"]["function"]["parameters"]["required"] == ["query"]
