"""An LLM that picks a category with OpenAI structured output, validated against the project's category ids.

A server without structured output (llama.cpp's Python server refuses `json_schema` with an error naming
`response_format`) is asked for a JSON object instead: the reply's shape in the system message, the same
schema beside the request (llama.cpp constrains the output to it); the answer is validated the same way.
The chooser remembers the refusal, so each later question costs one request, not two."""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

import openai
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, Field, ValidationError

from threadline.domain.categories import Category
from threadline.domain.classification import Choice, Precedent
from threadline.observability import logger

_SYSTEM = (
    "You label the first question of a customer-support conversation with exactly one of the project's "
    "categories. Answer with the id of the best category and your confidence between 0 and 1. "
    "'labelled_by_this_team', when present, lists questions this team labelled itself, the nearest to this "
    "one first: where the question is alike, follow the team's choice over the descriptions."
)


class _Answer(BaseModel):
    category_id: UUID
    confidence: float = Field(ge=0.0, le=1.0)


def _schema(categories: Sequence[Category]) -> dict[str, object]:
    """The answer's JSON schema; its enum restricts a schema-following server to the project's ids (the answer is
    still validated)."""
    return {
        "type": "object",
        "properties": {
            "category_id": {"type": "string", "enum": [str(c.id) for c in categories]},
            "confidence": {"type": "number"},
        },
        "required": ["category_id", "confidence"],
        "additionalProperties": False,
    }


def _response_format(categories: Sequence[Category]) -> ResponseFormatJSONSchema:
    return {
        "type": "json_schema",
        "json_schema": {"name": "category_choice", "strict": True, "schema": _schema(categories)},
    }


def _prompt(question: str, categories: Sequence[Category], precedents: Sequence[Precedent]) -> str:
    listed = [
        {"id": str(c.id), "name": c.name, "description": c.description, "examples": list(c.examples[:5])}
        for c in categories
    ]
    prompt: dict[str, object] = {"categories": listed}
    if precedents:
        prompt["labelled_by_this_team"] = [
            {"question": p.question, "category_id": str(p.category_id)} for p in precedents
        ]
    prompt["question"] = question
    return json.dumps(prompt, ensure_ascii=False)


_JSON_OBJECT_HINT = (
    ' Reply with one JSON object and nothing else: {"category_id": "<one of the ids>", "confidence": <0 to 1>}.'
)


def _refuses_json_schema(error: openai.APIStatusError) -> bool:
    """An error that names the request's `json_schema` response_format: the server has no structured output.
    By its text, not its status: llama.cpp's Python server answers 500 to it (version 0.3.36, tried here)."""
    said = f"{error.message} {error.body}"
    return "response_format" in said and "json_schema" in said


class OpenAICategoryChooser:
    """`CategoryChooser` over any OpenAI-compatible chat-completions server."""

    def __init__(self, client: openai.OpenAI, model: str) -> None:
        self._client = client
        self._model = model
        # Until the server refuses it once: then a JSON object (module docstring).
        self._structured_output = True

    @property
    def name(self) -> str:
        """Stored as the label's model."""
        return f"llm:{self._model}"

    def choose(
        self, question: str, categories: Sequence[Category], precedents: Sequence[Precedent] = ()
    ) -> Choice | None:
        """The model's pick, or None when it fails or names something that is not one of these categories;
        `precedents`, the team's own labels of questions near this one, go into the prompt."""
        try:
            answer = _Answer.model_validate_json(self._ask(_prompt(question, categories, precedents), categories))
        except (openai.OpenAIError, ValidationError) as exc:
            logger.warning("LLM classifier gave no usable answer", extra={"error": type(exc).__name__})
            return None
        if answer.category_id not in {c.id for c in categories}:
            logger.warning("LLM classifier answered a category outside the project")
            return None
        return Choice(category_id=answer.category_id, confidence=round(answer.confidence, 4))

    def _ask(self, prompt: str, categories: Sequence[Category]) -> str:
        """The model's reply: with a JSON schema while the server takes one, else as a JSON object."""
        if self._structured_output:
            try:
                response = self._client.chat.completions.create(
                    model=self._model,
                    messages=[{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}],
                    response_format=_response_format(categories),
                    temperature=0,
                )
                return response.choices[0].message.content or ""
            except openai.APIStatusError as exc:
                if not _refuses_json_schema(exc):
                    raise
                logger.warning("LLM server refuses structured output; asking for a JSON object from now on")
                self._structured_output = False
        response = self._client.chat.completions.create(
            model=self._model,
            messages=[{"role": "system", "content": _SYSTEM + _JSON_OBJECT_HINT}, {"role": "user", "content": prompt}],
            # "schema" beside json_object is llama.cpp's extension (it constrains the output to it); others ignore it.
            # Sent as extra_body: the SDK's type for a JSON-object response_format has no such key.
            extra_body={"response_format": {"type": "json_object", "schema": _schema(categories)}},
            temperature=0,
        )
        return response.choices[0].message.content or ""
