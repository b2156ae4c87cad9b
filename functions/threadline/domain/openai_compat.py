"""OpenAI chat-completions requests mapped onto Threadline threads (POST /v1/chat/completions).

The model name selects the key's project chatbot: `threadline`, or the project's own id. The last message must
be the user's question. Without a thread id, earlier user/assistant messages are the conversation so far: they
reach the model as history for this answer (not saved as exchanges), and system or developer messages are added
to the instructions of this answer. With a thread id (the `thread_id` extension field), the thread's own saved
history is used and the client's earlier messages are ignored, so a client may send only the new question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from uuid import UUID

from threadline.domain.chat import MAX_QUESTION_CHARS, NewExchange
from threadline.domain.errors import InvalidInput, NotFound
from threadline.domain.prompting import Turn

MODEL_ALIAS = "threadline"
MAX_MESSAGES = 200
MAX_INSTRUCTIONS_CHARS = 8000
# Client-sent history beyond the chat's own token budget is cut anyway; this bounds what is parsed.
MAX_HISTORY_CHARS = 200_000
CONTEXT_ROLES = ("system", "developer")
TURN_ROLES = ("user", "assistant")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message as the client sent it, its content already reduced to text."""

    role: str
    text: str


@dataclass(frozen=True, slots=True)
class Conversation:
    """What a request asks: the question, the turns before it (newest first) and any client instructions."""

    question: str
    history: list[Turn]
    instructions: str | None


class InvalidMessages(InvalidInput):
    """The messages cannot be read as a conversation ending with a user question."""

    code = "invalid_messages"


def resolve_model(model: str, project_id: UUID) -> str:
    """The model names a key may use: the alias or its project's id; NotFound for anything else."""
    if model in (MODEL_ALIAS, str(project_id)):
        return model
    raise NotFound(f"The model `{model[:100]}` does not exist or you do not have access to it.", param="model")


def conversation(messages: Sequence[ChatMessage]) -> Conversation:
    """Read a request's messages: the last one is the question, earlier turns become history."""
    if not messages:
        raise InvalidMessages("messages must contain at least one message", param="messages")
    if len(messages) > MAX_MESSAGES:
        raise InvalidMessages(f"messages may hold at most {MAX_MESSAGES} messages", param="messages")
    *earlier, last = messages
    if last.role != "user":
        raise InvalidMessages("the last message must be the user's question (role 'user')", param="messages")
    question = last.text.strip()
    if not question:
        raise InvalidMessages("the last user message has no text", param=f"messages[{len(messages) - 1}].content")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidMessages(
            f"the question may be at most {MAX_QUESTION_CHARS} characters", param=f"messages[{len(messages) - 1}]"
        )
    if sum(len(m.text) for m in earlier) > MAX_HISTORY_CHARS:
        raise InvalidMessages(f"earlier messages may hold at most {MAX_HISTORY_CHARS} characters", param="messages")
    instructions = "\n\n".join(m.text.strip() for m in earlier if m.role in CONTEXT_ROLES and m.text.strip())
    if len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise InvalidMessages(f"system messages may hold at most {MAX_INSTRUCTIONS_CHARS} characters", param="messages")
    return Conversation(question, _turns(earlier), instructions or None)


def _turns(earlier: Sequence[ChatMessage]) -> list[Turn]:
    """User messages paired with the assistant reply that follows; consecutive ones are joined. Newest first."""
    turns: list[Turn] = []
    asked: list[str] = []
    answered: list[str] = []
    for message in earlier:
        if message.role not in TURN_ROLES or not message.text.strip():
            continue
        if message.role == "user":
            if answered:
                turns.append(Turn("\n".join(asked), "\n".join(answered)))
                asked, answered = [], []
            asked.append(message.text.strip())
        else:
            answered.append(message.text.strip())
    if answered:
        turns.append(Turn("\n".join(asked), "\n".join(answered)))
    # An unanswered question before the last one is context only the last question can carry: it is dropped.
    return list(reversed(turns))


def with_conversation(exchange: NewExchange, asked: Conversation) -> NewExchange:
    """The exchange answered with the client's history and instructions.

    A new thread gets the client's turns as its history for this answer; a follow-up keeps the thread's saved
    history. Client instructions come after the thread's own, for this answer only.
    """
    context = exchange.context
    history = asked.history if exchange.new_thread else context.history
    prompt = "\n\n".join(p for p in (context.system_prompt, asked.instructions) if p) or None
    return replace(exchange, context=replace(context, history=history, system_prompt=prompt))
