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

With --llm-url (any OpenAI-compatible server: OpenAI, vLLM, Ollama, llama.cpp's server), the same
held-apart half is then classified by that LLM through the production chooser (structured output, the
answer validated against the project's ids), in a project of its own: as primary classifier before any
correction, and after the pool's first 30 corrections, when its prompt carries the 8 nearest of them as
precedents; then as the fallback it is by default (only questions under the margin are asked). Each line
says how many questions the LLM decided (an unusable answer leaves the embedding verdict). The key, if the
server needs one, is read from OPENAI_API_KEY (never from the command line, where `ps` shows it).

    python -m bench.classify_learning --llm-url http://127.0.0.1:8080/v1 --llm-model my-model
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg

from bench.classify_accuracy import accuracy_project
from bench.labelling_support import bench_database, bench_settings
from threadline.bootstrap import Container
from threadline.domain.classification import NEAR_DUPLICATE, CategoryChooser, Classifier
from threadline.domain.ports import LabelDecision

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


def decide(classifier: Classifier, project_id: UUID, rows: Sequence[dict[str, str]]) -> list[LabelDecision]:
    """The classifier's decision for each of `rows`, in order."""
    return classifier.classify(project_id, [(uuid4(), r["question"]) for r in rows])


def share_right(decisions: Sequence[LabelDecision], rows: Sequence[dict[str, str]], names: dict[UUID, str]) -> float:
    """Share of `rows` whose decision is their true category."""
    return sum(names[d.category_id] == r["category"] for d, r in zip(decisions, rows, strict=True)) / len(rows)


def accuracy(classifier: Classifier, project_id: UUID, rows: Sequence[dict[str, str]], names: dict[UUID, str]) -> float:
    """Share of `rows` the classifier puts in their true category."""
    return share_right(decide(classifier, project_id, rows), rows, names)


def label(container: Container, project_id: UUID, threads: Sequence[UUID], rows: Sequence[dict[str, str]]) -> None:
    """The user labels a team would set: each thread in its row's true category."""
    ids = {c.name: c.id for c in container.categories.list_categories(project_id)}
    for thread_id, row in zip(threads, rows, strict=True):
        container.labels.set_user_label(project_id, thread_id, ids[row["category"]])


def measure_llm(
    container: Container,
    url: str,
    chooser: CategoryChooser,
    cats: list[dict[str, Any]],
    held: Sequence[dict[str, str]],
    pool: Sequence[dict[str, str]],
) -> None:
    """Held-apart accuracy with the LLM as primary, before and after 30 corrections, then as the fallback."""
    project_id = accuracy_project(container, cats)
    names = {c.id: c.name for c in container.categories.list_categories(project_id)}

    def line(title: str, classifier: Classifier) -> None:
        started = time.perf_counter()
        decisions = decide(classifier, project_id, held)
        asked = sum(not d.model.startswith("embedding:") for d in decisions)
        print(
            f"  {title:<44} {share_right(decisions, held, names):6.1%}   decided by the LLM {asked}/{len(held)}"
            f" ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )

    def classifier(primary: bool) -> Classifier:
        return Classifier(
            container.categories, container.embedder, chooser=chooser, llm_primary=primary, corrections=container.labels
        )

    print(f"\nheld-apart accuracy with the LLM ({chooser.name}):")
    line("primary, no corrections", classifier(True))
    label(container, project_id, seed_threads(url, project_id, pool[:30]), pool[:30])
    line("primary, after 30 (8 nearest in the prompt)", classifier(True))
    line("fallback under the margin, after 30", classifier(False))


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
    parser.add_argument("--llm-url", help="an OpenAI-compatible base URL (ending in /v1): also measure that LLM")
    parser.add_argument("--llm-model", default="default", help="the model name the LLM server is asked for")
    args = parser.parse_args(argv)
    cats: list[dict[str, Any]] = json.loads((DATA / "classification_categories.json").read_text())
    rows = [json.loads(line) for line in (DATA / "classification.jsonl").read_text().splitlines() if line.strip()]
    held, pool = split(rows, args.seed)
    print(f"{len(rows)} questions, {len(cats)} categories: {len(held)} held apart, {len(pool)} in the correction pool")
    with bench_database() as url:
        settings = bench_settings(url)
        if args.llm_url:
            settings.openai_base_url, settings.openai_api_key, settings.llm_model = (
                args.llm_url,
                os.environ.get("OPENAI_API_KEY", ""),
                args.llm_model,
            )
            settings.llm_timeout_s = max(settings.llm_timeout_s, 120.0)  # a model on this machine's CPUs is slow
        container = Container(settings)
        try:

            def classifier(use_examples: bool = True, near_duplicate: float = NEAR_DUPLICATE) -> Classifier:
                return Classifier(
                    container.categories,
                    container.embedder,
                    use_examples=use_examples,
                    corrections=container.labels,
                    near_duplicate=near_duplicate,
                )

            # The threshold, chosen on the pool: its first 30 as corrections, the rest as validation.
            tuning = accuracy_project(container, cats)
            names = {c.id: c.name for c in container.categories.list_categories(tuning)}
            label(container, tuning, seed_threads(url, tuning, pool[:30]), pool[:30])
            validation = {t: accuracy(classifier(near_duplicate=t), tuning, pool[30:], names) for t in THRESHOLDS}
            shown = "  ".join(f"{t:g}: {a:.1%}" for t, a in validation.items())
            print(f"near-duplicate threshold on the pool's validation part ({len(pool) - 30} questions): {shown}")
            print(f"  default NEAR_DUPLICATE = {NEAR_DUPLICATE:g}")

            project_id = accuracy_project(container, cats)
            names = {c.id: c.name for c in container.categories.list_categories(project_id)}
            print(f"\nheld-apart accuracy ({len(held)} questions):")
            zero_shot = accuracy(classifier(use_examples=False), project_id, held, names)
            print(f"  zero-shot (name + description)   {zero_shot:6.1%}   target >= 75%")
            with_examples = accuracy(classifier(), project_id, held, names)
            print(f"  with the categories' examples    {with_examples:6.1%}   target >= 90%")
            threads = seed_threads(url, project_id, pool)
            learning = classifier()  # one instance: its cache must notice each new correction
            done = 0
            for step in STEPS:
                label(container, project_id, threads[done:step], pool[done:step])
                done = step
                after = accuracy(learning, project_id, held, names)
                target = "   target >= 92%" if step == 30 else ""
                print(f"  after {step:>3} corrections            {after:6.1%}{target}")
            chooser = container.classifier.chooser
            if chooser is not None:
                measure_llm(container, url, chooser, cats, held, pool)
        finally:
            container.close()


if __name__ == "__main__":
    main()
