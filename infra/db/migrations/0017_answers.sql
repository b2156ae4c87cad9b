-- Hybrid retrieval and honest answers (issue 16).
--
-- Full text: a generated tsvector of each chunk, its heading path weighted above its text. The 'english'
-- configuration stems ("rebasing" finds "rebase") and drops stop words, so a natural-language question
-- ORed into a tsquery keeps only its content words; the parser keeps identifiers such as `--force-with-lease`
-- or `push.default` whole as well as in parts ('simple' would keep stop words and miss inflections). The
-- column is generated, so every writer of chunks gets it for free; adding it rewrites the chunks table once.
--
-- Runs after 0015: `chunks` is partitioned by project. The column added to the parent is added to every
-- partition, and the index on the parent is a partitioned index, built per partition; a partition created
-- later (0015's trigger, with each project) is created from the parent and so gets both. The statement
-- triggers below are on the parent too: every writer (ingest's COPY, the document cascade) writes through it.
ALTER TABLE chunks ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', heading), 'A') || setweight(to_tsvector('english', content), 'B')
) STORED;
CREATE INDEX chunks_search_gin ON chunks USING gin (search);

-- An answer is grounded when at least one passage passed the relevance floor; false marks an unanswered
-- question (a coverage gap: the documents do not cover it). NULL = unknown (pending, or imported).
ALTER TABLE messages ADD COLUMN grounded boolean;

-- Unanswered questions per (project, UTC hour), kept by the same statement-level triggers as 0007 (the
-- functions below redefine 0007's, adding `grounded`; the triggers themselves stay).
ALTER TABLE analytics_exchange_hours ADD COLUMN unanswered integer NOT NULL DEFAULT 0;
ALTER TABLE analytics_exchange_hours DROP CONSTRAINT analytics_exchange_hours_pkey;
ALTER TABLE analytics_exchange_hours ADD CONSTRAINT analytics_exchange_hours_pkey PRIMARY KEY (project_id, hour)
    INCLUDE (questions, incomplete, failed, answered, latency_sum_ms, prompt_tokens, completion_tokens, unanswered);

-- A new attribute goes last, after `sign`; every row constructor below names it.
ALTER TYPE analytics_exchange_change ADD ATTRIBUTE grounded boolean;

CREATE OR REPLACE FUNCTION analytics_count_exchanges(changes analytics_exchange_change[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO analytics_exchange_hours AS r (project_id, hour, questions, incomplete, failed, answered,
                                               latency_sum_ms, prompt_tokens, completion_tokens, unanswered)
    SELECT project_id, hour, questions, incomplete, failed, answered, latency_sum_ms, prompt_tokens,
           completion_tokens, unanswered
    FROM (
        SELECT project_id, date_trunc('hour', created_at, 'UTC') AS hour,
               sum(sign) AS questions,
               sum(sign * (status = 'incomplete')::int) AS incomplete,
               sum(sign * (status = 'failed')::int) AS failed,
               sum(sign * (latency_ms IS NOT NULL)::int) AS answered,
               sum(sign * coalesce(latency_ms, 0)::bigint) AS latency_sum_ms,
               sum(sign * prompt_tokens::bigint) AS prompt_tokens,
               sum(sign * completion_tokens::bigint) AS completion_tokens,
               sum(sign * (grounded IS FALSE)::int) AS unanswered
        FROM unnest(changes)
        GROUP BY 1, 2
    ) delta
    WHERE (questions, incomplete, failed, answered, latency_sum_ms, prompt_tokens, completion_tokens, unanswered)
          <> (0, 0, 0, 0, 0, 0, 0, 0)
    ORDER BY 1, 2
    ON CONFLICT (project_id, hour) DO UPDATE SET
        questions = r.questions + EXCLUDED.questions,
        incomplete = r.incomplete + EXCLUDED.incomplete,
        failed = r.failed + EXCLUDED.failed,
        answered = r.answered + EXCLUDED.answered,
        latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
        prompt_tokens = r.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = r.completion_tokens + EXCLUDED.completion_tokens,
        unanswered = r.unanswered + EXCLUDED.unanswered;

    INSERT INTO analytics_latency_bins AS r (project_id, grain, period, metric, bin, answers)
    SELECT c.project_id, g.grain, date_trunc(g.grain, c.created_at, 'UTC'), v.metric, analytics_bin(v.ms), sum(c.sign)
    FROM unnest(changes) AS c
    CROSS JOIN LATERAL (VALUES ('latency', c.latency_ms), ('first_token', c.first_token_ms)) AS v (metric, ms)
    CROSS JOIN (VALUES ('day'), ('month')) AS g (grain)
    WHERE v.ms IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
    HAVING sum(c.sign) <> 0
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (project_id, grain, period, metric, bin) DO UPDATE SET answers = r.answers + EXCLUDED.answers;
$$;

CREATE OR REPLACE FUNCTION analytics_exchanges_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changes analytics_exchange_change[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        changes := ARRAY(SELECT (project_id, created_at, status, latency_ms, first_token_ms, prompt_tokens,
                                 completion_tokens, -1, grounded)::analytics_exchange_change
                         FROM old_rows);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        changes := changes || ARRAY(SELECT (project_id, created_at, status, latency_ms, first_token_ms, prompt_tokens,
                                            completion_tokens, 1, grounded)::analytics_exchange_change
                                    FROM new_rows);
    END IF;
    PERFORM analytics_count_exchanges(changes);
    RETURN NULL;
END
$$;

-- The recount of 0013 (threads, exchanges, channels of 0009, feedback of 0013), its exchanges now with
-- `grounded`: the same lock, the same one-project-at-a-time loop.
CREATE OR REPLACE FUNCTION analytics_recount(project_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    project uuid;
BEGIN
    LOCK TABLE threads, messages, answer_feedback IN SHARE MODE;
    DELETE FROM analytics_thread_hours WHERE project_id = ANY(project_ids);
    DELETE FROM analytics_exchange_hours WHERE project_id = ANY(project_ids);
    DELETE FROM analytics_latency_bins WHERE project_id = ANY(project_ids);
    DELETE FROM analytics_channel_hours WHERE project_id = ANY(project_ids);
    DELETE FROM analytics_feedback_hours WHERE project_id = ANY(project_ids);
    FOREACH project IN ARRAY project_ids LOOP
        PERFORM analytics_count_threads(ARRAY(
            SELECT (project_id, created_at, category_id, label_source, 1)::analytics_thread_change
            FROM threads WHERE project_id = project));
        PERFORM analytics_count_exchanges(ARRAY(
            SELECT (project_id, created_at, status, latency_ms, first_token_ms, prompt_tokens, completion_tokens,
                    1, grounded)::analytics_exchange_change
            FROM messages WHERE project_id = project));
        PERFORM analytics_count_channels(ARRAY(
            SELECT (project_id, created_at, channel, 1)::analytics_channel_change
            FROM threads WHERE project_id = project));
        PERFORM analytics_count_feedback(ARRAY(
            SELECT (project_id, created_at, rating, 1)::analytics_feedback_change
            FROM answer_feedback WHERE project_id = project));
    END LOOP;
END
$$;

-- Labels explain themselves: the category that came second beside an auto label's confidence, so a team
-- reviews the doubtful labels first (`label_confidence_below=`) and sees what the classifier hesitated
-- over. No foreign key: category ids are never reused, the listing resolves it by a LEFT JOIN (a deleted
-- category reads as null), and an ON DELETE action would scan every thread on each category delete.
ALTER TABLE threads ADD COLUMN label_runner_up_id uuid;

-- Corrections teach the classifier: the embedding of each user-labelled thread's first question, computed
-- once. The category is read from the thread, so a changed label moves its example and a cleared one
-- drops it; deleting the thread deletes it.
CREATE TABLE label_examples (
    thread_id  uuid PRIMARY KEY REFERENCES threads (id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    embedding  vector(384) NOT NULL
);

-- BM25 needs each lexeme's document frequency within the project: ts_rank has no IDF, so a question's
-- common words ("git", "file") outweighed its one telling word (measured: text-only hit@1 29% with
-- ts_rank on Git's manual, see bench.retrieval). One row per (project, lexeme): how many of the project's
-- chunks hold it; the lexeme '' holds the project's chunk count (N). Kept by statement-level triggers in
-- the writer's transaction, upserted in key order so concurrent ingests of one project cannot deadlock.
-- Dropping a project's partition (0015, with the project) fires no delete trigger; the project's rows here
-- go by this table's own cascade from projects.
CREATE TABLE chunk_lexemes (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    lexeme     text NOT NULL,
    chunks     integer NOT NULL,
    PRIMARY KEY (project_id, lexeme)
);

-- Adds `sign` times the lexemes of the given (project_id, search) pairs to the counts.
CREATE FUNCTION chunk_lexemes_count(project_ids uuid[], searches tsvector[], sign integer) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO chunk_lexemes AS l (project_id, lexeme, chunks)
    SELECT project_id, lexeme, sign * count(*)
    FROM (
        SELECT r.project_id, w.lexeme
        FROM unnest(project_ids, searches) r(project_id, search), unnest(tsvector_to_array(r.search)) w(lexeme)
        UNION ALL
        SELECT r.project_id, '' FROM unnest(project_ids) r(project_id)
    ) x
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (project_id, lexeme) DO UPDATE SET chunks = l.chunks + EXCLUDED.chunks;
$$;

CREATE FUNCTION chunks_lexemes_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM chunk_lexemes_count(array_agg(n.project_id), array_agg(n.search), 1) FROM new_rows n;
    RETURN NULL;
END
$$;

CREATE FUNCTION chunks_lexemes_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A project being deleted takes its statistics with it (the cascade may reach them first).
    PERFORM chunk_lexemes_count(array_agg(o.project_id), array_agg(o.search), -1) FROM old_rows o
    WHERE EXISTS (SELECT 1 FROM projects p WHERE p.id = o.project_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER chunks_lexemes_insert AFTER INSERT ON chunks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chunks_lexemes_inserted();
CREATE TRIGGER chunks_lexemes_delete AFTER DELETE ON chunks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chunks_lexemes_deleted();

-- Chunks already stored are counted once here.
SELECT chunk_lexemes_count(array_agg(project_id), array_agg(search), 1) FROM chunks;
