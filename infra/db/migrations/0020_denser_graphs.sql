-- Issue 14 point 5: recall@10 >= 0.98 with margin, without raising ef_search into the planner's cliff.
--
-- Every project's HNSW graph is rebuilt with ef_construction 128 (was pgvector's default 64; m stays 16, so the
-- graph's size and each search step's cost do not change). A wider beam at insert time picks better neighbours
-- for each node, so a search at the same ef_search misses fewer true neighbours. Measured on one project of
-- bench.chat's corpus (10,000 chunks: 200 real passages, each blended 50 ways; 300 held-out questions; recall
-- against numpy's exact top 10): ef_construction 64 scored 0.915 / 0.974 / 0.986 at ef_search 40 / 100 / 150,
-- 128 scored 0.929 / 0.982 / 0.993, for 1.3x the build time (7.6 -> 10.1 s; about +0.3 ms per ingested chunk
-- against ~46 ms of embedding it). m 24 (0.994 at 150) built 2.3x slower and m 32 with ef_construction 200
-- (0.998) 3.9x slower, for little more. Raising ef_search instead is not free: from ~165 the planner starts
-- sorting 10,000-chunk partitions exactly (Postgres CPU per chat 9 -> 25 ms; README, Measured).
--
-- A partitioned index's storage parameters cannot be altered, so the partitioned index is rebuilt, every
-- partition's graph with it; partitions created later take the new definition. The rebuild holds a lock on
-- chunks for its duration (about 10 s per 10,000 chunks on a 2-core host): run it in a quiet window.
DROP INDEX chunks_embedding_hnsw;
CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 128);
