"""Chat benchmark: search recall and latency before/after per-project graphs, then time to the first token.

    python -m bench.chat                       # full scale: 100,000 chunks over 10 projects, 20 concurrent streams
    python -m bench.chat --chunks 20000 --requests 100 --unique 1000   # a quick run

The corpus is synthetic support documentation written from templates (products, features, actions,
problems). `--unique` passages are embedded for real with the production model (and cached under
.local/bench); the remaining chunks are blends: a passage plus the first sentence of another, with the
vector the normalised blend of the two real embeddings plus a little noise, because embedding 100,000
passages costs many minutes on two busy cores. Chunks and documents are bulk-loaded with COPY into the
partitioned table (one partition and one HNSW graph per project, migration 0015); the old layout (one table,
one graph over every project) is rebuilt beside it from the same rows, so recall@10 against exact search and
search p50/p95 are printed before and after in one run, for project-wide searches and for threads scoped to
one document. The app then runs on a real uvicorn in its own process, with a real OpenAI-compatible server
(the stub, in another process) that answers instantly; the client measures from sending the request to
receiving the first `token` event, one stream at a time, then with --concurrency streams at once. With
--environments N the app runs in N processes and the concurrent clients spread over them: at N = concurrency
each stream has an app of its own, as each has an execution environment of its own in Lambda.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import psutil  # type: ignore[import-untyped]
import psycopg
from httpx_sse import connect_sse
from pgvector.psycopg import register_vector

from bench.caching import embeddings_key
from threadline.adapters.postgres.chat import _RETRIEVE_IN_THREAD, _RETRIEVE_NEW
from threadline.adapters.postgres.migrate import migrate
from threadline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# The old layout, rebuilt beside the partitioned table so before and after are measured in one run.
SINGLE = "chunks_single_graph"

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
    from threadline.local.postgres import embedded_server

    with tempfile.TemporaryDirectory(prefix="tlbench") as tmp, embedded_server(Path(tmp) / "pg") as admin:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_chat")
        yield _dbname(admin, "bench_chat")


def _dbname(url: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo(**params)  # type: ignore[arg-type]


def _embed_corpus(texts: Sequence[str], tokenizer: Path, cache_dir: Path) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Real embeddings of the unique passages, cached by content (re-runs skip minutes of embedding)."""
    from threadline.adapters.embeddings import OnnxMiniLM
    from threadline.domain.documents import embed_batched

    model_path = Settings().embedding_model_path
    cache = cache_dir / f"chat-embeddings-{len(texts)}-{embeddings_key(texts, model_path)}.npy"
    if cache.is_file():
        cached: np.ndarray[Any, np.dtype[np.float32]] = np.load(cache)
        print(f"loaded {len(texts):,} real passage embeddings from {cache}", flush=True)
        return cached
    model = OnnxMiniLM(tokenizer, model_path)
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


@contextmanager
def chunk_copy(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Copy]:
    """A binary COPY of (document_id, project_id, ordinal, heading, content, embedding) rows into chunks; Postgres
    computes the generated full-text columns, and the statement-level triggers keep the lexeme and chunk counts."""
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY chunks (document_id, project_id, ordinal, heading, content, embedding)"
            " FROM STDIN WITH (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["uuid", "uuid", "int4", "text", "text", "vector"])
        yield copy


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
        # The graphs are rebuilt after the bulk load (faster than inserting into them row by row), with the
        # storage parameters (m, ef_construction) the migrations gave the index, for both layouts.
        definition = conn.execute("SELECT pg_get_indexdef('chunks_embedding_hnsw'::regclass)").fetchone()
        graph = str(definition[0])[str(definition[0]).index(" WITH (") :] if definition else ""
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
        with chunk_copy(conn) as copy:
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
        # The partitioned index: one graph per project's partition (migration 0015).
        conn.execute(f"CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops){graph}")
        conn.execute("ANALYZE chunks")
        conn.commit()
        print(f"built the per-project HNSW graphs{graph} in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        # The layout before migration 0015, for the before figures of the same run: one table, one graph over
        # every project's chunks, a project index.
        conn.execute(f"CREATE TABLE {SINGLE} AS SELECT * FROM chunks")
        conn.execute(f"CREATE INDEX {SINGLE}_project_idx ON {SINGLE} (project_id)")
        conn.execute(f"CREATE INDEX {SINGLE}_document_idx ON {SINGLE} (document_id, ordinal)")
        conn.execute(f"CREATE INDEX {SINGLE}_hnsw ON {SINGLE} USING hnsw (embedding vector_cosine_ops){graph}")
        conn.execute(f"ANALYZE {SINGLE}")
        conn.commit()
        print(f"built the single graph of the old layout in {time.perf_counter() - started:.1f} s", flush=True)


Http = Literal["auto", "h11", "httptools"]


def _serve_app(url: str, llm_url: str, port: int, tokenizer: str, ef_search: int, http: Http = "auto") -> None:
    import uvicorn

    from threadline.api.app import create_app, freeze_startup_objects
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
    app = create_app(container)
    # As the process-wide app that run.sh serves does (create_app() freezes when it builds its own container).
    # No difference measured here: --chunks 20000, 20 streams, p95 484 / 476 ms frozen against 461 ms not.
    freeze_startup_objects()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http=http,
    )


def _serve_llm(port: int) -> None:
    import uvicorn

    from threadline.local.openai_stub import OpenAIStub

    uvicorn.run(OpenAIStub().app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait(url: str, timeout_s: float = 300) -> None:
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


def _stream(client: httpx.Client, project: uuid.UUID, key: str, question: str) -> tuple[float, float]:
    """One chat stream: (client-side ms from sending to the first `token` event, the server's first_token_ms)."""
    started = time.perf_counter()
    first, server = float("nan"), float("nan")
    with connect_sse(
        client,
        "POST",
        f"/query/v1/projects/{project}/chat/stream/",
        json={"query": question},
        headers={"X-API-KEY": key},
    ) as source:
        for event in source.iter_sse():
            if event.event == "token" and first != first:  # NaN: no token yet
                first = (time.perf_counter() - started) * 1000
            if event.event == "done":
                server = float(event.json()["first_token_ms"])
            if event.event == "error":
                raise RuntimeError(event.data)
    return first, server


def _streams(
    base: str, tenants: list[tuple[uuid.UUID, str]], questions: list[str], count: int, seed: int
) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=60) as client:
        return [_stream(client, *rng.choice(tenants), rng.choice(questions)) for _ in range(count)]


def _concurrent(
    bases: Sequence[str], tenants: list[tuple[uuid.UUID, str]], questions: list[str], requests: int, concurrency: int
) -> list[tuple[float, float]]:
    """`requests` streams spread over `concurrency` clients that run at once, each with its own connection, client
    i to the app at bases[i mod len(bases)]."""
    results: list[tuple[float, float]] = []
    lock, start = threading.Lock(), threading.Barrier(concurrency)

    def worker(index: int) -> None:
        start.wait()
        base = bases[index % len(bases)]
        got = _streams(base, tenants, questions, max(1, requests // concurrency), 100 + index)
        with lock:
            results.extend(got)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return results


def _print_ttft(label: str, samples: list[tuple[float, float]], p50_target: float, p95_target: float) -> float:
    client = [c for c, _ in samples]
    server = [s for _, s in samples]
    p50, p95, p99 = (_percentile(client, q) for q in (50, 95, 99))
    print(
        f"  {label:<22} p50 {p50:6.1f} ms (target <= {p50_target:.0f})  p95 {p95:6.1f} ms (target <= {p95_target:.0f})"
        f"  p99 {p99:6.1f}  max {max(client):6.1f}  mean {statistics.fmean(client):6.1f};"
        f" server-side p50 {_percentile(server, 50):.0f} ms, p95 {_percentile(server, 95):.0f} ms"
        f"  ({len(client)} streams)"
    )
    return p95


class _Cpu:
    """CPU seconds of each process group of the benchmark (the client, the app, the model stub, Postgres).

    Every part shares the same cores, so with many streams at once TTFT is bound by the CPU one stream costs
    in all of them together: the breakdown says where a concurrent run's time goes.
    """

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        # A group is its root processes and everything below them, except the client's: the app and the stub
        # are its children.
        self._groups = groups

    def _processes(self, name: str, roots: Sequence[int]) -> list[Any]:
        found = []
        for pid in roots:
            try:
                root = psutil.Process(pid)
                found += [root] if name == "client" else [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return found

    def snapshot(self) -> dict[str, float]:
        """CPU seconds (user + system) so far, per group."""
        totals = {}
        for name, roots in self._groups.items():
            total = 0.0
            for proc in self._processes(name, roots):
                try:
                    times = proc.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
            totals[name] = total
        return totals


def _postmaster(url: str) -> list[int]:
    """The local server's postmaster (its backends are its children); none for a server on another host."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    pid_file = Path(row[0]) / "postmaster.pid" if row else None
    if pid_file is None or not pid_file.is_file():
        return []
    return [int(pid_file.read_text().splitlines()[0])]


def _timed(
    cpu: _Cpu | None, run: Callable[[], list[tuple[float, float]]]
) -> tuple[list[tuple[float, float]], float, dict[str, float]]:
    """The streams `run` measured, its wall seconds, and the CPU seconds each process group spent meanwhile."""
    before = cpu.snapshot() if cpu else {}
    started = time.perf_counter()
    samples = run()
    wall = time.perf_counter() - started
    after = cpu.snapshot() if cpu else {}
    return samples, wall, {name: after[name] - before[name] for name in after}


def _print_cpu(samples: list[tuple[float, float]], wall: float, spent: dict[str, float]) -> None:
    count = len(samples)
    parts = ", ".join(f"{name} {seconds * 1000 / count:.1f}" for name, seconds in spent.items())
    total = sum(spent.values()) * 1000 / count
    print(
        f"  {'':<22} {count / wall:.1f} streams/s; CPU ms per stream (whole stream, to `done`): {parts},"
        f" total {total:.1f} on {os.cpu_count()} cores"
    )


def _measure_ttft(
    bases: Sequence[str],
    tenants: list[tuple[uuid.UUID, str]],
    questions: list[str],
    requests: int,
    warmup: int,
    concurrency: int,
    cpu: _Cpu | None = None,
) -> None:
    """One stream at a time (to the first app), then `concurrency` at once (over every app), with the CPU of
    each part; every app is warmed first (its first requests load the chat routes and the model client)."""
    for base in bases:
        _streams(base, tenants, questions, max(3, warmup // len(bases)), 10)
    single, wall, spent = _timed(cpu, lambda: _streams(bases[0], tenants, questions, requests, 11))
    print("time to first token (client-side, request sent -> first `token` event), instant model, same run:")
    single_p95 = _print_ttft("one stream at a time", single, 25, 40)
    _print_cpu(single, wall, spent)
    if concurrency > 1:
        together, wall, spent = _timed(cpu, lambda: _concurrent(bases, tenants, questions, requests, concurrency))
        label = f"{concurrency} concurrent streams" + (f", {len(bases)} apps" if len(bases) > 1 else "")
        together_p95 = _print_ttft(label, together, 150, 150)
        _print_cpu(together, wall, spent)
        print(f"  p95 with {concurrency} concurrent streams / p95 of one: {together_p95 / single_p95:.1f}x")
    print(
        f"  (client, app, model stub and Postgres share these {os.cpu_count()} cores; load average now"
        f" {os.getloadavg()[0]:.1f})"
    )


# The thread-scoped statement before migration 0015 (one statement, the scope a filter on the HNSW scan).
_OLD_IN_THREAD = (
    "SELECT r.id AS chunk_id, r.document_id, d.title, r.heading, r.content, 1 - r.distance AS score"
    " FROM (SELECT c.id, c.document_id, c.heading, c.content, c.embedding <=> %(vector)s AS distance"
    "       FROM chunks c WHERE c.project_id = %(project_id)s"
    " AND ((SELECT t.document_ids FROM threads t WHERE t.id = %(thread_id)s AND t.project_id = %(project_id)s)"
    " IS NULL OR c.document_id = ANY((SELECT t.document_ids FROM threads t"
    " WHERE t.id = %(thread_id)s AND t.project_id = %(project_id)s)::uuid[]))"
    "       ORDER BY c.embedding <=> %(vector)s LIMIT %(top_k)s) r"
    " JOIN documents d ON d.id = r.document_id"
    " ORDER BY r.distance"
)


def _before(sql: str) -> str:
    """The statement as it was before migration 0015, on the old layout's single table."""
    old = _OLD_IN_THREAD if sql == _RETRIEVE_IN_THREAD else sql
    return old.replace("FROM chunks c", f"FROM {SINGLE} c")


def _uses_hnsw(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> bool:
    plan = "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + sql, params).fetchall())
    return "hnsw" in plan or "embedding_idx" in plan


def _search_pass(
    conn: psycopg.Connection[Any], sql: str, cases: list[dict[str, Any]], truth: list[set[int]]
) -> tuple[float, list[float], bool]:
    hits, took = 0.0, []
    for params, expected in zip(cases, truth, strict=True):
        started = time.perf_counter()
        rows = conn.execute(sql, params).fetchall()
        took.append((time.perf_counter() - started) * 1000)
        hits += len({r[0] for r in rows} & expected) / max(1, len(expected))
    return hits / len(cases), took, _uses_hnsw(conn, sql, cases[0])


def _scoped_threads(
    url: str, tenants: list[tuple[uuid.UUID, str]], per_project: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(project, thread) pairs: threads scoped to one random document of their project."""
    with psycopg.connect(url) as conn:
        made = [
            (pid, row[0])
            for pid, _ in tenants
            for row in conn.execute(
                "INSERT INTO threads (project_id, document_ids)"
                " SELECT %(p)s, ARRAY[id] FROM documents WHERE project_id = %(p)s ORDER BY random() LIMIT %(n)s"
                " RETURNING id",
                {"p": pid, "n": per_project},
            ).fetchall()
        ]
        conn.commit()
    return made


def _measure_recall(
    url: str,
    tenants: list[tuple[uuid.UUID, str]],
    questions: list[str],
    tokenizer: Path,
    per_project: int,
    ef_values: Sequence[int],
    seed: int = 5,
) -> None:
    """recall@10 against exact search, and search latency, of the old single graph and the per-project graphs."""
    from threadline.adapters.embeddings import OnnxMiniLM

    model = OnnxMiniLM(tokenizer, Settings().embedding_model_path)
    rng = random.Random(seed)
    asked = [rng.choice(questions) for _ in range(per_project * len(tenants))]
    vectors = model.embed(asked)
    whole = [
        {"project_id": pid, "vector": v, "top_k": 10}
        for (pid, _), v in zip([t for t in tenants for _ in range(per_project)], vectors, strict=True)
    ]
    scoped = [
        {"project_id": pid, "thread_id": tid, "vector": v, "top_k": 10}
        for (pid, tid), v in zip(_scoped_threads(url, tenants, per_project), vectors, strict=True)
    ]
    kinds = {"project": (_RETRIEVE_NEW, whole), "one-document thread": (_RETRIEVE_IN_THREAD, scoped)}
    with psycopg.connect(url) as conn:
        register_vector(conn)
        # No server-side prepared statements: a plan cached under one setting must not serve another.
        conn.prepare_threshold = None
        truth = {"project": _exact(conn, whole, "project_id"), "one-document thread": _exact(conn, scoped, "thread")}
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        conn.commit()
        print(f"search: recall@10 against exact search, latency per query (ms), {len(whole)} queries per kind")
        print(f"  {'layout, scope, plan':<62} {'ef':>4} {'recall':>7} {'p50':>7} {'p95':>7}  HNSW used")
        for ef in ef_values:
            # Committed, so that the rollback of the forced pass below does not put the next kind back to 40.
            conn.execute(f"SET hnsw.ef_search = {int(ef)}")
            conn.commit()
            for kind, (sql, cases) in kinds.items():
                for label, statement in (
                    (f"before: one graph, {kind}", _before(sql)),
                    (f"after: per project, {kind}", sql),
                ):
                    _row(label + ", planner's choice", ef, *_search_pass(conn, statement, cases, truth[kind]))
                # The old layout's filtered HNSW forced (its other indexes dropped inside a transaction that is
                # rolled back): the figure the baseline was measured on.
                conn.execute(f"DROP INDEX {SINGLE}_project_idx, {SINGLE}_document_idx")
                conn.execute("SET LOCAL enable_seqscan = off")
                conn.execute("SET LOCAL enable_bitmapscan = off")
                forced = _search_pass(conn, _before(sql), cases, truth[kind])
                conn.rollback()
                _row(f"before: one graph, {kind}, filtered HNSW forced", ef, *forced)
        print("  target (after, project): recall@10 >= 0.98 with p50 <= 5 ms")


def _exact(conn: psycopg.Connection[Any], cases: list[dict[str, Any]], scope: str) -> list[set[int]]:
    """The true top 10 of each case, computed in numpy from every stored vector in scope (the project, or the
    thread's one document), independently of any plan.

    Exact search in SQL was not: with `enable_indexscan = off` (and the session's ef_search) the statement's top
    10s scored 0.886 against these on the 100k-chunk corpus, exactly as HNSW at ef_search 40 did (0.967 both at
    100), while a plan that sorts exactly scored 1.000: Postgres 18 still walked the graph. So recall at 40 read
    1.000 against itself while a wider beam, closer to the truth, read lower (0.923 at 100).
    """
    rows = conn.execute("SELECT c.id, c.project_id, c.document_id, c.embedding FROM chunks c", binary=True).fetchall()
    ids = np.array([r[0] for r in rows])
    projects = np.array([str(r[1]) for r in rows])
    documents = np.array([str(r[2]) for r in rows])
    stored = np.stack([np.asarray(r[3].to_numpy() if hasattr(r[3], "to_numpy") else r[3]) for r in rows])
    stored = stored.astype(np.float64) / np.linalg.norm(stored, axis=1, keepdims=True)
    scope_documents: dict[str, str] = {}
    if scope == "thread":
        for thread_id, document_ids in conn.execute(
            "SELECT id, document_ids FROM threads WHERE id = ANY(%s)", ([c["thread_id"] for c in cases],)
        ).fetchall():
            (scope_documents[str(thread_id)],) = (str(d) for d in document_ids)
    truth = []
    for case in cases:
        if scope == "thread":
            inside = documents == scope_documents[str(case["thread_id"])]
        else:
            inside = projects == str(case["project_id"])
        query = np.asarray(case["vector"], dtype=np.float64)
        distance = 1 - stored[inside] @ (query / np.linalg.norm(query))
        truth.append({int(i) for i in ids[inside][np.argsort(distance, kind="stable")[:10]]})
    return truth


def _row(label: str, ef: int, recall: float, took: list[float], hnsw: bool) -> None:
    p50, p95 = _percentile(took, 50), _percentile(took, 95)
    print(f"  {label:<62} {ef:>4} {recall:7.3f} {p50:7.2f} {p95:7.2f}  {hnsw}")


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
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent streams of the second TTFT pass")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument(
        "--environments",
        type=int,
        default=1,
        help="app processes, each with its own event loop, model and connection, as Lambda gives every concurrent "
        "stream an execution environment of its own; the concurrent pass spreads its clients over them",
    )
    parser.add_argument("--recall-queries", type=int, default=30, help="per project")
    # ef_search's default was chosen on seed 5's questions; report recall on another seed's (held out).
    parser.add_argument("--recall-seed", type=int, default=6, help="which questions the recall is measured on")
    parser.add_argument(
        "--ef-search", type=int, nargs="+", default=[40, 150, 165], help="values the recall is measured at"
    )
    # The served app's default is the setting's own (150): serving at 400 measured a plan without HNSW (p50 35 ms
    # of search) inside every first token; from 165-180 the planner sorts 10,000-chunk partitions exactly.
    parser.add_argument(
        "--serve-ef-search",
        type=int,
        default=Settings.model_fields["retrieval_ef_search"].default,
        help="RETRIEVAL_EF_SEARCH of the served app (default: the setting's default)",
    )
    parser.add_argument(
        "--http", choices=("auto", "h11", "httptools"), default="auto", help="uvicorn's HTTP implementation for the app"
    )
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
        _measure_recall(url, tenants, questions, tokenizer, args.recall_queries, args.ef_search, args.recall_seed)
        from threadline.local.moto_server import free_port

        app_ports, llm_port = [free_port() for _ in range(args.environments)], free_port()
        context = multiprocessing.get_context("spawn")
        llm = context.Process(target=_serve_llm, args=(llm_port,), daemon=True)
        llm_url = f"http://127.0.0.1:{llm_port}/v1"
        apps = [
            context.Process(
                target=_serve_app,
                args=(url, llm_url, port, str(tokenizer), args.serve_ef_search, args.http),
                daemon=True,
            )
            for port in app_ports
        ]
        llm.start()
        for app in apps:
            app.start()
        bases = [f"http://127.0.0.1:{port}" for port in app_ports]
        try:
            for base in bases:
                _wait(f"{base}/health")
            groups = {"client": [os.getpid()], "app": [app.pid or 0 for app in apps], "model stub": [llm.pid or 0]}
            groups["postgres"] = _postmaster(url)
            _measure_ttft(
                bases,
                tenants,
                questions,
                args.requests,
                args.warmup,
                args.concurrency,
                _Cpu(groups),
            )
        finally:
            for process in (*apps, llm):
                process.terminate()
            for process in (*apps, llm):
                process.join(10)


if __name__ == "__main__":
    main()
