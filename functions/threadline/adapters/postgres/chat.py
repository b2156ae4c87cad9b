"""Threads, exchanges and retrieval in Postgres. The chat hot path is one pipelined round trip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import LiteralString
from uuid import UUID

from psycopg.types.json import Jsonb

from threadline.adapters.postgres.db import Database, Row
from threadline.adapters.postgres.labels import SELECT_SUMMARY, thread_summary
from threadline.domain.channels import DEFAULT_CHANNEL, Channel
from threadline.domain.chat import Context, Outcome, Thread, ThreadHistory
from threadline.domain.chat import Exchange as ExchangeEntity
from threadline.domain.errors import NotFound
from threadline.domain.ports import Vectors
from threadline.domain.prompting import Passage, Turn

# ef_search bounds the candidate list of each HNSW scan step; with iterative scans (_SEARCH_SETTINGS) a
# filtered search keeps going until LIMIT rows pass the filter, so a wider beam trades latency for recall.
# Settings.retrieval_ef_search says why 150.
DEFAULT_EF_SEARCH = 150

_THREAD_COLUMNS = "id, project_id, system_prompt, document_ids, first_question, message_count, created_at, updated_at"
_EXCHANGE_COLUMNS = (
    "id, question, answer, sources, status, model, prompt_tokens, completion_tokens, latency_ms,"
    " first_token_ms, error, handoff_reason, created_at, completed_at, grounded"
)


# Hybrid ranking (issue 16). Each side offers this many candidates per passage returned: fusion needs depth
# below the top k (a chunk 9th by vectors and 1st by words must be seen by both lists).
CANDIDATES_PER_PASSAGE = 4

# BM25 (Robertson and Zaragoza 2009) over the chunks' words: each question lexeme the project knows weighs its
# IDF, ln(1 + (N - df + 0.5) / (df + 0.5)), from chunk_lexemes (0017), so the one telling word of a question
# outweighs its common ones (ts_rank has no IDF: text-only hit@1 was 29% with it). The chunk's side,
# tf * (k1 + 1) / (tf + k1) per lexeme with k1 = 1.2, b = 0 and the heading counted twice, is stored in
# chunks.terms (migration 0018, a sparsevec), so a chunk's BM25 is one inner product with the question's IDF
# vector: 0017's unnest of every candidate's tsvector cost ~112 ms a query on 5k chunks. The 'english'
# configuration stems the question exactly as it stemmed the chunks.
# Only lexemes in at most SELECTING_SHARE of the project's chunks (or SELECTING_FLOOR) select candidates through
# the GIN index: each selected chunk costs a heap visit and an inner product (~3.5 us warm), and an ORed common
# lexeme matches most chunks (scoring them all cost 590 ms a query on 5k chunks with 0017's SQL, with the same
# hit@1). Common lexemes still add to the score of the chunks the rarer ones found, and to the vector side's.
# At 5% a question's few mid-frequency lexemes matched up to ~1,400 chunks of a 10k-chunk partition; at 1%
# hybrid added 2.8-3.8 ms at p95 over vector-only with every page cached and 4.6-7.4 ms in the embedded
# server's 128 MB buffer pool (three runs), against 5.5 and 8.4 ms at 5% (bench.retrieval's two passes on 100k
# chunks in 10 projects; 5%: a scratch run of them). bench.retrieval cross-validates the share with the fusion
# (docs/architecture.md, "Hybrid retrieval"): held out, hybrid hit@1 +12.7 points over vector-only (2-fold),
# +7.3 (leave-one-out); at 5% with the same fusions, +12.7 and +5.5.
SELECTING_SHARE: LiteralString = "0.01"
SELECTING_FLOOR: LiteralString = "50"


def _query_terms(share: LiteralString = SELECTING_SHARE) -> LiteralString:
    """Each question lexeme the project knows: its IDF, and whether it is rare enough to select candidates."""
    return (
        "SELECT l.lexeme, ln(1 + (n.chunks - l.chunks + 0.5) / (l.chunks + 0.5))::float8 AS idf,"
        " l.chunks <= greatest(" + SELECTING_FLOOR + ", " + share + " * n.chunks) AS matching"
        " FROM chunk_lexemes n JOIN chunk_lexemes l ON l.project_id = n.project_id"
        " AND l.lexeme = ANY(tsvector_to_array(to_tsvector('english', %(query)s)))"
        " WHERE n.project_id = %(project_id)s AND n.lexeme = '' AND l.chunks > 0"
    )


def _question(share: LiteralString = SELECTING_SHARE) -> LiteralString:
    """One row: the tsquery that selects candidates (NULL when no lexeme is rare enough: no text candidates)
    and the question's BM25 vector (empty when the project knows none of its lexemes)."""
    return (
        "SELECT (string_agg(quote_literal(q.lexeme), ' | ') FILTER (WHERE q.matching))::tsquery AS query,"
        " lexeme_vector(array_agg(q.lexeme), array_agg(q.idf)) AS terms FROM (" + _query_terms(share) + ") q"
    )


_QUERY_TERMS = _query_terms()  # as production selects (the BM25 test reads it)

# How the scores of a candidate combine, best first. "convex": a weighted sum of its cosine and its BM25, each
# min-max normalised over the question's candidates (cosine from its lowest to its highest, BM25 from 0 to its
# highest), which keeps how far ahead a candidate is on each side, plus PAGE_WEIGHT times its page's evidence:
# the BM25 of the candidates from its document summed and divided by the document's chunk count (a page many
# of whose passages use the question's words is likelier the page that answers it than one with a single
# stray match), normalised the same way. "rrf": reciprocal rank fusion (Cormack et al. 2009, k = 60) of the
# candidates' two rankings, which keeps only the order.
# bench.retrieval cross-validates the method and weights (docs/architecture.md, "Hybrid retrieval"): on Git's
# manual, chosen on one half of the 55 questions and scored on the other, hybrid hit@1 was 65.5% against
# vector-only's 50.9% (+14.5 points; leave-one-out 69.1%, +18.2); choosing only among the fusions without page
# evidence (PAGE_WEIGHT 0, and RRF) gave +0.0. These constants are the same rule's choice on all 55
# (hit@1, then MRR), so their own figure there (72.7%) is in-sample and not the claim.
VECTOR_WEIGHT: LiteralString = "0.6"
PAGE_WEIGHT: LiteralString = "0.25"
FUSION: LiteralString = "convex"


def _fusion(method: LiteralString, vector_weight: LiteralString, page_weight: LiteralString) -> LiteralString:
    """The fused score of a row of `p` (its cosine `score`, `bm25` and `page`), as an ORDER BY expression."""
    if method == "rrf":
        return (
            "(" + vector_weight + " / (60 + row_number() OVER (ORDER BY p.score DESC, p.id))"
            " + (1 - " + vector_weight + ") / (60 + row_number() OVER (ORDER BY p.bm25 DESC, p.id)))"
        )
    return (
        "(" + vector_weight + " * coalesce((p.score - min(p.score) OVER ())"
        " / nullif(max(p.score) OVER () - min(p.score) OVER (), 0), 1)"
        " + (1 - " + vector_weight + ") * coalesce(p.bm25 / nullif(max(p.bm25) OVER (), 0), 0)"
        " + " + page_weight + " * coalesce(p.page / nullif(max(p.page) OVER (), 0), 0))"
    )


_NEAREST: LiteralString = (
    "SELECT c.id, c.document_id, c.heading, c.content, c.embedding <=> %(vector)s AS distance"
    " FROM chunks c WHERE c.project_id = %(project_id)s"
)


def _nearest(
    scope: LiteralString, order: LiteralString = "c.embedding <=> %(vector)s", limit: LiteralString = "%(top_k)s"
) -> LiteralString:
    # What the HNSW index serves: ORDER BY distance LIMIT k on chunks alone. `c.project_id = %(project_id)s` is
    # also what prunes the scan to the project's own partition and graph (migration 0015): keep it a plain
    # equality on the parameter, or every project's partition is planned.
    return "(" + _NEAREST + scope + " ORDER BY " + order + " LIMIT " + limit + ")"


def _retrieval_from(inner: LiteralString) -> LiteralString:
    # relaxed_order iterative scans may return rows slightly out of order, so the outer query re-sorts.
    return (
        "SELECT r.id AS chunk_id, r.document_id, d.title, r.heading, r.content, 1 - r.distance AS score"
        " FROM (" + inner + ") r JOIN documents d ON d.id = r.document_id ORDER BY r.distance"
    )


def _text_ranked(scope: LiteralString) -> LiteralString:
    # The GIN index finds the chunks holding one of the question's rarer lexemes; each is scored by one sparse
    # inner product (`<#>` is its negative, so ascending is best first).
    return (
        "(SELECT c.id FROM chunks c, w WHERE c.project_id = %(project_id)s AND c.search @@ w.query" + scope + ""
        " ORDER BY c.terms <#> w.terms, c.id LIMIT %(candidates)s)"
    )


def _fused(
    mode: str,
    nearest: LiteralString,
    text_scope: LiteralString,
    method: LiteralString = FUSION,
    vector_weight: LiteralString = VECTOR_WEIGHT,
    page_weight: LiteralString = PAGE_WEIGHT,
    share: LiteralString = SELECTING_SHARE,
) -> LiteralString:
    """The top_k passages of the "text" (BM25) or "hybrid" (BM25 and `nearest` fused) ranking.

    Hybrid takes the union of both sides' candidates and reads both scores of every one of them exactly (a
    chunk the graph offered gets its BM25, one the words offered its cosine), then orders by `_fusion`. A
    candidate's page evidence needs its document's chunk count: documents.chunks_stored (migration 0019), read
    with the title once per candidate document. Counting the chunks in the statement ran once per candidate
    (EXPLAIN ANALYZE, 100k chunks in 10 projects: 46 loops, 7,852 heap fetches, 11 ms of a 43 ms query).
    Only the top_k rows read their heading and content (the candidates carry ids and scores).
    `score` is the cosine similarity to the question (what the relevance floor compares), whatever ranked the
    passage; the joins back to chunks name the project so that they read one partition (migration 0015).
    """
    candidates = _text_ranked(text_scope)
    order: LiteralString = "p.bm25"
    if mode == "hybrid":
        candidates = "SELECT v.id FROM (" + nearest + ") v UNION " + candidates
        order = _fusion(method, vector_weight, page_weight)
    return (
        "WITH w AS MATERIALIZED (" + _question(share) + "),"
        " u AS MATERIALIZED (SELECT c.id, c.document_id, 1 - (c.embedding <=> %(vector)s) AS score,"
        "       coalesce(-(c.terms <#> w.terms), 0) AS bm25"
        "       FROM (" + candidates + ") i JOIN chunks c ON c.project_id = %(project_id)s AND c.id = i.id, w),"
        " n AS MATERIALIZED (SELECT d.id, d.title, d.chunks_stored FROM (SELECT DISTINCT u.document_id FROM u) k"
        "       JOIN documents d ON d.id = k.document_id AND d.project_id = %(project_id)s),"
        " p AS (SELECT u.*, n.title, sum(u.bm25) OVER (PARTITION BY u.document_id) / nullif(n.chunks_stored, 0) AS page"
        "       FROM u JOIN n ON n.id = u.document_id),"
        " t AS (SELECT p.id, p.document_id, p.title, p.score, " + order + " AS fused"
        "       FROM p ORDER BY fused DESC, p.id LIMIT %(top_k)s)"
        " SELECT t.id AS chunk_id, t.document_id, t.title, c.heading, c.content, t.score"
        " FROM t JOIN chunks c ON c.project_id = %(project_id)s AND c.id = t.id"
        " ORDER BY t.fused DESC, t.id"
    )


def _retrieval(
    scope: LiteralString,
    mode: str = "vector",
    method: LiteralString = FUSION,
    vector_weight: LiteralString = VECTOR_WEIGHT,
    page_weight: LiteralString = PAGE_WEIGHT,
    share: LiteralString = SELECTING_SHARE,
) -> LiteralString:
    """The top_k passages of the project within `scope` by `mode`: "vector" (the project's HNSW graph), "text"
    (BM25, candidates selected by lexemes in at most `share` of the chunks) or "hybrid" (both fused by
    `method`), all in one statement."""
    if mode == "vector":
        return _retrieval_from(_nearest(scope))
    return _fused(mode, _nearest(scope, limit="%(candidates)s"), scope, method, vector_weight, page_weight, share)


# A new thread has no document scope; a follow-up inherits its thread's (NULL means every document).
_THREAD_DOCUMENTS: LiteralString = (
    "(SELECT t.document_ids FROM threads t WHERE t.id = %(thread_id)s AND t.project_id = %(project_id)s)"
)
# The same scope as one filter, for the full-text ranking: the GIN index serves it either way.
_THREAD_SCOPE: LiteralString = (
    " AND (" + _THREAD_DOCUMENTS + " IS NULL OR c.document_id = ANY(" + _THREAD_DOCUMENTS + "::uuid[]))"
)


def _thread_nearest(extra: LiteralString, limit: LiteralString = "%(top_k)s") -> LiteralString:
    # Two branches, one of which a one-time filter skips. An unscoped thread walks the project's graph. A thread
    # scoped to documents reads their chunks exactly (chunks_document_idx, then a top-k sort): `+ 0` keeps the
    # HNSW index from serving that ORDER BY. Through the graph, a filter that keeps one document of a hundred
    # made the iterative scan visit thousands of candidates: p50 116 ms against 32 ms exact (bench.chat, 100k
    # chunks in 10 projects, on a busy host), and the planner cannot tell, as the scope is read in the query.
    return (
        _nearest(" AND " + _THREAD_DOCUMENTS + " IS NULL" + extra, limit=limit)
        + " UNION ALL "
        + _nearest(
            " AND c.document_id = ANY(" + _THREAD_DOCUMENTS + "::uuid[])" + extra,
            "(c.embedding <=> %(vector)s) + 0",
            limit,
        )
    )


def _in_thread(extra: LiteralString, mode: str = "vector") -> LiteralString:
    """The top_k passages of a follow-up, within its thread's documents and `extra`, by `mode`."""
    if mode == "vector":
        return _retrieval_from(_thread_nearest(extra))
    return _fused(mode, _thread_nearest(extra, "%(candidates)s"), _THREAD_SCOPE + extra)


_TITLE_SCOPE: LiteralString = (
    " AND c.document_id IN (SELECT id FROM documents WHERE project_id = %(project_id)s"
    " AND title ILIKE '%%' || %(title)s || '%%')"
)
# Any document of the project whose title contains one of the patterns (the MCP search tool's title filter).
_TITLES_ANY_SCOPE: LiteralString = (
    " AND c.document_id IN (SELECT id FROM documents WHERE project_id = %(project_id)s"
    " AND title ILIKE ANY(%(patterns)s::text[]))"
)


@dataclass(frozen=True, slots=True)
class _Statements:
    """The retrieval statements of one mode, one per scope."""

    new: LiteralString
    in_thread: LiteralString
    titled: LiteralString
    titles_any: LiteralString


# RETRIEVAL_MODE picks one; hybrid is the default (Settings.retrieval_mode says why, docs/architecture.md).
RETRIEVAL_MODES = ("vector", "hybrid")
_STATEMENTS = {
    mode: _Statements(
        new=_retrieval("", mode),
        in_thread=_in_thread("", mode),
        titled=_in_thread(_TITLE_SCOPE, mode),
        titles_any=_retrieval(_TITLES_ANY_SCOPE, mode),
    )
    for mode in RETRIEVAL_MODES
}
# Vector-only (bench.chat and bench.partitions measure these; bench.retrieval compares the modes).
_RETRIEVE_NEW = _STATEMENTS["vector"].new
_RETRIEVE_IN_THREAD = _STATEMENTS["vector"].in_thread

# For this transaction only (is_local = true), so no session state outlives it (RDS Proxy would pin the
# connection): the beam width, and iterative scans (pgvector >= 0.8) that keep scanning the HNSW index until
# LIMIT rows pass the project/document filter instead of stopping after ef_search candidates. JIT off: a
# retrieval runs for milliseconds and compiling costs tens; the statements plan at ~2,000-3,000 cost units on
# 10k-chunk partitions (EXPLAIN), under jit_above_cost (100,000), so this changes no figure measured, but a
# larger partition or another plan must not start paying for compilation.
_SEARCH_SETTINGS: LiteralString = (
    "SELECT set_config('hnsw.ef_search', %(ef_search)s, true),"
    " set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('jit', 'off', true)"
)

_NEW_THREAD: LiteralString = (
    "INSERT INTO threads (id, project_id, first_question, message_count, channel, api_key_id)"
    " VALUES (%(thread_id)s, %(project_id)s, %(question)s, 1, %(channel)s, %(api_key_id)s)"
    " RETURNING message_count"
)
_COUNT_QUESTION: LiteralString = (
    "UPDATE threads SET message_count = message_count + 1, updated_at = now(),"
    " first_question = coalesce(first_question, %(question)s)"
    " WHERE id = %(thread_id)s AND project_id = %(project_id)s"
    " RETURNING message_count"
)
_SAVE_QUESTION: LiteralString = (
    "INSERT INTO messages (id, thread_id, project_id, question)"
    " SELECT %(message_id)s, %(thread_id)s, %(project_id)s, %(question)s"
    " WHERE EXISTS (SELECT 1 FROM threads WHERE id = %(thread_id)s AND project_id = %(project_id)s)"
)
# `started_by`: a widget key continues only the threads it started.
_OWNED: LiteralString = "(%(started_by)s::uuid IS NULL OR api_key_id = %(started_by)s::uuid)"
_THREAD: LiteralString = (
    "SELECT system_prompt FROM threads WHERE id = %(thread_id)s AND project_id = %(project_id)s AND " + _OWNED
)
_HISTORY: LiteralString = (
    "SELECT question, answer FROM messages"
    " WHERE thread_id = %(thread_id)s AND project_id = %(project_id)s AND answer <> ''"
    " ORDER BY created_at DESC, id DESC LIMIT %(turns)s"
)
_FINISH: LiteralString = (
    "UPDATE messages SET answer = %(answer)s, sources = %(sources)s, status = %(status)s, model = %(model)s,"
    " prompt_tokens = %(prompt_tokens)s, completion_tokens = %(completion_tokens)s, latency_ms = %(latency_ms)s,"
    " first_token_ms = %(first_token_ms)s, retrieval_score = %(retrieval_score)s, error = %(error)s,"
    " handoff_reason = %(handoff_reason)s, grounded = %(grounded)s, completed_at = now()"
    " WHERE id = %(message_id)s AND status = 'pending'"
)
HISTORY_TURNS = 20

_LOCK_THREAD: LiteralString = (
    "SELECT id FROM threads WHERE id = %(thread_id)s AND project_id = %(project_id)s FOR UPDATE"
)
_LOCK_THREAD_MESSAGES: LiteralString = "SELECT id FROM messages WHERE thread_id = %(thread_id)s ORDER BY id FOR UPDATE"
_THREAD_VALUES: LiteralString = (
    "SELECT m.metric, m.value FROM interaction_metrics m JOIN messages e ON e.id = m.message_id"
    " WHERE e.thread_id = %(thread_id)s"
)
_LOCK_THREAD_STATS: LiteralString = (
    "SELECT 1 FROM metric_stats WHERE project_id = %(project_id)s"
    " AND metric IN (SELECT v.metric FROM (" + _THREAD_VALUES + ") v) ORDER BY metric FOR UPDATE"
)
# The inverse of Chan et al.'s combination in adapters/postgres/alerts.py: the thread's values (n_b, mean_b, M2_b)
# leave the stored (n, mean, M2), so the statistics read as if they had never been measured. The subtraction
# keeps the rounding of the removed values' squares (~1e-16 of their M2: a stddev of ~2e-5 left over after
# removing latencies of 7,000-9,000 ms), so M2 is clamped at 0, a metric left with one value gets M2 = 0 exactly,
# and one left with none goes back to (0, 0, 0).
_UNFOLD_THREAD_STATS: LiteralString = (
    "UPDATE metric_stats s SET"
    " n = s.n - b.n,"
    " mean = CASE WHEN s.n > b.n THEN (s.n * s.mean - b.n * b.mean) / (s.n - b.n) ELSE 0 END,"
    " m2 = CASE WHEN s.n > b.n + 1 THEN greatest(0, s.m2 - b.m2"
    "   - (b.mean - (s.n * s.mean - b.n * b.mean) / (s.n - b.n)) ^ 2 * (s.n - b.n)::float8 * b.n::float8 / s.n)"
    "   ELSE 0 END,"
    " updated_at = now()"
    " FROM (SELECT v.metric, count(*) AS n, avg(v.value) AS mean, coalesce(var_pop(v.value), 0) * count(*) AS m2"
    "       FROM (" + _THREAD_VALUES + ") v GROUP BY v.metric) b"
    " WHERE s.project_id = %(project_id)s AND s.metric = b.metric"
)


def _like_literal(text: str) -> str:
    """`text` matched literally inside ILIKE (its %, _ and backslashes escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _passage(row: Row) -> Passage:
    return Passage(
        chunk_id=row["chunk_id"],
        document_id=row["document_id"],
        title=row["title"],
        heading=row["heading"],
        content=row["content"],
        score=float(row["score"]),
    )


class PostgresChat:
    """`ChatRepository` over Postgres."""

    def __init__(self, db: Database, ef_search: int = DEFAULT_EF_SEARCH, mode: str = "vector") -> None:
        self._db = db
        self._ef_search = ef_search
        self._statements = _STATEMENTS[mode]
        # Hybrid fuses two lists and needs depth below the top k; vector-only reads the top k straight from the
        # project's graph (its statements take no %(candidates)s).
        self._depth = CANDIDATES_PER_PASSAGE if mode == "hybrid" else 1

    def create_thread(self, project_id: UUID, system_prompt: str | None, document_ids: list[UUID] | None) -> Thread:
        """Insert a thread; refused (NotFound) unless every document id belongs to the project."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO threads (project_id, system_prompt, document_ids)"
                " SELECT %(project_id)s, %(system_prompt)s, %(document_ids)s::uuid[]"
                " WHERE %(document_ids)s::uuid[] IS NULL OR (SELECT count(*) FROM documents"
                "  WHERE project_id = %(project_id)s AND id = ANY(%(document_ids)s::uuid[]))"
                "  = cardinality(%(document_ids)s::uuid[])"
                " RETURNING " + _THREAD_COLUMNS,
                {"project_id": project_id, "system_prompt": system_prompt, "document_ids": document_ids},
            ).fetchone()
        if row is None:
            raise NotFound("document not found", document_ids=[str(d) for d in document_ids or []])
        return Thread(**row)

    def get_thread(self, project_id: UUID, thread_id: UUID, started_by: UUID | None = None) -> ThreadHistory:
        """The thread and all its exchanges, only if it belongs to the project (and was started by `started_by`)."""
        params = {"thread_id": thread_id, "project_id": project_id, "started_by": started_by}
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT " + _THREAD_COLUMNS + " FROM threads"
                " WHERE id = %(thread_id)s AND project_id = %(project_id)s AND " + _OWNED,
                params,
            ).fetchone()
            if row is None:
                raise NotFound("thread not found")
            rows = conn.execute(
                "SELECT " + _EXCHANGE_COLUMNS + " FROM messages"
                " WHERE thread_id = %(thread_id)s AND project_id = %(project_id)s ORDER BY created_at, id",
                params,
            ).fetchall()
            summary = conn.execute(
                SELECT_SUMMARY + " WHERE t.id = %(thread_id)s AND t.project_id = %(project_id)s", params
            ).fetchone()
        assert summary is not None  # the same snapshot found the thread above
        return ThreadHistory(Thread(**row), [ExchangeEntity(**r) for r in rows], thread_summary(summary))

    def delete_thread(self, project_id: UUID, thread_id: UUID) -> None:
        """Delete the thread; messages, metric values and alerts go by ON DELETE CASCADE, rollups by trigger.

        Lock order: the thread, its messages, then the statistics rows in metric order. A measurement of one of
        these messages holds the message (its foreign key check) before the statistics, so taking the messages
        first makes it wait for this delete instead of deadlocking with it.
        """
        params = {"thread_id": thread_id, "project_id": project_id}
        with self._db.transaction() as conn:
            if conn.execute(_LOCK_THREAD, params).fetchone() is None:
                raise NotFound("thread not found")
            conn.execute(_LOCK_THREAD_MESSAGES, params)
            conn.execute(_LOCK_THREAD_STATS, params)
            conn.execute(_UNFOLD_THREAD_STATS, params)
            conn.execute("DELETE FROM threads WHERE id = %(thread_id)s", params)

    def read_context(
        self,
        project_id: UUID,
        thread_id: UUID | None,
        query: str,
        query_vector: Vectors,
        top_k: int,
        started_by: UUID | None = None,
    ) -> Context:
        """Thread, history and retrieval pipelined in one read-only round trip (no commit to wait for)."""
        params = {
            "project_id": project_id,
            "thread_id": thread_id,
            "query": query,
            "started_by": started_by,
            "vector": query_vector,
            "top_k": top_k,
            "candidates": top_k * self._depth,
            "turns": HISTORY_TURNS,
            "ef_search": str(max(self._ef_search, top_k)),
        }
        with self._db.pipeline() as conn:
            conn.execute(_SEARCH_SETTINGS, params)
            thread = None if thread_id is None else conn.execute(_THREAD, params)
            history = None if thread_id is None else conn.execute(_HISTORY, params)
            passages = conn.execute(self._statements.new if thread_id is None else self._statements.in_thread, params)
        thread_row = thread.fetchone() if thread is not None else {"system_prompt": None}
        if thread_row is None:
            raise NotFound("thread not found")
        return Context(
            system_prompt=thread_row["system_prompt"],
            history=[Turn(r["question"], r["answer"]) for r in history.fetchall()] if history else [],
            passages=[_passage(r) for r in passages.fetchall()],
        )

    def record_question(
        self,
        project_id: UUID,
        thread_id: UUID,
        message_id: UUID,
        question: str,
        new_thread: bool,
        channel: Channel = DEFAULT_CHANNEL,
        api_key_id: UUID | None = None,
    ) -> bool:
        """Create (in `channel`) or count into the thread and save the question pending, in one round trip."""
        params = {
            "project_id": project_id,
            "thread_id": thread_id,
            "message_id": message_id,
            "question": question,
            "channel": channel,
            "api_key_id": api_key_id,
        }
        with self._db.pipeline() as conn:
            thread = conn.execute(_NEW_THREAD if new_thread else _COUNT_QUESTION, params)
            conn.execute(_SAVE_QUESTION, params)
        row = thread.fetchone()
        if row is None:
            raise NotFound("thread not found")
        first: bool = row["message_count"] == 1
        return first

    def finish_exchange(self, message_id: UUID, outcome: Outcome) -> None:
        """Record the answer once (a pending exchange only, so a late duplicate save changes nothing)."""
        with self._db.transaction() as conn:
            conn.execute(
                _FINISH,
                {
                    "message_id": message_id,
                    "answer": outcome.answer,
                    "sources": Jsonb(outcome.sources),
                    "status": outcome.status,
                    "model": outcome.model,
                    "prompt_tokens": outcome.prompt_tokens,
                    "completion_tokens": outcome.completion_tokens,
                    "latency_ms": outcome.latency_ms,
                    "first_token_ms": outcome.first_token_ms,
                    "retrieval_score": outcome.retrieval_score,
                    "error": outcome.error,
                    "handoff_reason": outcome.handoff_reason,
                    "grounded": outcome.grounded,
                },
            )

    def search_documents(
        self, project_id: UUID, query_vector: Vectors, top_k: int, titles: Sequence[str] | None
    ) -> list[Passage]:
        """Retrieval over every document of the project, or those whose title contains one of `titles`."""
        params = {
            "project_id": project_id,
            "vector": query_vector,
            "top_k": top_k,
            "candidates": top_k,
            "patterns": [f"%{_like_literal(t)}%" for t in titles or ()],
            "ef_search": str(max(self._ef_search, top_k)),
        }
        # By meaning only: this port receives the question's vector, not its words.
        vector = _STATEMENTS["vector"]
        with self._db.transaction() as conn:
            conn.execute(_SEARCH_SETTINGS, params)
            rows = conn.execute(vector.titles_any if titles else vector.new, params).fetchall()
        return [_passage(r) for r in rows]

    def search(
        self,
        project_id: UUID,
        thread_id: UUID,
        query: str,
        query_vector: Vectors,
        top_k: int,
        title_filter: str | None,
    ) -> list[Passage]:
        """Retrieval within the thread's scope, optionally only in documents whose title contains `title_filter`."""
        params = {
            "project_id": project_id,
            "thread_id": thread_id,
            "query": query,
            "vector": query_vector,
            "top_k": top_k,
            "candidates": top_k * self._depth,
            "title": title_filter,
            "ef_search": str(max(self._ef_search, top_k)),
        }
        with self._db.transaction() as conn:
            conn.execute(_SEARCH_SETTINGS, params)
            rows = conn.execute(
                self._statements.titled if title_filter else self._statements.in_thread, params
            ).fetchall()
        return [_passage(r) for r in rows]
