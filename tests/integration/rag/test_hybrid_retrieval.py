"""Hybrid retrieval on the real database and model: exact terms decide between near neighbours, inside scope."""

from __future__ import annotations

from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.integration.rag.conftest import Tenant, make_tenant, upload
from threadline.adapters.postgres.chat import (
    _QUERY_TERMS,
    _STATEMENTS,
    SELECTING_FLOOR,
    SELECTING_SHARE,
    PostgresChat,
    _retrieval,
)
from threadline.bootstrap import Container
from threadline.domain.ports import Embedder

pytestmark = pytest.mark.integration

# Three near-neighbour pages. Two explain retry delays at length; the third covers webhook settings and
# names `QZ4_SPREAD`, the one setting asked about, in a single line: the exact name is what decides.
NEIGHBOURS = {
    "Webhook settings": """# Webhook settings

## Endpoints

Every webhook request carries a signature header computed with the project's signing secret. Rotate
the secret from the settings page; both secrets are accepted for a day. Endpoints must answer within ten
seconds with a 2xx status. QZ4_SPREAD sets the random spread added to redelivery delays.
""",
    "Export retries": """# Export retries

## Delays

Failed exports are retried with a growing delay between attempts. The delay doubles after each failure,
up to one hour, and a random spread is added to every delay so that retries of many exports do not
happen at the same instant.
""",
    "Sync retries": """# Sync retries

## Delays

Failed sync jobs are retried with a growing delay between attempts. The delay doubles after each
failure, up to one hour, with some randomness added to every delay so that failing jobs do not all
retry at the same instant.
""",
}
QUESTION = "Is the random spread of retries set by QZ4_SPREAD?"


def _titles(chat: PostgresChat, embedder: Embedder, project: UUID, thread: UUID | None) -> list[str]:
    context = chat.read_context(project, thread, QUESTION, embedder.embed([QUESTION])[0], 3)
    return [p.title for p in context.passages]


def test_exact_term_ranks_its_page_first(client: TestClient, container: Container, tenant: Tenant) -> None:
    # Given three near-neighbour pages of which only one names the setting asked about
    for title, text in NEIGHBOURS.items():
        upload(client, tenant, title, text)
    embedder = container.query_embedder
    vector = embedder.embed([QUESTION])[0]
    # When the question is searched by words alone, and by the production (hybrid) retrieval
    with container.db.transaction() as conn:
        by_words = conn.execute(
            _retrieval("", "text"),
            {"project_id": tenant.project_id, "query": QUESTION, "vector": vector, "top_k": 3, "candidates": 12},
        ).fetchall()
    hybrid = _titles(PostgresChat(container.db, mode="hybrid"), embedder, tenant.project_id, None)
    # Then the full-text side matches the exact name, and the fused ranking puts its page first
    assert by_words[0]["title"] == "Webhook settings"
    assert hybrid[0] == "Webhook settings"


def test_fusion_respects_project_and_document_scope(
    client: TestClient, container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Given the identifier's page in another project, and in this one a thread scoped to a neighbour page
    upload(client, other_tenant, "Webhook settings", NEIGHBOURS["Webhook settings"])
    ids = {
        title: upload(client, tenant, title, text) for title, text in NEIGHBOURS.items() if title != "Webhook settings"
    }
    chat = PostgresChat(container.db, mode="hybrid")
    embedder = container.query_embedder
    thread = chat.create_thread(tenant.project_id, None, [UUID(ids["Sync retries"])])
    # When the exact-term question is asked in the project, and in the scoped thread
    in_project = _titles(chat, embedder, tenant.project_id, None)
    in_thread = _titles(chat, embedder, tenant.project_id, thread.id)
    # Then the other project's page never appears, and the thread sees only its own document
    assert "Webhook settings" not in in_project and set(in_project) <= {"Export retries", "Sync retries"}
    assert in_thread and set(in_thread) == {"Sync retries"}
    # And the other project, unscoped, finds its page first
    assert _titles(chat, embedder, other_tenant.project_id, None)[0] == "Webhook settings"


def test_a_project_without_the_term_still_gets_vector_passages(client: TestClient, container: Container) -> None:
    # Given a project whose pages share no word with the question
    tenant = make_tenant(container, "words")
    upload(client, tenant, "Export retries", NEIGHBOURS["Export retries"])
    # When the question is asked
    titles = _titles(PostgresChat(container.db, mode="hybrid"), container.query_embedder, tenant.project_id, None)
    # Then the vector side alone still ranks the page (the fusion is a union, not an intersection)
    assert titles and set(titles) == {"Export retries"}


def test_lexeme_statistics_follow_ingest_and_deletion(
    client: TestClient, container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Given the three pages in the project and one of them in another project
    ids = {title: upload(client, tenant, title, text) for title, text in NEIGHBOURS.items()}
    upload(client, other_tenant, "Webhook settings", NEIGHBOURS["Webhook settings"])

    def stats(project: UUID) -> tuple[int, int, int]:
        with container.db.transaction() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM chunks WHERE project_id = %(p)s) AS stored,"
                " (SELECT chunks FROM chunk_lexemes WHERE project_id = %(p)s AND lexeme = '') AS counted,"
                " (SELECT chunks FROM chunk_lexemes WHERE project_id = %(p)s AND lexeme = 'qz4') AS term",
                {"p": project},
            ).fetchone()
        assert row is not None
        return row["stored"], row["counted"], row["term"]

    chunks, counted, identifier = stats(tenant.project_id)
    assert chunks == counted and identifier == 1
    # When the page naming the identifier is deleted
    deleted = client.delete(
        f"/query/v1/projects/{tenant.project_id}/documents/{ids['Webhook settings']}/", headers=tenant.headers
    )
    # Then the project's counts drop with its chunks, and the other project's stay
    assert deleted.status_code == 204
    chunks_after, counted_after, identifier_after = stats(tenant.project_id)
    assert chunks_after == counted_after < counted and identifier_after == 0
    assert stats(other_tenant.project_id)[1:] == (stats(other_tenant.project_id)[0], 1)


def test_hybrid_search_reads_only_the_projects_partition_and_its_full_text_index(
    client: TestClient, container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    # Given two projects created after the migrations (0015's trigger made their partitions) with the same page
    for each in (tenant, other_tenant):
        upload(client, each, "Webhook settings", NEIGHBOURS["Webhook settings"])
    params = {
        "project_id": tenant.project_id,
        "thread_id": None,
        "query": QUESTION,
        "vector": container.query_embedder.embed([QUESTION])[0],
        "top_k": 3,
        "candidates": 12,
    }
    mine, theirs = (f"chunks_{each.project_id.hex}" for each in (tenant, other_tenant))
    # When the hybrid statements of a new question and of a follow-up are planned, and the indexes listed
    with container.db.transaction() as conn:
        plans = [
            "\n".join(str(r["QUERY PLAN"]) for r in conn.execute("EXPLAIN " + sql, params).fetchall())
            for sql in (_STATEMENTS["hybrid"].new, _STATEMENTS["hybrid"].in_thread)
        ]
        full_text = {
            r["tablename"]
            for r in conn.execute(
                "SELECT tablename FROM pg_indexes WHERE tablename = ANY(%s) AND indexdef LIKE '%%USING gin (search)%%'",
                ([mine, theirs],),
            ).fetchall()
        }
    # Then both read the project's own partition only (the plain equality prunes), and each partition has
    # its own full-text index
    assert all(mine in plan and theirs not in plan for plan in plans)
    assert full_text == {mine, theirs}


def test_stored_terms_score_each_chunk_as_bm25_over_its_words(
    client: TestClient, container: Container, tenant: Tenant
) -> None:
    # Given the three pages in the project
    for title, text in NEIGHBOURS.items():
        upload(client, tenant, title, text)
    # When every chunk's BM25 for the question is read from its stored sparse terms (migration 0018) and
    # computed from its tsvector's lexemes directly (k1 = 1.2, heading occurrences twice)
    with container.db.transaction() as conn:
        rows = conn.execute(
            "WITH q AS (" + _QUERY_TERMS + "),"
            " v AS (SELECT lexeme_vector(array_agg(q.lexeme), array_agg(q.idf)) AS terms FROM q)"
            " SELECT c.id, -(c.terms <#> v.terms) AS stored,"
            "  (SELECT coalesce(sum(q.idf * f.tf * 2.2 / (f.tf + 1.2)), 0) FROM unnest(c.search) u"
            "   JOIN q ON q.lexeme = u.lexeme CROSS JOIN LATERAL (SELECT (cardinality(u.positions)"
            "   + cardinality(array_positions(u.weights, 'A')))::float8 AS tf) f) AS direct"
            " FROM chunks c, v WHERE c.project_id = %(project_id)s",
            {"project_id": tenant.project_id, "query": QUESTION},
        ).fetchall()
    # Then both agree on every chunk (to float4's precision), and the words do tell the chunks apart
    assert rows and all(r["stored"] == pytest.approx(r["direct"], rel=1e-5, abs=1e-6) for r in rows)
    assert len({round(r["direct"], 3) for r in rows}) > 1


def test_only_rare_lexemes_select_candidates_and_common_ones_still_score(container: Container, tenant: Tenant) -> None:
    # Given 6,000 chunks, so that SELECTING_SHARE (1%) of them is 60, above SELECTING_FLOOR (50): one word is in
    # 55 chunks, another in 70 (of which 10 also hold the first), the rest hold neither
    chunks, rare, common = 6000, 55, 70
    assert float(SELECTING_SHARE) * chunks > int(SELECTING_FLOOR) and rare < float(SELECTING_SHARE) * chunks < common
    with container.db.transaction() as conn:
        document = conn.execute(
            "INSERT INTO documents (project_id, title, content_type, content_hash, status)"
            " VALUES (%(p)s, 'Many', 'text/plain', 'many', 'ready') RETURNING id",
            {"p": tenant.project_id},
        ).fetchone()
        assert document is not None
        conn.execute(
            "INSERT INTO chunks (document_id, project_id, ordinal, heading, content, embedding)"
            " SELECT %(d)s, %(p)s, g, 'Part',"
            "  CASE WHEN g < %(rare)s THEN 'zanzibar notes' ELSE 'filler notes' END"
            "  || CASE WHEN g >= %(rare)s - 10 AND g < %(rare)s - 10 + %(common)s THEN ' lanterns' ELSE '' END,"
            "  (SELECT array_agg(sin(g * 7 + i))::vector FROM generate_series(1, 384) i)"
            " FROM generate_series(0, %(n)s - 1) g",
            {"d": document["id"], "p": tenant.project_id, "n": chunks, "rare": rare, "common": common},
        )
        question = "Which zanzibar lanterns?"
        params = {
            "project_id": tenant.project_id,
            "query": question,
            "vector": container.query_embedder.embed([question])[0],
            "top_k": 3,
            "candidates": 12,
        }
        # When the question's lexemes are weighed, and the chunks are ranked by words alone
        terms = {r["lexeme"]: r for r in conn.execute(_QUERY_TERMS, params).fetchall()}
        by_words = conn.execute(_retrieval("", "text"), params).fetchall()
        contents = [
            r["content"]
            for r in conn.execute(
                "SELECT content FROM chunks WHERE project_id = %(p)s AND id = ANY(%(ids)s)",
                {"p": tenant.project_id, "ids": [r["chunk_id"] for r in by_words]},
            ).fetchall()
        ]
    # Then only the rare word selects candidates, though both weigh in (the common one with the lower IDF)
    assert terms["zanzibar"]["matching"] and not terms["lantern"]["matching"]
    assert terms["zanzibar"]["idf"] > terms["lantern"]["idf"] > 0
    # And the best candidates are the chunks holding both words: the common word ranks what the rare one found
    assert len(contents) == 3 and all("zanzibar" in c and "lanterns" in c for c in contents)


def test_document_chunk_counts_follow_their_chunks(client: TestClient, container: Container, tenant: Tenant) -> None:
    # Given the three pages ingested (migration 0019's triggers count each document's chunks for page evidence)
    ids = {title: upload(client, tenant, title, text) for title, text in NEIGHBOURS.items()}

    def counts() -> dict[UUID, tuple[int, int]]:
        with container.db.transaction() as conn:
            rows = conn.execute(
                "SELECT d.id, d.chunks_stored,"
                " (SELECT count(*) FROM chunks c WHERE c.project_id = d.project_id AND c.document_id = d.id) AS stored"
                " FROM documents d WHERE d.project_id = %(p)s",
                {"p": tenant.project_id},
            ).fetchall()
        return {r["id"]: (r["chunks_stored"], r["stored"]) for r in rows}

    before = counts()
    assert len(before) == 3 and all(kept == stored > 0 for kept, stored in before.values())
    # When one page's chunks are stored again beside the first ones, one of another page's is deleted, and
    # the third page is deleted through the API
    sync, export, webhook = (UUID(str(ids[t])) for t in ("Sync retries", "Export retries", "Webhook settings"))
    with container.db.transaction() as conn:
        conn.execute(
            "INSERT INTO chunks (document_id, project_id, ordinal, heading, content, embedding)"
            " SELECT document_id, project_id, ordinal + 1000, heading, content, embedding FROM chunks"
            " WHERE project_id = %(p)s AND document_id = %(d)s",
            {"p": tenant.project_id, "d": sync},
        )
        conn.execute(
            "DELETE FROM chunks WHERE id = (SELECT min(id) FROM chunks"
            " WHERE project_id = %(p)s AND document_id = %(d)s)",
            {"p": tenant.project_id, "d": export},
        )
    deleted = client.delete(f"/query/v1/projects/{tenant.project_id}/documents/{webhook}/", headers=tenant.headers)
    # Then each remaining document's stored count is its number of chunks, which moved as they did
    assert deleted.status_code == 204
    after = counts()
    assert set(after) == {sync, export}
    assert all(kept == stored for kept, stored in after.values())
    assert after[sync][0] == 2 * before[sync][0] and after[export][0] == before[export][0] - 1
