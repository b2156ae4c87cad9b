"""(d) Accuracy of the default (embedding) classifier on bench/data/classification.jsonl.

The set: 216 support questions over 6 categories, written for this benchmark; the categories, with
descriptions and 5 example questions each, are in bench/data/classification_categories.json (no
example question appears in the set). Measured with and without the example questions. Target: >= 85%
with examples.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from bench.labelling_support import bench_database, bench_settings, new_project
from threadline.bootstrap import Container
from threadline.domain import categories
from threadline.domain.classification import Classifier
from threadline.domain.ports import Embedder

DATA = Path(__file__).resolve().parent / "data"


def _load(limit: int | None) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    cats = json.loads((DATA / "classification_categories.json").read_text())
    rows = [json.loads(line) for line in (DATA / "classification.jsonl").read_text().splitlines() if line.strip()]
    return cats, rows[:limit] if limit else rows


def accuracy_project(container: Container, cats: list[dict[str, Any]]) -> UUID:
    """A project holding exactly the benchmark's categories."""
    project_id = new_project(container, "accuracy")
    for existing in container.categories.list_categories(project_id):
        container.categories.delete_category(project_id, existing.id)
    for c in cats:
        categories.create_category(container.categories, project_id, c["name"], c["description"], c["examples"])
    return project_id


def predictions(
    container: Container, embedder: Embedder, project_id: UUID, rows: list[dict[str, str]], use_examples: bool
) -> list[str]:
    """The category name the embedding classifier picks for each question, with `embedder`."""
    names = {c.id: c.name for c in container.categories.list_categories(project_id)}
    questions = [(uuid4(), str(r["question"])) for r in rows]
    decisions = Classifier(container.categories, embedder, use_examples=use_examples).classify(project_id, questions)
    return [names[d.category_id] for d in decisions]


def main(argv: list[str] | None = None) -> None:
    """Print accuracy with and without examples, per category, and the most frequent confusions."""
    parser = argparse.ArgumentParser(prog="python -m bench.classify_accuracy", description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    args = parser.parse_args(argv)
    cats, rows = _load(args.limit)
    with bench_database() as url:
        container = Container(bench_settings(url))
        try:
            project_id = accuracy_project(container, cats)
            print(f"questions: {len(rows)}, categories: {len(cats)}")
            truth = [r["category"] for r in rows]
            for use_examples in (False, True):
                predicted = predictions(container, container.embedder, project_id, rows, use_examples)
                hits = sum(p == t for p, t in zip(predicted, truth, strict=True))
                label = "with examples   " if use_examples else "without examples"
                print(f"accuracy {label}: {hits / len(rows):.1%} ({hits}/{len(rows)})")
                if use_examples:
                    per = Counter(t for p, t in zip(predicted, truth, strict=True) if p == t)
                    totals = Counter(truth)
                    for name in sorted(totals):
                        print(f"  {name:<20} {per[name] / totals[name]:.0%} ({per[name]}/{totals[name]})")
                    confusions = Counter((t, p) for p, t in zip(predicted, truth, strict=True) if p != t)
                    for (t, p), n in confusions.most_common(5):
                        print(f"  confused {t} -> {p}: {n}")
            print("target: >= 85% with examples")
        finally:
            container.close()


if __name__ == "__main__":
    main()
