"""OpenAI messages onto threads, MCP settings and search arguments, citations: the pure rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from threadline.domain import mcp, openai_compat
from threadline.domain.answering import citation_footer, collect
from threadline.domain.chat import ChatEvent, Context, Done, Failed, Meta, NewExchange, Outcome, Token
from threadline.domain.errors import InvalidInput, NotFound, Unavailable
from threadline.domain.mcp import McpOverrides
from threadline.domain.openai_compat import ChatMessage, InvalidMessages
from threadline.domain.prompting import Turn

pytestmark = pytest.mark.unit


def test_the_last_user_message_is_the_question_and_earlier_pairs_are_history() -> None:
    # Given a conversation with instructions, a greeting, two questions in a row, and answers
    messages = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Hi"),
        ChatMessage("assistant", "Hello!"),
        ChatMessage("developer", "Cite sources."),
        ChatMessage("user", "Refunds?"),
        ChatMessage("user", "To a card?"),
        ChatMessage("assistant", "Five days [1]."),
        ChatMessage("user", "  And invoices?  "),
    ]
    # When it is read
    asked = openai_compat.conversation(messages)
    # Then the last message is the question, the turns are paired newest first, instructions are joined
    assert asked.question == "And invoices?"
    assert asked.history == [Turn("Refunds?\nTo a card?", "Five days [1]."), Turn("Hi", "Hello!")]
    assert asked.instructions == "Be brief.\n\nCite sources."


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello")], "messages"),
        ([ChatMessage("user", "   ")], "messages[0].content"),
        ([ChatMessage("user", "x" * 4001)], "messages[0]"),
        ([ChatMessage("user", "hi")] * 201, "messages"),
        ([ChatMessage("system", "x" * 8001), ChatMessage("user", "hi")], "messages"),
    ],
)
def test_malformed_conversations_name_the_parameter(messages: list[ChatMessage], param: str) -> None:
    # When a conversation cannot be read, then the error names where
    with pytest.raises(InvalidMessages) as caught:
        openai_compat.conversation(messages)
    assert caught.value.details["param"] == param


def test_the_model_is_the_alias_or_the_keys_own_project() -> None:
    # Given a key's project
    project_id = uuid4()
    # Then the alias and the project id are accepted, anything else is not found
    assert openai_compat.resolve_model("threadline", project_id) == "threadline"
    assert openai_compat.resolve_model(str(project_id), project_id) == str(project_id)
    for model in ("gpt-4o", str(uuid4()), "Threadline"):
        with pytest.raises(NotFound):
            openai_compat.resolve_model(model, project_id)


def _exchange(new_thread: bool) -> NewExchange:
    context = Context(system_prompt="Thread rules.", history=[Turn("saved?", "yes")], passages=[])
    return NewExchange(uuid4(), uuid4(), "Q?", new_thread, context, "openai")


def test_client_history_is_used_for_a_new_thread_only_and_instructions_follow_the_threads() -> None:
    # Given a conversation with history and instructions
    asked = openai_compat.conversation(
        [
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "a"),
            ChatMessage("assistant", "b"),
            ChatMessage("user", "Q?"),
        ]
    )
    # When it is applied to a new thread and to a follow-up
    new = openai_compat.with_conversation(_exchange(True), asked)
    follow_up = openai_compat.with_conversation(_exchange(False), asked)
    # Then the new thread answers with the client's turns, the follow-up with the saved ones
    assert new.context.history == [Turn("a", "b")] and follow_up.context.history == [Turn("saved?", "yes")]
    assert new.context.system_prompt == follow_up.context.system_prompt == "Thread rules.\n\nBe brief."
    assert new.channel == "openai"


class _Store:
    def __init__(self) -> None:
        self.saved: McpOverrides | None = None

    def get_mcp_overrides(self, project_id: object) -> tuple[McpOverrides, datetime | None]:
        return (self.saved or McpOverrides()), None

    def put_mcp_overrides(self, project_id: object, overrides: McpOverrides) -> datetime:
        self.saved = overrides
        return datetime(2026, 1, 1, tzinfo=UTC)


def test_mcp_settings_fall_back_to_defaults_and_the_instructions_name_the_tools() -> None:
    # Given a project that renamed only the search tool, with blank values elsewhere
    store = _Store()
    settings = mcp.put_settings(store, uuid4(), McpOverrides(search_tool_name=" find_docs ", instructions="  "))
    # Then the name is kept trimmed, blanks are defaults, and the default instructions use the new name
    assert settings.search_tool_name == "find_docs" and settings.ask_tool_name == "ask"
    assert "`find_docs`" in settings.instructions and store.saved is not None and store.saved.instructions is None


@pytest.mark.parametrize(
    "overrides",
    [
        McpOverrides(search_tool_name="ask"),
        McpOverrides(search_tool_name="a b"),
        McpOverrides(ask_tool_name="x" * 65),
        McpOverrides(ask_tool_description="d" * 2001),
        McpOverrides(instructions="i" * 8001),
    ],
)
def test_unusable_mcp_settings_are_refused_and_not_stored(overrides: McpOverrides) -> None:
    store = _Store()
    with pytest.raises(InvalidInput):
        mcp.put_settings(store, uuid4(), overrides)
    assert store.saved is None


@pytest.mark.parametrize(
    ("query", "limit", "titles"),
    [("", None, None), ("q", 0, None), ("q", 21, None), ("q", 5, ["t"] * 21), ("q", 5, ["t" * 201])],
)
def test_bad_search_arguments_are_refused(query: str, limit: int | None, titles: list[str] | None) -> None:
    with pytest.raises(InvalidInput):
        mcp.search_request(query, limit, titles)


def test_search_arguments_get_defaults_and_blank_titles_are_dropped() -> None:
    request = mcp.search_request("  refunds ", None, [" ", "Billing "])
    assert (request.query, request.limit, request.titles) == ("refunds", mcp.DEFAULT_LIMIT, ["Billing"])
    assert mcp.search_request("refunds", 3, ["  "]).titles is None


def test_the_footer_lists_only_cited_sources() -> None:
    sources = [
        {"index": 1, "title": "Billing", "heading": "Billing > Refunds", "cited": True},
        {"index": 2, "title": "Shipping", "heading": "", "cited": False},
        {"index": 3, "title": "FAQ", "heading": "", "cited": True},
    ]
    assert citation_footer(sources) == "\n\nSources:\n[1] Billing > Billing > Refunds\n[3] FAQ"
    assert citation_footer([{**s, "cited": False} for s in sources]) == ""


async def _events(*events: ChatEvent) -> AsyncIterator[ChatEvent]:
    for event in events:
        yield event


def test_collect_returns_the_outcome_or_raises_on_failure() -> None:
    outcome = Outcome(answer="ok")
    meta = Meta(uuid4(), uuid4())
    assert asyncio.run(collect(_events(meta, Token("ok"), Done(outcome)))) is outcome
    with pytest.raises(Unavailable, match="model down"):
        asyncio.run(collect(_events(meta, Failed("unavailable", "model down"))))
