"""Pure parts of categories, listing and classification: validation, cursors, messages, scoring."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid4

import numpy as np
import pytest

from threadline.domain import categories, labels
from threadline.domain.categories import Category
from threadline.domain.classification import (
    LLM_PRECEDENTS,
    NEAR_DUPLICATE,
    Precedent,
    Prototypes,
    build_prototypes,
    description_texts,
    score,
)
from threadline.domain.errors import InvalidInput
from threadline.domain.labels import Correction
from threadline.domain.pagination import MAX_LIMIT, Cursor, PageRequest, page_in_memory
from threadline.domain.ports import Vectors


@pytest.mark.unit
@pytest.mark.parametrize("key", [datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC), "answer_length"])
def test_cursor_round_trips_and_is_opaque(key: datetime | str) -> None:
    cursor = Cursor.after(key, uuid4())
    token = cursor.encode()
    assert Cursor.decode(token) == cursor
    assert cursor.id not in token and "=" not in token


@pytest.mark.unit
@pytest.mark.parametrize(
    "token", ["", "%%%", "bm9wZQ", "MjAyNi0wMS0wMVQwMDowMDowMHxub3BlLXV1aWQ", "MjAyNi0wMS0wMXxhYmM"]
)
def test_bad_cursors_are_invalid_input(token: str) -> None:
    with pytest.raises(InvalidInput):
        Cursor.decode(token)


@pytest.mark.unit
def test_cursor_without_time_zone_is_rejected() -> None:
    naive = Cursor.after(datetime(2026, 1, 1), uuid4()).encode()
    with pytest.raises(InvalidInput) as raised:
        Cursor.decode(naive)
    assert raised.value.details == {"field": "cursor"}


@pytest.mark.unit
@pytest.mark.parametrize("limit", [0, MAX_LIMIT + 1])
def test_out_of_range_limits_are_rejected(limit: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        PageRequest.of(limit)
    assert raised.value.details == {"field": "limit"}


@pytest.mark.unit
def test_in_memory_pages_follow_the_same_cursors() -> None:
    # Given seven names in list order
    names = [f"m{i}" for i in range(7)]
    # When they are walked three at a time
    seen: list[str] = []
    request = PageRequest.of(3)
    while True:
        page = page_in_memory(names, request, lambda n: Cursor.after(n, n))
        seen += page.results
        if page.next_cursor is None:
            break
        request = PageRequest.of(3, page.next_cursor)
    # Then every name comes once, in order, and the last page says it is the last
    assert seen == names


@pytest.mark.unit
@pytest.mark.parametrize(
    "kwargs",
    [
        {"unlabelled": True, "category_id": uuid4()},
        {"unlabelled": True, "label_source": "auto"},
        {"created_after": datetime(2026, 1, 1)},
    ],
)
def test_contradictory_or_out_of_range_queries_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        labels.build_query(**kwargs)  # type: ignore[arg-type]


@pytest.mark.unit
def test_examples_are_trimmed_and_deduplicated() -> None:
    assert categories.clean_examples(["  Refund? ", "Refund?", "Upgrade?"]) == ("Refund?", "Upgrade?")
    assert categories.clean_name("  Billing   and  plans ") == "Billing and plans"


def _category(name: str) -> Category:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Category(uuid4(), uuid4(), name, "", (), now, now)


@pytest.mark.unit
def test_score_picks_the_closest_prototype_with_margin_and_confidence() -> None:
    # Given three orthogonal prototypes
    matrix = np.eye(3, 4, dtype=np.float32)
    prototypes = Prototypes(key=(), categories=tuple(_category(n) for n in "abc"), matrix=matrix)
    clear = np.array([[0.95, 0.1, 0.0, 0.3]], dtype=np.float32)
    tie = np.array([[0.6, 0.6, 0.0, 0.5]], dtype=np.float32)
    # When scored
    (clear_score,) = score(prototypes, clear)
    (tie_score,) = score(prototypes, tie)
    # Then a clear winner has a wide margin and high confidence, a tie neither
    assert clear_score.best == 0 and clear_score.margin == pytest.approx(0.85) and clear_score.confidence > 0.99
    assert tie_score.margin == pytest.approx(0.0) and tie_score.confidence == pytest.approx(0.5, abs=1e-3)


@pytest.mark.unit
def test_a_correction_decides_only_the_questions_that_repeat_it() -> None:
    # Given two orthogonal prototypes, a question nearer the first, and one correction of the second
    # category that is a near-duplicate of the question
    matrix = np.eye(2, 4, dtype=np.float32)
    question = np.array([[0.6, 0.5, 0.62, 0.0]], dtype=np.float32)
    question /= np.linalg.norm(question)
    distant = np.array([[0.6, 0.5, -0.62, 0.0]], dtype=np.float32)
    distant /= np.linalg.norm(distant)
    prototypes = Prototypes(
        key=(),
        categories=tuple(_category(n) for n in "ab"),
        matrix=matrix,
        corrections=question.copy(),
        correction_rows=(1,),
    )
    # When scored with and without that correction
    (alone,) = score(Prototypes(key=(), categories=prototypes.categories, matrix=matrix), question)
    (corrected,) = score(prototypes, question)
    (unrelated,) = score(prototypes, distant, near_duplicate=0.7)
    # Then the near-duplicate follows the correction, by the cosine's excess over the threshold; a question
    # below the threshold keeps the prototypes' verdict and its scores unchanged
    assert alone.best == 0 and corrected.best == 1 and corrected.runner_up == 0
    assert corrected.margin == pytest.approx(1.0 - NEAR_DUPLICATE - (0.6 - 0.5) / np.linalg.norm([0.6, 0.5, 0.62]))
    assert float(distant[0] @ question[0]) < 0.7
    assert unrelated.best == 0 and unrelated.margin == pytest.approx(float(distant[0, 0] - distant[0, 1]))


@pytest.mark.unit
def test_an_llm_is_shown_the_nearest_corrections_first_and_at_most_a_handful() -> None:
    # Given two categories and twelve corrections at known cosines to a question along the first axis,
    # the even ones of category a, the odd ones of b, stored in another order than nearness
    cats = tuple(_category(n) for n in "ab")
    cosines = np.linspace(0.95, 0.4, 12)
    vectors = np.stack([[c, np.sqrt(1 - c * c), 0.0] for c in cosines]).astype(np.float32)
    order = np.random.default_rng(3).permutation(12)
    prototypes = Prototypes(
        key=(),
        categories=cats,
        matrix=np.eye(2, 3, dtype=np.float32),
        corrections=vectors[order],
        correction_rows=tuple(int(i % 2) for i in order),
        correction_questions=tuple(f"question {i}" for i in order),
    )
    # When the precedents of that question are taken
    shown = prototypes.precedents(np.array([1.0, 0.0, 0.0], dtype=np.float32))
    # Then the nearest corrections come first, as many as LLM_PRECEDENTS, each with its own category
    assert shown == [Precedent(f"question {i}", cats[i % 2].id) for i in range(LLM_PRECEDENTS)]
    assert prototypes.precedents(vectors[0], limit=1) == [Precedent("question 0", cats[0].id)]
    # And a project without corrections has none to show
    assert Prototypes(key=(), categories=cats, matrix=prototypes.matrix).precedents(vectors[0]) == []


class _Flat:
    """An embedder giving every text the same unit vector: the test is about what is kept, not where."""

    dimensions = 3
    model_name = "flat"

    def embed(self, texts: Sequence[str]) -> Vectors:
        return np.full((len(texts), 3), 3**-0.5, dtype=np.float32)


@pytest.mark.unit
def test_prototypes_keep_corrections_of_known_categories_with_their_questions_cut_to_a_prompts_share() -> None:
    # Given a category, a long correction of it, one with no vector yet and one of a deleted category
    (kept,) = cats = (_category("a"),)
    vector = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    corrections = [
        Correction(uuid4(), kept.id, "Why? " * 300, vector),
        Correction(uuid4(), kept.id, "not embedded", None),
        Correction(uuid4(), uuid4(), "of a deleted category", vector),
    ]
    # When the prototypes are built
    prototypes = build_prototypes(_Flat(), cats, corrections=corrections)
    # Then only the first is kept, its question cut to 500 characters
    assert prototypes.correction_rows == (0,) and prototypes.corrections is not None
    assert len(prototypes.corrections) == 1
    assert prototypes.correction_questions == (("Why? " * 300)[:500],)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("", ["Billing"]),
        ("Invoices and refunds", ["Billing: Invoices and refunds"]),
        (
            "Money: invoices, refunds; plans. Taxes in Node.js",
            [
                "Billing: Money: invoices, refunds; plans. Taxes in Node.js",
                "Money",
                "invoices",
                "refunds",
                "plans",
                "Taxes in Node.js",
            ],
        ),
    ],
)
def test_a_description_is_embedded_whole_and_clause_by_clause(description: str, expected: list[str]) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    category = Category(uuid4(), uuid4(), "Billing", description, (), now, now)
    assert description_texts(category) == expected
