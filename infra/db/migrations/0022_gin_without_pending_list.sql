-- Hybrid retrieval on small projects: the full-text index takes each chunk's lexemes when the chunk is written.
--
-- A GIN index's default (fastupdate on) appends new entries to a pending list, unsorted, which every search
-- reads in full until a VACUUM (or 4 MB of pending entries) merges it into the index. Autovacuum vacuums a
-- partition after 1,000 inserts plus 20% of its rows, so a project under ~1,000 chunks may never be vacuumed,
-- and every hybrid search of it scanned the pending list. `python -m bench.search_sizes --before pending` (fresh
-- partitions, analysed, not vacuumed; README, Measured): hybrid search p50 3.20 ms with the pending list against
-- 1.97 ms without at 500 chunks, 4.79 against 3.61 ms at 2,000, 7.68 against 4.44 ms at 5,000. The price is paid
-- at write time: loading 2,000 chunks with COPY took 3.4-3.6 s against 2.7 s (~0.4 ms a chunk, beside ~18 ms of
-- embedding each), and bench.ingest's ratio to the raw embedding rate read 0.79 against 0.80.
--
-- A partitioned index's storage parameters cannot be altered, so it is rebuilt (every partition's GIN index
-- with it, from the rows: which also merges every pending list); partitions created later take the definition.
-- GIN builds in bulk: 0.6 s for 60,000 chunks on a 2-core host (0020's graphs: ~10 s per 10,000); chunks is
-- locked while it runs.
DROP INDEX chunks_search_gin;
CREATE INDEX chunks_search_gin ON chunks USING gin (search) WITH (fastupdate = off);
