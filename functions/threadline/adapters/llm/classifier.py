"""An LLM that picks a category with OpenAI structured output, validated against the project's category ids."""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

import openai
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, Field, ValidationError

from threadline.domain.categories import Category
from threadline.domain.classification import Choice
from threadline.observability import logger

_SYSTEM = (
    "You label the first question of a customer-support conversation with exactly one of the project's "
    "categories. Answer with the id of the best category and your confidence between 0 and 1."
)


class _Answer(BaseModel):
    category_id: UUID
    confidence: float = Field(ge=0.0, le=1.0)


def _response_format(categories: Sequence[Category]) -> ResponseFormatJSONSchema:
    # The enum restricts a schema-following server to the project's ids; the answer is still validated below.
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "category_choice",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "category_id": {"type": "string", "enum": [str(c.id) for c in categories]},
                    "confidence": {"type": "number"},
                },
                "required": ["category_id", "confidence"],
                "additionalProperties": False,
            },
        },
    }


def _prompt(question: str, categories: Sequence[Category]) -> str:
    listed = [
        {"id": str(c.id), "name": c.name, "description": c.description, "examples": list(c.examples[:5])}
        for c in categories
    ]
    return json.dumps({"categories": listed, "question": question}, ensure_ascii=False)


class OpenAICategoryChooser:
    """`CategoryChooser` over any OpenAI-compatible chat-completions server."""

    def __init__(self, client: openai.OpenAI, model: str) -> None:
        self._client = client
        self._model = model

    @property
    def name(self) -> str:
        """Stored as the label's model."""
        return f"llm:{self._model}"

    def choose(self, question: str, categories: Sequence[Category]) -> Choice | None:
        """The model's pick, or None when it fails or names something that is not one of these categories."""
        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=[
                    {"role": "system", "content": _SYSTEM},
                    {"role": "user", "content": _prompt(question, categories)},
                ],
                response_format=_response_format(categories),
                temperature=0,
            )
            answer = _Answer.model_validate_json(response.choices[0].message.content or "")
        except (openai.OpenAIError, ValidationError) as exc:
            logger.warning("LLM classifier gave no usable answer", extra={"error": type(exc).__name__})
            return None
        if answer.category_id not in {c.id for c in categories}:
            logger.warning("LLM classifier answered a category outside the project")
            return None
        return Choice(category_id=answer.category_id, confidence=round(answer.confidence, 4))
