-- Issue 14 point 5 and the chat's time to first token on the projects most teams have: a few thousand chunks.
--
-- A chunk's embedding (384 floats, 1,544 bytes) was stored with the vector type's default, EXTERNAL: whenever
-- the row passed the ~2 kB TOAST threshold, which a chunk with its content, tsvector and BM25 terms always does,
-- the embedding was the biggest column and was moved out of line first. The HNSW graph holds its own copy of
-- every vector, so a graph walk never noticed; but the planner sorts a small partition exactly instead of
-- walking its graph, and an exact sort reads every embedding: each one a TOAST index probe and a TOAST page.
-- EXPLAIN (ANALYZE, BUFFERS) of the chat's search on a 2,000-chunk project: 6,336 buffers and 6.5 ms, against
-- 500 buffers and 2.5 ms with the embeddings in the row. Hybrid retrieval reads the cosine of every text
-- candidate too, and a thread scoped to documents sorts its documents' chunks exactly, so both paid it as well.
-- `python -m bench.search_sizes` prints search latency by project size with the embeddings in TOAST and in the
-- row, in one run (README, Measured).
--
-- MAIN keeps the embedding in the row and moves the other columns out first (content, search, terms); the row
-- then fits under the threshold with the embedding (bench.search_sizes: 40.0 MiB of heap for 20,000 chunks, four
-- rows to an 8 kB page), and MAIN, unlike PLAIN, may still move it out as a last resort rather than fail an
-- insert. The setting reaches every partition, and partitions created
-- later inherit it. Rows already stored keep their out-of-line embedding until rewritten, so each partition is
-- rewritten here (CLUSTER on its primary key is the rewrite allowed inside this migration's transaction; it also
-- rebuilds the partition's indexes, HNSW graph included, and holds the partition's lock until the migration
-- commits: about 20 s per 50,000 chunks on a 2-core host; run it in a quiet window, as 0020).
ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE MAIN;

DO $$
DECLARE
    partition regclass;
    primary_key name;
BEGIN
    FOR partition, primary_key IN
        SELECT i.inhrelid::regclass, k.relname
        FROM pg_inherits i
        JOIN pg_index x ON x.indrelid = i.inhrelid AND x.indisprimary
        JOIN pg_class k ON k.oid = x.indexrelid
        WHERE i.inhparent = 'chunks'::regclass
    LOOP
        EXECUTE format('CLUSTER %s USING %I', partition, primary_key);
        -- The rewrite was the point; later CLUSTERs should not assume this order.
        EXECUTE format('ALTER TABLE %s SET WITHOUT CLUSTER', partition);
    END LOOP;
END
$$;
