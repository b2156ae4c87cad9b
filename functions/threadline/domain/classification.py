"""Classification of first questions against a project's categories, learning from the project's corrections.

Each category's prototype starts as the normalised mean of the embeddings of "name: description" and its
example questions. Every user label then adds the thread's first question as a labelled example of its
category for that project (embedded once, stored): the mean of a category's corrections (the latest
`CORRECTIONS_PER_CATEGORY`) joins the prototype with weight n / (n + `CORRECTION_HALF_WEIGHT`), so a few
corrections nudge it and many dominate, never a single one. A question goes to the most similar
prototype; when the top two are closer than the margin, a configured LLM chooser decides (or the LLM
decides every question when it is primary). bench.classify_learning measures it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

import numpy as np

from threadline.domain.categories import Category
from threadline.domain.errors import DomainError
from threadline.domain.labels import CorrectionSource, CorrectionsVersion
from threadline.domain.ports import Embedder, LabelDecision, Vectors

log = logging.getLogger(__name__)

# Softmax temperature that turns cosine scores into a confidence: cosine gaps between categories are
# small (a few hundredths), so a low temperature keeps a clear winner near 1 and a tie near 1/k.
_TEMPERATURE = 0.05
_CACHE_PROJECTS = 256
# Corrections kept per category: the latest ones (what the team means now), and a bound on the work.
CORRECTIONS_PER_CATEGORY = 50
# n corrections weigh n / (n + 10) against the description and examples (1): one correction moves the
# prototype by a tenth of the way, ten by half, fifty by 83%. Picked by bench.classify_learning on its
# correction pool (30 corrections, 78 validation questions: 82.1% at 1, 85.9% at 3, 88.5% at 10).
CORRECTION_HALF_WEIGHT = 10.0


@dataclass(frozen=True, slots=True)
class Choice:
    """An LLM's pick, already checked against the offered category ids."""

    category_id: UUID
    confidence: float


class CategoryChooser(Protocol):
    """Picks one of the given categories for a question (an LLM); None when it cannot give a valid answer."""

    @property
    def name(self) -> str: ...

    def choose(self, question: str, categories: Sequence[Category]) -> Choice | None: ...


class CategorySource(Protocol):
    """Where the classifier reads a project's current categories."""

    def list_categories(self, project_id: UUID) -> list[Category]: ...


PrototypeKey = tuple[tuple[tuple[UUID, str], ...], CorrectionsVersion | None]


@dataclass(frozen=True, slots=True)
class Prototypes:
    """One unit vector per category, rows in the order of `categories`."""

    key: PrototypeKey
    categories: tuple[Category, ...]
    matrix: Vectors


def prototype_texts(category: Category, use_examples: bool = True) -> list[str]:
    """The texts whose embeddings are averaged into a category's prototype."""
    head = f"{category.name}: {category.description}" if category.description else category.name
    return [head, *category.examples] if use_examples else [head]


def _unit(vector: Vectors) -> Vectors:
    unit: Vectors = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return unit


def build_prototypes(
    embedder: Embedder,
    categories: Sequence[Category],
    use_examples: bool = True,
    corrections: Sequence[tuple[UUID, Vectors]] = (),
    half_weight: float = CORRECTION_HALF_WEIGHT,
    key: PrototypeKey | None = None,
) -> Prototypes:
    """Embed every category's texts in one call and average them per category; then blend in each
    category's corrections, (category_id, vector) pairs, with weight n / (n + half_weight)."""
    texts = [prototype_texts(c, use_examples) for c in categories]
    vectors = embedder.embed([t for group in texts for t in group])
    by_category: dict[UUID, list[Vectors]] = {}
    for category_id, vector in corrections:
        by_category.setdefault(category_id, []).append(vector)
    rows: list[Vectors] = []
    start = 0
    for category, group in zip(categories, texts, strict=True):
        row = _unit(vectors[start : start + len(group)].mean(axis=0))
        examples = by_category.get(category.id)
        if examples:
            n = len(examples)
            row = _unit(row + n / (n + half_weight) * _unit(np.mean(examples, axis=0)))
        rows.append(row)
        start += len(group)
    matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, embedder.dimensions), np.float32)
    return Prototypes(key=key or (categories_key(categories), None), categories=tuple(categories), matrix=matrix)


def categories_key(categories: Sequence[Category]) -> tuple[tuple[UUID, str], ...]:
    """Identifies a set of category versions: any create, edit or delete changes it."""
    return tuple(sorted((c.id, c.updated_at.isoformat()) for c in categories))


@dataclass(frozen=True, slots=True)
class Scored:
    """Where one question landed among the prototypes."""

    best: int
    confidence: float
    margin: float
    runner_up: int | None = None


def score(prototypes: Prototypes, questions: Vectors) -> list[Scored]:
    """Best category, softmax confidence, runner-up and top-two margin for each question vector."""
    sims = questions @ prototypes.matrix.T
    results: list[Scored] = []
    for row in sims:
        order = np.argsort(row)[::-1]
        top = float(row[order[0]])
        second = float(row[order[1]]) if len(order) > 1 else -1.0
        weights = np.exp((row - top) / _TEMPERATURE)
        runner_up = int(order[1]) if len(order) > 1 else None
        results.append(
            Scored(best=int(order[0]), confidence=float(1.0 / weights.sum()), margin=top - second, runner_up=runner_up)
        )
    return results


@dataclass
class Classifier:
    """`ThreadClassifier`: embedding prototypes, with an optional LLM as fallback (below the margin) or primary.

    Prototypes are cached per project and rebuilt when that project's categories or corrections change
    (the cache key is every category's id and updated_at plus the corrections' version, read with two
    small queries per call); another project's changes never touch this project's cache entry.
    """

    categories: CategorySource
    embedder: Embedder
    margin: float = 0.02
    chooser: CategoryChooser | None = None
    llm_primary: bool = False
    use_examples: bool = True
    corrections: CorrectionSource | None = None
    half_weight: float = CORRECTION_HALF_WEIGHT
    _cache: OrderedDict[UUID, Prototypes] = field(default_factory=OrderedDict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def model_name(self) -> str:
        """What decided, as stored in threads.label_model for embedding decisions."""
        return f"embedding:{self.embedder.model_name}"

    def prototypes(self, project_id: UUID) -> Prototypes:
        """The project's prototypes, rebuilt only when its categories or corrections changed."""
        categories = self.categories.list_categories(project_id)
        version = self.corrections.corrections_version(project_id) if self.corrections else None
        key: PrototypeKey = (categories_key(categories), version)
        with self._lock:
            cached = self._cache.get(project_id)
            if cached is not None and cached.key == key:
                self._cache.move_to_end(project_id)
                return cached
        examples = self._correction_vectors(project_id) if version and version.count else []
        built = build_prototypes(self.embedder, categories, self.use_examples, examples, self.half_weight, key)
        with self._lock:
            self._cache[project_id] = built
            self._cache.move_to_end(project_id)
            while len(self._cache) > _CACHE_PROJECTS:
                self._cache.popitem(last=False)
        return built

    def _correction_vectors(self, project_id: UUID) -> list[tuple[UUID, Vectors]]:
        """The project's corrections as (category_id, vector); questions never embedded are embedded now and
        stored, so each correction costs one embedding however often the prototypes are rebuilt."""
        assert self.corrections is not None
        found = self.corrections.corrections(project_id, CORRECTIONS_PER_CATEGORY)
        missing = [c for c in found if c.vector is None]
        fresh: dict[UUID, Vectors] = {}
        if missing:
            embedded = self.embedder.embed([c.question for c in missing])
            fresh = {c.thread_id: embedded[i] for i, c in enumerate(missing)}
            self.corrections.store_correction_vectors(project_id, list(fresh.items()))
        pairs: list[tuple[UUID, Vectors]] = []
        for c in found:
            vector = c.vector if c.vector is not None else fresh[c.thread_id]
            pairs.append((c.category_id, vector))
        return pairs

    def classify(self, project_id: UUID, questions: Sequence[tuple[UUID, str]]) -> list[LabelDecision]:
        """Label one project's questions; a project without categories gets no decisions."""
        return self.classify_many([(project_id, thread_id, text) for thread_id, text in questions])

    def classify_many(self, items: Sequence[tuple[UUID, UUID, str]]) -> list[LabelDecision]:
        """Label (project_id, thread_id, question) items of many projects, embedding all questions in one call."""
        if not items:
            return []
        vectors = self.embedder.embed([text for _, _, text in items])
        by_project: dict[UUID, list[int]] = {}
        for index, (project_id, _, _) in enumerate(items):
            by_project.setdefault(project_id, []).append(index)
        decisions: list[LabelDecision] = []
        for project_id, indexes in by_project.items():
            prototypes = self.prototypes(project_id)
            if not prototypes.categories:
                continue
            scored = score(prototypes, vectors[indexes])
            for index, result in zip(indexes, scored, strict=True):
                decisions.append(self._decide(prototypes, items[index][1], items[index][2], result))
        return decisions

    def _decide(self, prototypes: Prototypes, thread_id: UUID, question: str, result: Scored) -> LabelDecision:
        best = prototypes.categories[result.best].id
        runner_up = prototypes.categories[result.runner_up].id if result.runner_up is not None else None
        embedded = LabelDecision(
            thread_id=thread_id,
            category_id=best,
            confidence=round(result.confidence, 4),
            model=self.model_name,
            runner_up_id=runner_up,
        )
        ask_llm = self.chooser is not None and (self.llm_primary or result.margin < self.margin)
        if not ask_llm or self.chooser is None or len(prototypes.categories) < 2:
            return embedded
        choice = self.chooser.choose(question, prototypes.categories)
        if choice is None:
            # The LLM failed or answered outside the project's categories: the embedding verdict stands.
            return embedded
        # The LLM's runner-up is the embedding's favourite when they disagree, else the embedding's second.
        return LabelDecision(
            thread_id=thread_id,
            category_id=choice.category_id,
            confidence=choice.confidence,
            model=self.chooser.name,
            runner_up_id=best if choice.category_id != best else runner_up,
        )


# --- The classification worker (SQS messages and the backfill share the steps below) -------------------------


@dataclass(frozen=True, slots=True)
class ClassifyRequest:
    """A request to label one thread (the ClassifyQueue message, `threadline.messages.ClassifyThread`)."""

    project_id: UUID
    thread_id: UUID


class AutoLabelRepository(Protocol):
    """What the classifier reads and writes; `apply_auto_labels` never touches a user label (guard in SQL)."""

    def threads_to_classify(self, project_id: UUID, thread_ids: Sequence[UUID]) -> list[tuple[UUID, str]]: ...
    def apply_auto_labels(self, project_id: UUID, decisions: Sequence[LabelDecision]) -> list[UUID]: ...


class BatchClassifier(Protocol):
    """A classifier that takes questions of many projects at once."""

    def classify_many(self, items: Sequence[tuple[UUID, UUID, str]]) -> list[LabelDecision]: ...


@dataclass
class BatchOutcome:
    """Per message: None when done, else the error that makes it a batch item failure."""

    errors: dict[str, DomainError | None] = field(default_factory=dict)
    labelled: int = 0

    def raise_if_failed(self, message_id: str) -> None:
        """Raise the message's error (BatchProcessor then reports it as a failed item)."""
        error = self.errors.get(message_id)
        if error is not None:
            raise error


def classify_messages(
    repo: AutoLabelRepository, classifier: BatchClassifier, messages: Sequence[tuple[str, ClassifyRequest]]
) -> BatchOutcome:
    """Classify the threads of a batch of (message_id, request): one embedding call for the whole batch.

    Idempotent: threads already labelled by a user, already auto-labelled since their categories last
    changed, deleted, or without a question are skipped, so a redelivered message changes nothing.
    A project whose storage fails fails only its own messages.
    """
    outcome = BatchOutcome()
    by_project: dict[UUID, list[tuple[str, ClassifyRequest]]] = {}
    for message_id, request in messages:
        outcome.errors[message_id] = None
        by_project.setdefault(request.project_id, []).append((message_id, request))
    pending: list[tuple[UUID, UUID, str]] = []
    for project_id, requests in by_project.items():
        try:
            found = repo.threads_to_classify(project_id, [r.thread_id for _, r in requests])
        except DomainError as exc:
            _fail(outcome, requests, exc)
            continue
        pending.extend((project_id, thread_id, question) for thread_id, question in found)
    decisions = classifier.classify_many(pending)
    project_of = {thread_id: project_id for project_id, thread_id, _ in pending}
    grouped: dict[UUID, list[LabelDecision]] = {}
    for decision in decisions:
        grouped.setdefault(project_of[decision.thread_id], []).append(decision)
    for project_id, project_decisions in grouped.items():
        try:
            outcome.labelled += len(repo.apply_auto_labels(project_id, project_decisions))
        except DomainError as exc:
            _fail(outcome, by_project[project_id], exc)
    return outcome


def _fail(outcome: BatchOutcome, requests: Sequence[tuple[str, ClassifyRequest]], error: DomainError) -> None:
    log.warning("classification failed for a project", extra={"error": error.code, "messages": len(requests)})
    for message_id, _ in requests:
        outcome.errors[message_id] = error
