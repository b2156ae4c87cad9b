-- Issue 16 point 1 (hybrid may add <= 5 ms at p95) and issue 14 point 5 (TTFT): hybrid retrieval's page
-- evidence divides the BM25 of a document's candidates by the document's chunk count. The statement counted it
-- per candidate row through the (project_id, document_id, ordinal) index: EXPLAIN (ANALYZE, BUFFERS) on 100k
-- chunks in 10 projects showed that subplan run once per candidate (46 loops, not once per document), each
-- reading ~170 index entries and, until a vacuum sets the visibility map (fresh ingests), as many heap pages:
-- 7,852 heap fetches, 11 ms of a 43 ms query. The count is stored here instead, so the statement reads it with
-- the document's title, one row per candidate document.
--
-- documents.chunk_count is set only when ingestion finishes, and chunks_done may run ahead of the chunks
-- committed (batches may commit out of order); chunks_stored counts the rows in chunks exactly, in the writer's
-- transaction, by statement-level triggers (as 0017's chunk_lexemes), so COPY and every other writer keep it.
ALTER TABLE documents ADD COLUMN chunks_stored integer NOT NULL DEFAULT 0;

-- Adds `sign` times the number of occurrences of each document in `document_ids` to its chunks_stored. The rows
-- are locked in id order first, so two writers touching the same documents cannot deadlock; an ingest batch
-- updates its document's row in the same transaction anyway (chunks_done), so this adds no new contention.
CREATE FUNCTION documents_count_chunks(document_ids uuid[], sign integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM documents WHERE id = ANY(document_ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE documents d SET chunks_stored = d.chunks_stored + sign * c.n
    FROM (SELECT x.id, count(*) AS n FROM unnest(document_ids) x(id) GROUP BY x.id) c
    WHERE d.id = c.id;
END
$$;

CREATE FUNCTION chunks_documents_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM documents_count_chunks(array_agg(n.document_id), 1) FROM new_rows n;
    RETURN NULL;
END
$$;

-- A document being deleted takes its chunks by cascade: its row is gone already and the update finds nothing.
CREATE FUNCTION chunks_documents_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM documents_count_chunks(array_agg(o.document_id), -1) FROM old_rows o;
    RETURN NULL;
END
$$;

CREATE TRIGGER chunks_documents_insert AFTER INSERT ON chunks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chunks_documents_inserted();
CREATE TRIGGER chunks_documents_delete AFTER DELETE ON chunks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chunks_documents_deleted();

-- Chunks already stored are counted once here.
UPDATE documents d SET chunks_stored = c.n
FROM (SELECT document_id, count(*) AS n FROM chunks GROUP BY document_id) c
WHERE d.id = c.document_id;
