"""Ports the domain needs from the outside world, as structural types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias
from uuid import UUID

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# A name for type checkers only: importing a port must not import numpy (~10% of a handler's import;
# the functions that compute with vectors import it themselves).
Vectors: TypeAlias = "npt.NDArray[np.float32]"


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors, one row per text."""

    @property
    def dimensions(self) -> int: ...

    @property
    def model_name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class TokenCounter(Protocol):
    """Measures text in a model's own tokens, as the model reads it (special tokens included)."""

    @property
    def max_tokens(self) -> int:
        """The model's window: what it reads of a text, the rest being cut off."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


class PassageEmbedder(Embedder, TokenCounter, Protocol):
    """An embedder that also measures passages, so documents are cut to what it reads."""


class ChatEvents(Protocol):
    """What the chat path announces, for work that must stay off its hot path (classification, metrics).

    Implementations enqueue and return at once; the chat calls them only after the answer has been
    streamed (or saved on disconnect), so nothing here delays a token.
    """

    def thread_started(self, project_id: UUID, thread_id: UUID, first_question: str) -> None: ...

    def answer_completed(self, project_id: UUID, thread_id: UUID, message_id: UUID) -> None: ...

    def flush(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` until what was announced has been handed over; never raises."""
        ...


@dataclass(frozen=True, slots=True)
class LabelDecision:
    """A classifier's verdict on one thread."""

    thread_id: UUID
    category_id: UUID
    confidence: float
    model: str
    # The category that came second (what a reviewer would pick instead); None with a single category.
    runner_up_id: UUID | None = None


class ThreadClassifier(Protocol):
    """Labels first questions against one project's categories (used by the SQS worker and the backfill)."""

    def classify(self, project_id: UUID, questions: Sequence[tuple[UUID, str]]) -> list[LabelDecision]: ...
