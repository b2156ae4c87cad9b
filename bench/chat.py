"""Chat benchmark: time to the first `token` event, and recall@10 of filtered HNSW against exact search.

    python -m bench.chat                       # full scale: 100,000 chunks over 10 projects, 200 requests
    python -m bench.chat --chunks 20000 --requests 100 --unique 1000   # a quick run

The corpus is synthetic support documentation written from templates (products, features, actions,
problems). `--unique` passages are embedded for real with the production model (and cached under
.local/bench); the remaining chunks are blends: a passage plus the first sentence of another, with the
vector the normalised blend of the two real embeddings plus a little noise, because embedding 100,000
passages costs many minutes on two busy cores. Chunks and
documents are bulk-loaded with COPY, then the HNSW index is built. The app runs on a real uvicorn in its
own process, with a real OpenAI-compatible server (the stub, in another process) that answers instantly;
the client measures from sending the request to receiving the first `token` event, one request at a time.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
from httpx_sse import connect_sse
from pgvector.psycopg import register_vector

from threadline.adapters.postgres.chat import _VECTOR_NEW as _RETRIEVE_NEW
from threadline.adapters.postgres.migrate import migrate
from threadline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

PRODUCTS = [
    "Ledger",
    "Beacon",
    "Orbit",
    "Quill",
    "Harbor",
    "Pulse",
    "Atlas",
    "Canvas",
    "Relay",
    "Summit",
    "Vault",
    "Nimbus",
]
FEATURES = [
    "single sign-on",
    "API keys",
    "webhooks",
    "CSV export",
    "invoices",
    "user roles",
    "audit log",
    "backups",
    "two-factor authentication",
    "email notifications",
    "custom domains",
    "rate limits",
    "data retention",
    "mobile app",
    "search index",
    "billing plans",
    "team invitations",
    "file uploads",
    "dashboards",
    "reports",
    "integrations",
    "scheduled jobs",
    "password reset",
    "IP allowlists",
    "SAML metadata",
    "usage quotas",
    "dark mode",
    "time zones",
    "translations",
    "offline mode",
]
ACTIONS = [
    "enable",
    "disable",
    "configure",
    "reset",
    "export",
    "import",
    "rotate",
    "delete",
    "restore",
    "upgrade",
    "share",
    "schedule",
    "monitor",
    "troubleshoot",
    "migrate",
    "audit",
    "limit",
    "verify",
    "sync",
    "rename",
]
PROBLEMS = [
    "a 403 error",
    "a timeout",
    "missing data",
    "a blank page",
    "duplicate entries",
    "a failed payment",
    "an expired token",
    "slow loading",
    "a sync conflict",
    "an invalid signature",
    "a locked account",
    "a quota exceeded message",
    "a certificate warning",
    "a stuck job",
    "an empty export",
]


@dataclass(frozen=True)
class Topic:
    """What one synthetic passage is about."""

    product: str
    feature: str
    action: str
    problem: str

    def passage(self, rng: random.Random) -> str:
        """A few sentences of documentation about the topic."""
        n, m = rng.randint(2, 90), rng.randint(1, 24)
        sentences = [
            f"To {self.action} {self.feature} in {self.product}, open Settings and choose {self.feature.title()}.",
            f"Only workspace administrators can {self.action} {self.feature}; other members see a read-only view.",
            f"Changes take effect within {n} seconds and are recorded in the audit log.",
            f"If you see {self.problem} after you {self.action} {self.feature}, sign out, wait {m} minutes and retry.",
            f"{self.product} keeps the previous {self.feature} configuration for {n} days so you can roll back.",
            f"The API exposes the same operation as POST /v{m % 3 + 1}/{self.feature.replace(' ', '-')}/{self.action}.",
        ]
        rng.shuffle(sentences)
        return " ".join(sentences[: rng.randint(3, 5)])

    def question(self, rng: random.Random) -> str:
        """A user's question about the topic."""
        forms = [
            f"How do I {self.action} {self.feature} in {self.product}?",
            f"I get {self.problem} when I {self.action} {self.feature}, what should I do?",
            f"Who can {self.action} {self.feature}?",
            f"Is there an API to {self.action} {self.feature} in {self.product}?",
        ]
        return rng.choice(forms)


def _topics(count: int, rng: random.Random) -> list[Topic]:
    return [
        Topic(rng.choice(PRODUCTS), rng.choice(FEATURES), rng.choice(ACTIONS), rng.choice(PROBLEMS))
        for _ in range(count)
    ]


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    """A fresh database: on DATABASE_URL's server if given, else on an embedded server in a temporary folder."""
    if url:
        yield url
        return
    from threadline.local.postgres import start_embedded

    with tempfile.TemporaryDirectory(prefix="tlbench") as tmp:
        admin, server = start_embedded(Path(tmp) / "pg")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_chat")
        yield _dbname(admin, "bench_chat")
        server.cleanup()


def _dbname(url: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)  # type: ignore[arg-type]


def _embed_corpus(texts: Sequence[str], tokenizer: Path, cache_dir: Path) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Real embeddings of the unique passages, cached by content (re-runs skip minutes of embedding)."""
    from threadline.adapters.embeddings import OnnxMiniLM
    from threadline.domain.documents import embed_batched

    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cache = cache_dir / f"chat-embeddings-{len(texts)}-{digest}.npy"
    if cache.is_file():
        cached: np.ndarray[Any, np.dtype[np.float32]] = np.load(cache)
        print(f"loaded {len(texts):,} real passage embeddings from {cache}", flush=True)
        return cached
    model = OnnxMiniLM(tokenizer, Settings().embedding_model_path)
    started = time.perf_counter()
    vectors = embed_batched(model, texts, batch=64)
    took = time.perf_counter() - started
    print(f"embedded {len(texts):,} unique passages for real in {took:.1f} s ({len(texts) / took:.0f}/s)", flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def _derive(
    vectors: np.ndarray[Any, np.dtype[np.float32]],
    first: np.ndarray[Any, Any],
    second: np.ndarray[Any, Any],
    rng: np.random.Generator,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Vectors of derived chunks: a passage blended with part of another, plus a little noise, normalised.

    Blends stay spread over the space the way distinct passages are; plain small perturbations would
    make clusters of near-identical vectors whose ranking is noise.
    """
    mixed = vectors[first] + 0.5 * vectors[second]
    noise = rng.normal(size=mixed.shape).astype(np.float32)
    mixed += 0.15 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    result: np.ndarray[Any, np.dtype[np.float32]] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return result


def _tenants(url: str, projects: int) -> list[tuple[uuid.UUID, str]]:
    from threadline.bootstrap import Container
    from threadline.domain import tenancy

    container = Container(Settings(database_url=url))
    try:
        team = tenancy.create_team(container.tenancy, "bench")
        made = []
        for i in range(projects):
            project = tenancy.create_project(container.tenancy, team.id, f"project {i}")
            made.append((project.id, tenancy.issue_api_key(container.tenancy, project.id).key))
        return made
    finally:
        container.close()


def _load(
    url: str,
    tenants: list[tuple[uuid.UUID, str]],
    texts: list[str],
    vectors: np.ndarray[Any, Any],
    chunks: int,
    docs_per_project: int,
) -> None:
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        register_vector(conn)
        conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw")
        documents = [(uuid.uuid4(), pid, d) for pid, _ in tenants for d in range(docs_per_project)]
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY documents (id, project_id, title, content_type, content_hash, status, chunk_count)"
                " FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["uuid", "uuid", "text", "text", "text", "text", "int4"])
            for doc_id, pid, d in documents:
                copy.write_row(
                    (doc_id, pid, f"Guide {d}", "text/markdown", f"{pid}-{d}", "ready", chunks // len(documents))
                )
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY chunks (document_id, project_id, ordinal, heading, content, embedding)"
                " FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(["uuid", "uuid", "int4", "text", "text", "vector"])
            for start in range(0, chunks, 10_000):
                size = min(10_000, chunks - start)
                first = np.array([(start + i) % len(texts) for i in range(size)])
                second = rng.integers(0, len(texts), size=size)
                derived = _derive(vectors, first, second, rng)
                for i in range(size):
                    n = start + i
                    doc_id, pid, _ = documents[n % len(documents)]
                    if n < len(texts):
                        copy.write_row((doc_id, pid, n, "Guide", texts[first[i]], vectors[first[i]]))
                    else:
                        text = f"{texts[first[i]]} {texts[second[i]].split('. ')[0]}."
                        copy.write_row((doc_id, pid, n, "Guide", text, derived[i]))
        conn.commit()
        took = time.perf_counter() - started
        print(f"loaded {chunks:,} chunks in {len(documents):,} documents with COPY in {took:.1f} s", flush=True)
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(
            "CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops)"
            " WITH (m = 16, ef_construction = 64)"
        )
        conn.execute("ANALYZE chunks")
        conn.commit()
        print(f"built the HNSW index in {time.perf_counter() - started:.1f} s", flush=True)


def _serve_app(url: str, llm_url: str, port: int, tokenizer: str, ef_search: int) -> None:
    import uvicorn

    from threadline.api.app import create_app
    from threadline.bootstrap import Container

    settings = Settings(
        database_url=url,
        openai_base_url=llm_url,
        openai_api_key="bench",
        llm_model="bench",
        embedding_tokenizer_path=Path(tokenizer),
        retrieval_ef_search=ef_search,
    )
    container = Container(settings)
    container.query_embedder.embed(["warm up"])  # the model loads at start, as it does in a warm Lambda
    uvicorn.run(create_app(container), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _serve_llm(port: int) -> None:
    import uvicorn

    from threadline.local.openai_stub import OpenAIStub

    uvicorn.run(OpenAIStub().app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _measure_ttft(
    base: str, tenants: list[tuple[uuid.UUID, str]], questions: list[str], requests: int, warmup: int
) -> None:
    rng = random.Random(11)
    client_ttft: list[float] = []
    server_ttft: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(warmup + requests):
            project, key = rng.choice(tenants)
            started = time.perf_counter()
            first: float | None = None
            with connect_sse(
                client,
                "POST",
                f"/query/v1/projects/{project}/chat/stream/",
                json={"query": rng.choice(questions)},
                headers={"X-API-KEY": key},
            ) as source:
                for event in source.iter_sse():
                    if event.event == "token" and first is None:
                        first = (time.perf_counter() - started) * 1000
                    if event.event == "done" and i >= warmup:
                        server_ttft.append(float(event.json()["first_token_ms"]))
                    if event.event == "error":
                        raise RuntimeError(event.data)
            if i >= warmup and first is not None:
                client_ttft.append(first)
    print(
        f"time to first token over {len(client_ttft)} warm requests (client-side, request sent -> first token event):"
    )
    print(f"  p50 {_percentile(client_ttft, 50):.1f} ms   (target <= 30 ms)")
    print(f"  p95 {_percentile(client_ttft, 95):.1f} ms   (target <= 60 ms)")
    p99, mean = _percentile(client_ttft, 99), statistics.fmean(client_ttft)
    print(f"  p99 {p99:.1f} ms, mean {mean:.1f} ms, max {max(client_ttft):.1f} ms")
    p50, p95 = _percentile(server_ttft, 50), _percentile(server_ttft, 95)
    print(f"  server-side (after auth, from the route's start): p50 {p50:.0f} ms, p95 {p95:.0f} ms")


def _recall_pass(
    conn: psycopg.Connection[Any], queries: list[tuple[uuid.UUID, str]], vectors: Any, truth: list[set[int]]
) -> tuple[float, list[float], bool]:
    hits, took = 0.0, []
    for (pid, _), vector, expected in zip(queries, vectors, truth, strict=True):
        started = time.perf_counter()
        rows = conn.execute(
            _RETRIEVE_NEW, {"project_id": pid, "vector": vector, "top_k": 10, "candidates": 10}
        ).fetchall()
        took.append((time.perf_counter() - started) * 1000)
        hits += len({r[0] for r in rows} & expected) / max(1, len(expected))
    params = {"project_id": queries[0][0], "vector": vectors[0], "top_k": 10, "candidates": 10}
    plan = conn.execute("EXPLAIN " + _RETRIEVE_NEW, params).fetchall()
    return hits / len(queries), took, any("chunks_embedding_hnsw" in str(r[0]) for r in plan)


def _measure_recall(
    url: str,
    tenants: list[tuple[uuid.UUID, str]],
    questions: list[str],
    tokenizer: Path,
    per_project: int,
    ef_values: Sequence[int],
) -> None:
    from threadline.adapters.embeddings import OnnxMiniLM

    model = OnnxMiniLM(tokenizer, Settings().embedding_model_path)
    rng = random.Random(5)
    queries = [(pid, rng.choice(questions)) for pid, _ in tenants for _ in range(per_project)]
    vectors = model.embed([q for _, q in queries])
    with psycopg.connect(url) as conn:
        register_vector(conn)
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        # Exact: no index scan at all, so every row of the project is compared.
        conn.execute("SET enable_indexscan = off")
        truth = [
            {
                r[0]
                for r in conn.execute(
                    _RETRIEVE_NEW, {"project_id": pid, "vector": v, "top_k": 10, "candidates": 10}
                ).fetchall()
            }
            for (pid, _), v in zip(queries, vectors, strict=True)
        ]
        conn.execute("RESET enable_indexscan")
        conn.commit()
        for ef in ef_values:
            conn.execute(f"SET hnsw.ef_search = {int(ef)}")
            recall, took, uses_hnsw = _recall_pass(conn, queries, vectors, truth)
            print(
                f"ef_search={ef}: the production query (planner's choice; HNSW used: {uses_hnsw}):"
                f" recall@10 {recall:.3f} over {len(queries)} queries, p50 {_percentile(took, 50):.2f} ms,"
                f" p95 {_percentile(took, 95):.2f} ms"
            )
            # Forced HNSW: without the project index (dropped inside a transaction that is rolled back)
            # the filtered vector index scan is the only fast plan; this is the figure the target is about.
            conn.execute("DROP INDEX chunks_project_idx")
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            recall, took, uses_hnsw = _recall_pass(conn, queries, vectors, truth)
            conn.rollback()
            print(
                f"ef_search={ef}: filtered HNSW forced (used: {uses_hnsw}): recall@10 {recall:.3f} (target >= 0.95),"
                f" p50 {_percentile(took, 50):.2f} ms, p95 {_percentile(took, 95):.2f} ms"
            )


def main(argv: list[str] | None = None) -> None:
    """Build the corpus, serve the app, and print TTFT and recall."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.chat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument(
        "--unique", type=int, default=2_000, help="passages embedded for real; the rest are blends of them"
    )
    parser.add_argument("--docs-per-project", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--recall-queries", type=int, default=30, help="per project")
    parser.add_argument(
        "--ef-search", type=int, nargs="+", default=[100, 400, 800], help="values the recall is measured at"
    )
    parser.add_argument("--serve-ef-search", type=int, default=400, help="RETRIEVAL_EF_SEARCH of the served app")
    parser.add_argument("--cache-dir", default=str(ROOT / ".local" / "bench"), help="where real embeddings are cached")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    args = parser.parse_args(argv)
    tokenizer = Settings().embedding_tokenizer_path

    rng = random.Random(3)
    topics = _topics(args.unique, rng)
    texts = [t.passage(rng) for t in topics]
    questions = [t.question(rng) for t in topics[: max(50, args.unique // 4)]]
    vectors = _embed_corpus(texts, tokenizer, Path(args.cache_dir))
    with _database(args.database_url or None) as url:
        migrate(url, ROOT / "infra" / "db" / "migrations")
        tenants = _tenants(url, args.projects)
        _load(url, tenants, texts, vectors, args.chunks, args.docs_per_project)
        _measure_recall(url, tenants, questions, tokenizer, args.recall_queries, args.ef_search)
        from threadline.local.moto_server import free_port

        app_port, llm_port = free_port(), free_port()
        context = multiprocessing.get_context("spawn")
        llm = context.Process(target=_serve_llm, args=(llm_port,), daemon=True)
        app = context.Process(
            target=_serve_app,
            args=(url, f"http://127.0.0.1:{llm_port}/v1", app_port, str(tokenizer), args.serve_ef_search),
            daemon=True,
        )
        llm.start()
        app.start()
        try:
            _wait(f"http://127.0.0.1:{app_port}/health")
            _measure_ttft(f"http://127.0.0.1:{app_port}", tenants, questions, args.requests, args.warmup)
        finally:
            app.terminate()
            llm.terminate()
            app.join(10)
            llm.join(10)


if __name__ == "__main__":
    main()
