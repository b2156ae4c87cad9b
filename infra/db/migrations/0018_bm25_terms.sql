-- Issue 16 point 1: BM25 as one sparse inner product per candidate.
--
-- 0017 scored BM25 by unnesting each candidate's tsvector and joining it to the question's lexemes: ~112 ms a
-- query on 5k chunks (bench.retrieval), far over the 5 ms hybrid may add. BM25 with b = 0 splits into a part
-- that depends on the chunk alone, tf * (k1 + 1) / (tf + k1) per lexeme, and a part that depends on the
-- project and the question, each question lexeme's IDF. The first is stored here as a pgvector sparsevec, one
-- dimension per lexeme; the query builds the second from chunk_lexemes the same way; a chunk's BM25 is then
-- their inner product (`<#>`, in C over ~100 non-zeros), the same figure 0017's SQL computed.
--
-- A lexeme's dimension is a hash of it (md5, stable across Postgres versions and machines, unlike hashtext)
-- into 2^29 dimensions: two lexemes share a dimension with probability ~1e-7 per pair, and then only add
-- each other's weight. k1 = 1.2 and the heading's double count (weight A) are baked in, as 0017's SQL had them;
-- changing them means rewriting this column.

CREATE FUNCTION lexeme_dimension(lexeme text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 1 + (('x' || left(md5(lexeme), 8))::bit(32)::integer & 536870911);

-- The sparse vector of the given lexemes and weights (weights of lexemes that share a dimension add up).
CREATE FUNCTION lexeme_vector(lexemes text[], weights float8[]) RETURNS sparsevec
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('{' || coalesce(string_agg(t.dimension || ':' || t.weight, ',' ORDER BY t.dimension), '')
            || '}/536870912')::sparsevec
    FROM (SELECT lexeme_dimension(u.lexeme) AS dimension, sum(u.weight) AS weight
          FROM unnest(lexemes, weights) u(lexeme, weight) GROUP BY 1) t
$$;

-- A chunk's BM25 term weights: the same tsvector as chunks.search (a generated column cannot read another),
-- tf = occurrences with the heading's counted twice, saturated with k1 = 1.2.
CREATE FUNCTION bm25_terms(heading text, content text) RETURNS sparsevec
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lexeme_vector(array_agg(u.lexeme), array_agg(f.tf * (1.2 + 1) / (f.tf + 1.2)))
    FROM unnest(setweight(to_tsvector('english', heading), 'A') || setweight(to_tsvector('english', content), 'B')) u
    CROSS JOIN LATERAL (
        SELECT (cardinality(u.positions) + cardinality(array_positions(u.weights, 'A')))::float8 AS tf
    ) f
$$;

-- Added on the partitioned parent, so every project's partition (present or created later by 0015's trigger)
-- has it; adding it rewrites the chunks once.
ALTER TABLE chunks ADD COLUMN terms sparsevec GENERATED ALWAYS AS (bm25_terms(heading, content)) STORED;
