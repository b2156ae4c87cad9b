"""Accuracy of the classifier as it learns from corrections, on the project's own 6-category set.

    python -m bench.classify_learning

bench/data/classification.jsonl (216 questions, 6 categories) is split per category, with a fixed seed,
into a held-apart half (never a correction, only measured) and a disjoint correction pool. Measured on
the held-apart half: zero-shot (name and description only), with the categories' example questions,
and after 10, 30 and 100 simulated corrections: pool questions labelled by a user with their true
category through the production path (`PostgresLabels.set_user_label`), then classified by the
production `Classifier` (corrections read, embedded once and stored, scored as near-duplicate evidence).

The correction threshold (`NEAR_DUPLICATE`) is chosen on the pool alone: 30 pool questions as
corrections, the rest of the pool as the validation set (2.0 is "corrections never count"); the
held-apart half never takes part.
Targets: zero-shot >= 75%, with examples >= 90%, after 30 corrections >= 92%.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg

from bench.classify_accuracy import accuracy_project
from bench.labelling_support import bench_database, bench_settings
from threadline.bootstrap import Container
from threadline.domain.classification import NEAR_DUPLICATE, Classifier

DATA = Path(__file__).resolve().parent / "data"
STEPS = (10, 30, 100)
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 2.0)


def split(rows: Sequence[dict[str, str]], seed: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Per category, half held apart and half in the correction pool; the pool shuffled across categories."""
    rng = random.Random(seed)
    held: list[dict[str, str]] = []
    pool: list[dict[str, str]] = []
    for name in sorted({r["category"] for r in rows}):
        mine = [r for r in rows if r["category"] == name]
        rng.shuffle(mine)
        held.extend(mine[: len(mine) // 2])
        pool.extend(mine[len(mine) // 2 :])
    rng.shuffle(pool)
    return held, pool


def accuracy(classifier: Classifier, project_id: UUID, rows: Sequence[dict[str, str]], names: dict[UUID, str]) -> float:
    """Share of `rows` the classifier puts in their true category."""
    decisions = classifier.classify(project_id, [(uuid4(), r["question"]) for r in rows])
    return sum(names[d.category_id] == r["category"] for d, r in zip(decisions, rows, strict=True)) / len(rows)


def seed_threads(url: str, project_id: UUID, rows: Sequence[dict[str, str]]) -> list[UUID]:
    """One thread per pool question, as the chat would have created it."""
    with psycopg.connect(url) as conn:
        return [
            conn.execute(
                "INSERT INTO threads (project_id, first_question, message_count) VALUES (%s, %s, 1) RETURNING id",
                (project_id, r["question"]),
            ).fetchone()[0]  # type: ignore[index]
            for r in rows
        ]


def main(argv: list[str] | None = None) -> None:
    """Print held-apart accuracy before and after corrections."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.classify_learning", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    cats: list[dict[str, Any]] = json.loads((DATA / "classification_categories.json").read_text())
    rows = [json.loads(line) for line in (DATA / "classification.jsonl").read_text().splitlines() if line.strip()]
    held, pool = split(rows, args.seed)
    print(f"{len(rows)} questions, {len(cats)} categories: {len(held)} held apart, {len(pool)} in the correction pool")
    with bench_database() as url:
        container = Container(bench_settings(url))
        try:
            labels = container.labels

            def classifier(use_examples: bool = True, near_duplicate: float = NEAR_DUPLICATE) -> Classifier:
                return Classifier(
                    container.categories,
                    container.embedder,
                    use_examples=use_examples,
                    corrections=labels,
                    near_duplicate=near_duplicate,
                )

            # The threshold, chosen on the pool: its first 30 as corrections, the rest as validation.
            tuning = accuracy_project(container, cats)
            names = {c.id: c.name for c in container.categories.list_categories(tuning)}
            ids = {name: i for i, name in names.items()}
            for thread_id, row in zip(seed_threads(url, tuning, pool[:30]), pool[:30], strict=True):
                labels.set_user_label(tuning, thread_id, ids[row["category"]])
            validation = {t: accuracy(classifier(near_duplicate=t), tuning, pool[30:], names) for t in THRESHOLDS}
            shown = "  ".join(f"{t:g}: {a:.1%}" for t, a in validation.items())
            print(f"near-duplicate threshold on the pool's validation part ({len(pool) - 30} questions): {shown}")
            print(f"  default NEAR_DUPLICATE = {NEAR_DUPLICATE:g}")

            project_id = accuracy_project(container, cats)
            names = {c.id: c.name for c in container.categories.list_categories(project_id)}
            ids = {name: i for i, name in names.items()}
            print(f"\nheld-apart accuracy ({len(held)} questions):")
            zero_shot = accuracy(classifier(use_examples=False), project_id, held, names)
            print(f"  zero-shot (name + description)   {zero_shot:6.1%}   target >= 75%")
            with_examples = accuracy(classifier(), project_id, held, names)
            print(f"  with the categories' examples    {with_examples:6.1%}   target >= 90%")
            threads = seed_threads(url, project_id, pool)
            learning = classifier()  # one instance: its cache must notice each new correction
            done = 0
            for step in STEPS:
                for thread_id, row in zip(threads[done:step], pool[done:step], strict=True):
                    labels.set_user_label(project_id, thread_id, ids[row["category"]])
                done = step
                after = accuracy(learning, project_id, held, names)
                target = "   target >= 92%" if step == 30 else ""
                print(f"  after {step:>3} corrections            {after:6.1%}{target}")
        finally:
            container.close()


if __name__ == "__main__":
    main()
