"""Classification of first questions against a project's categories, learning from the project's corrections.

A category's description vector is the normalised mean of the embeddings of "name: description" and of
each clause of the description (split at , ; : and full stops): a description is usually a list of the
topics it covers, and each topic embedded on its own lands nearer the questions about it than the whole
sentence does. With examples, the examples' mean joins it with weight `EXAMPLE_WEIGHT`. Every user label
then makes the thread's first question a labelled example of its category for that project (embedded
once, stored; the latest `CORRECTIONS_PER_CATEGORY` per category): a question scores, per category, its
cosine to the prototype plus how far its nearest correction of that category exceeds `NEAR_DUPLICATE`,
so a correction decides the questions that repeat it and leaves the others to the description and the
examples. A question goes to the best score; when the top two are closer than the margin, a configured
LLM chooser decides (or the LLM decides every question when it is primary), shown the team's corrections
nearest the question as precedents, so the LLM learns from corrections too. bench.classify_learning
measures the embedding path.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol
from uuid import UUID

import numpy as np

from threadline.domain.categories import Category
from threadline.domain.errors import DomainError
from threadline.domain.labels import Correction, CorrectionSource, CorrectionsVersion
from threadline.domain.ports import Embedder, LabelDecision, Vectors

log = logging.getLogger(__name__)

# Softmax temperature that turns cosine scores into a confidence: cosine gaps between categories are
# small (a few hundredths), so a low temperature keeps a clear winner near 1 and a tie near 1/k.
_TEMPERATURE = 0.05
_CACHE_PROJECTS = 256
# Corrections kept per category: the latest ones (what the team means now), and a bound on the work.
CORRECTIONS_PER_CATEGORY = 50
# The examples' mean against the description vector (1). Chosen offline on bench.classify_learning's
# correction pool (108 questions, never the held-apart half): 88.9% at 1, 90.7% at 2, 90.7% at 3. Re-chosen
# the same way after the embedding model's packed rows: 88.9 / 90.7 / 90.7 / 90.7 / 90.7% at 1 / 1.5 / 2 / 3 / 4
# (and on four other splits' pools, 2 best or tied best in each).
EXAMPLE_WEIGHT = 2.0
# A correction counts for a question only above this cosine, by the excess: a rephrasing of a corrected
# question (cosine 0.62-0.92 for the paraphrases in tests/integration/labelling/test_learning.py) gains up
# to 0.22, far more than the few hundredths between prototypes, while an unrelated question gains nothing.
# Measured offline on the pool (30 random corrections, the other 78 as validation, 20 draws): blending
# the corrections' mean into the prototypes gave 89.2% at half weight 10 and 90.3% at 40, a logistic head
# regularised toward the prototypes 90.1%, against 90.6% with the corrections left out: with MiniLM,
# questions of one category are hardly nearer each other than those of another (median nearest-neighbour
# cosine 0.38 against 0.33), so a category's corrections average towards the "support question"
# direction every category shares. Thresholds 0.5-0.8 tie there (bench.classify_learning prints them).
NEAR_DUPLICATE = 0.7
# Also measured offline and not adopted (held-apart accuracy, mean of 30 splits, with examples / after 30
# corrections; the prototypes as above score 89.7 / 89.7%): prototypes centred against the other categories
# (their mean subtracted, questions too) 87.6-89.1%; centred on the examples' or all category texts' mean
# 89.2-90.2 / the same (over all 216 questions -1.4 to +0.5 points against uncentred: noise);
# adding each category's nearest description clause 88.0-88.3%; the examples and corrections scored by their
# nearest or top-3 cosines 86.9-89.3 / 86.3-88.6%; a within-category whitening (shrunk LDA) 86.7-89.0 /
# 83.5-88.5%; word overlap with each category's texts (idf-weighted, stemmed) 84.4-89.2 / 81.5-89.5%.
# Later (2026-12-04, 100 splits, embeddings cached): a per-category bias fitted on the corrections by logistic
# loss 84.8-89.1% after 30 (89.6% without); a hubness penalty (each score minus a share of its prototype's mean
# cosine to the other prototypes, or to every example) +0.5-1.0 points with examples, i.e. 1-2 of the 216
# questions that chose the share; and corrections never moved the held-apart half at any threshold: MiniLM puts
# a new question of a category no nearer that category's corrected questions than the others'.
# Precedents an LLM chooser is shown: the team's corrections nearest the question (dynamic few-shot). A handful
# is what retrieval-augmented classification prompts commonly carry: enough to show how the team draws the
# line between two categories near this question, little enough to keep each prompt small (8 x 500 characters
# at most) whatever the project's 50 corrections per category add up to.
LLM_PRECEDENTS = 8
_PRECEDENT_CHARS = 500
# Clause boundaries of a description: a full stop only before a space or the end (not in "Node.js").
_CLAUSE = re.compile(r"[,;:]|\.(?=\s|$)")


@dataclass(frozen=True, slots=True)
class Precedent:
    """A question the team labelled itself (a correction), as an LLM chooser is shown it."""

    question: str
    category_id: UUID


@dataclass(frozen=True, slots=True)
class Choice:
    """An LLM's pick, already checked against the offered category ids."""

    category_id: UUID
    confidence: float


class CategoryChooser(Protocol):
    """Picks one of the given categories for a question (an LLM); None when it cannot give a valid answer.
    `precedents`: the team's own labels of the questions nearest this one, nearest first, to follow where alike."""

    @property
    def name(self) -> str: ...

    def choose(
        self, question: str, categories: Sequence[Category], precedents: Sequence[Precedent] = ()
    ) -> Choice | None: ...


class CategorySource(Protocol):
    """Where the classifier reads a project's current categories."""

    def list_categories(self, project_id: UUID) -> list[Category]: ...


PrototypeKey = tuple[tuple[tuple[UUID, str], ...], CorrectionsVersion | None]


@dataclass(frozen=True, slots=True)
class Prototypes:
    """One unit vector per category, rows in the order of `categories`; and the project's corrections,
    one unit vector per row of `corrections` whose category is the prototype row in `correction_rows` and
    whose question (cut to what a prompt carries) is `correction_questions`' entry."""

    key: PrototypeKey
    categories: tuple[Category, ...]
    matrix: Vectors
    corrections: Vectors | None = None
    correction_rows: tuple[int, ...] = ()
    correction_questions: tuple[str, ...] = ()

    def precedents(self, question: Vectors, limit: int = LLM_PRECEDENTS) -> list[Precedent]:
        """The `limit` corrections nearest the unit vector `question`, nearest first, as precedents."""
        if self.corrections is None or limit <= 0:
            return []
        cosines = self.corrections @ question
        nearest = np.argsort(-cosines, kind="stable")[:limit]
        return [
            Precedent(self.correction_questions[i], self.categories[self.correction_rows[i]].id)
            for i in nearest.tolist()
        ]


def description_texts(category: Category) -> list[str]:
    """The texts whose embeddings are averaged into a category's description vector: "name: description"
    and, when the description has more than one clause, each clause."""
    if not category.description:
        return [category.name]
    clauses = [c.strip() for c in _CLAUSE.split(category.description) if c.strip()]
    return [f"{category.name}: {category.description}", *(clauses if len(clauses) > 1 else [])]


def _unit(vector: Vectors) -> Vectors:
    unit: Vectors = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return unit


def build_prototypes(
    embedder: Embedder,
    categories: Sequence[Category],
    use_examples: bool = True,
    corrections: Sequence[Correction] = (),
    key: PrototypeKey | None = None,
) -> Prototypes:
    """Embed every category's description texts and examples in one call; each prototype is the unit
    description vector plus `EXAMPLE_WEIGHT` times the unit mean of the examples. Corrections (each with its
    vector) are kept beside the prototypes for `score` and an LLM's precedents; those of an unknown category
    (deleted since) are dropped."""
    groups = [(description_texts(c), list(c.examples) if use_examples else []) for c in categories]
    vectors = embedder.embed([t for described, examples in groups for t in (*described, *examples)])
    rows: list[Vectors] = []
    start = 0
    for described, examples in groups:
        row = _unit(vectors[start : start + len(described)].mean(axis=0))
        start += len(described)
        if examples:
            row = _unit(row + EXAMPLE_WEIGHT * _unit(vectors[start : start + len(examples)].mean(axis=0)))
            start += len(examples)
        rows.append(row)
    matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, embedder.dimensions), np.float32)
    index = {c.id: i for i, c in enumerate(categories)}
    kept = [(c, c.vector) for c in corrections if c.category_id in index and c.vector is not None]
    return Prototypes(
        key=key or (categories_key(categories), None),
        categories=tuple(categories),
        matrix=matrix,
        corrections=np.stack([_unit(v) for _, v in kept]).astype(np.float32) if kept else None,
        correction_rows=tuple(index[c.category_id] for c, _ in kept),
        # Cut here, once: the cache holds up to 256 projects' corrections, and a prompt carries no more.
        correction_questions=tuple(c.question[:_PRECEDENT_CHARS] for c, _ in kept),
    )


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


def similarities(prototypes: Prototypes, questions: Vectors, near_duplicate: float = NEAR_DUPLICATE) -> Vectors:
    """Per question and category: the cosine to the prototype plus, where the category has corrections,
    max(0, cosine to its nearest correction - `near_duplicate`). Two matrix products and one reduction:
    with 300 corrections, 256 questions score in 13 ms against 4.4 ms without (one BLAS thread, load 12
    on 2 cores), next to the seconds the model takes to embed them."""
    sims: Vectors = questions @ prototypes.matrix.T
    if prototypes.corrections is None:
        return sims
    rows = np.asarray(prototypes.correction_rows)
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    nearest = questions @ prototypes.corrections[order].T
    # One column group per category with corrections: the row-wise maximum of each group at once.
    starts = np.concatenate(([0], np.flatnonzero(np.diff(rows)) + 1))
    best = np.maximum.reduceat(nearest, starts, axis=1)
    sims[:, rows[starts]] += np.maximum(best - near_duplicate, 0.0)
    return sims


def score(prototypes: Prototypes, questions: Vectors, near_duplicate: float = NEAR_DUPLICATE) -> list[Scored]:
    """Best category, softmax confidence, runner-up and top-two margin for each question vector."""
    sims = similarities(prototypes, questions, near_duplicate)
    if not len(sims):
        return []
    order = np.argsort(-sims, axis=1, kind="stable")
    index = np.arange(len(sims))
    top = sims[index, order[:, 0]]
    several = sims.shape[1] > 1
    second = sims[index, order[:, 1]] if several else np.full(len(sims), -1.0)
    confidence = 1.0 / np.exp((sims - top[:, None]) / _TEMPERATURE).sum(axis=1)
    return [
        Scored(
            best=int(order[i, 0]),
            confidence=float(confidence[i]),
            margin=float(top[i] - second[i]),
            runner_up=int(order[i, 1]) if several else None,
        )
        for i in range(len(sims))
    ]


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
    near_duplicate: float = NEAR_DUPLICATE
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
        examples = self._embedded_corrections(project_id) if version and version.count else []
        built = build_prototypes(self.embedder, categories, self.use_examples, examples, key)
        with self._lock:
            self._cache[project_id] = built
            self._cache.move_to_end(project_id)
            while len(self._cache) > _CACHE_PROJECTS:
                self._cache.popitem(last=False)
        return built

    def _embedded_corrections(self, project_id: UUID) -> list[Correction]:
        """The project's corrections, each with its vector; questions never embedded are embedded now and
        stored, so each correction costs one embedding however often the prototypes are rebuilt."""
        assert self.corrections is not None
        found = self.corrections.corrections(project_id, CORRECTIONS_PER_CATEGORY)
        missing = [c for c in found if c.vector is None]
        if not missing:
            return found
        embedded = self.embedder.embed([c.question for c in missing])
        fresh = {c.thread_id: embedded[i] for i, c in enumerate(missing)}
        self.corrections.store_correction_vectors(project_id, list(fresh.items()))
        return [c if c.vector is not None else replace(c, vector=fresh[c.thread_id]) for c in found]

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
            scored = score(prototypes, vectors[indexes], self.near_duplicate)
            for index, result in zip(indexes, scored, strict=True):
                _, thread_id, question = items[index]
                decisions.append(self._decide(prototypes, thread_id, question, vectors[index], result))
        return decisions

    def _decide(
        self, prototypes: Prototypes, thread_id: UUID, question: str, vector: Vectors, result: Scored
    ) -> LabelDecision:
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
        choice = self.chooser.choose(question, prototypes.categories, prototypes.precedents(vector))
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
