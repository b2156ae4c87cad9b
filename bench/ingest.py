"""Document ingestion throughput against the raw passage-embedding rate, on >= 10 MB of real HTML.

The corpus is the Python 3.11 documentation as Debian ships it (package python3.11-doc: ~500 HTML
pages, 60 MB), fetched by `apt-get download` into .local/corpus/ on the first run (not committed) and
unpacked with `dpkg-deb -x`; the first `--mb` megabytes of its library reference, in name order, are
ingested. Each page goes through the real pipeline (`domain.documents.ingest`: hash, claim, parse,
token-aware chunking, embedding in batches, binary COPY into Postgres with the HNSW index).

The raw rate is the same model embedding the same kind of text with nothing else: chunks drawn evenly
from the whole corpus, cut as the pipeline cuts them, in the pipeline's batch size, measured before and
after the ingestion (their mean, so a load change during the run hits both sides).
Target: ingestion chunks/s >= 0.7 x the raw rate.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from bench.labelling_support import bench_database, bench_settings, new_project
from threadline.bootstrap import Container
from threadline.domain.chunking import chunk_sections
from threadline.domain.documents import EMBED_BATCH, Upload, embed_batched, ingest
from threadline.domain.parsing import DocumentFormat, parse

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "python3.11-doc"
CORPUS = REPO_ROOT / ".local" / "corpus" / PACKAGE
HTML_ROOT = CORPUS / "usr" / "share" / "doc" / "python3.11" / "html"


def fetch_corpus() -> Path:
    """The unpacked package (downloaded once: apt-get download needs no root and installs nothing)."""
    if HTML_ROOT.is_dir():
        return HTML_ROOT
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "-q", PACKAGE], cwd=tmp, check=True)
        (deb,) = Path(tmp).glob("*.deb")
        CORPUS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(CORPUS)], check=True)
    return HTML_ROOT


def corpus_files(root: Path, megabytes: float) -> list[Path]:
    """Library reference pages in name order, until `megabytes` of HTML."""
    chosen: list[Path] = []
    total = 0
    for path in sorted((root / "library").glob("*.html")):
        if total >= megabytes * 1024 * 1024:
            break
        chosen.append(path)
        total += path.stat().st_size
    return chosen


def raw_sample(files: list[Path], container: Container, size: int) -> list[str]:
    """`size` chunks drawn evenly from the whole corpus, cut exactly as the pipeline cuts them.

    Drawn from every page, not the first ones: chunk lengths vary by page, and the model's time grows with
    a batch's longest text, so a sample of the first pages measured a raw rate the corpus as a whole never
    had (the 10 MB run read 0.65 with the first pages' 256 chunks as the raw side).
    """
    texts: list[str] = []
    for path in files:
        sections = parse(path.read_bytes(), DocumentFormat.HTML).sections
        texts.extend(d.embedding_text for d in chunk_sections(sections, container.embedder))
    step = max(1, len(texts) // size)
    return texts[::step][:size]


def raw_rate(container: Container, texts: list[str]) -> float:
    """Chunks per second of the model alone, in the pipeline's batches."""
    started = time.perf_counter()
    embed_batched(container.embedder, texts, EMBED_BATCH)
    return len(texts) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    """Ingest the corpus, print chunks/s beside the raw embedding rate of the same run."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--mb", type=float, default=10.0, help="megabytes of HTML to ingest")
    parser.add_argument("--raw-chunks", type=int, default=256, help="chunks embedded for the raw rate, each time")
    args = parser.parse_args(argv)
    files = corpus_files(fetch_corpus(), args.mb)
    size = sum(p.stat().st_size for p in files)
    print(f"corpus: {len(files)} pages of {PACKAGE}'s library reference, {size / 1024 / 1024:.1f} MB of HTML")
    with bench_database() as url:
        container = Container(bench_settings(url))
        try:
            project_id = new_project(container, "ingest")
            sample = raw_sample(files, container, args.raw_chunks)
            container.embedder.embed(sample[:EMBED_BATCH])  # warm-up: arena and first-run allocations
            before = raw_rate(container, sample)
            print(f"raw embedding before: {before:.1f} chunks/s ({len(sample)} chunks)", flush=True)
            chunks = 0
            started = time.perf_counter()
            for path in files:
                upload = Upload(path.read_bytes(), path.name, "text/html")
                document, _ = ingest(container.documents, container.embedder, project_id, upload)
                chunks += document.chunk_count
            took = time.perf_counter() - started
            after = raw_rate(container, sample)
            print(f"raw embedding after: {after:.1f} chunks/s", flush=True)
            raw = (before + after) / 2
            rate = chunks / took
            print(f"ingested {len(files)} documents, {chunks:,} chunks in {took:.1f} s: {rate:.1f} chunks/s")
            print(f"ingestion / raw embedding: {rate / raw:.2f} (target >= 0.7)")
        finally:
            container.close()


if __name__ == "__main__":
    main()
