-- Exact rollups for usage analytics and reports (issue 6).
--
-- Reading a year of a big project row by row costs O(rows): ~300 ms for 120,000 threads, seconds for a
-- million. These tables hold the same counts per UTC hour (threads, exchanges) and latency histograms per
-- UTC day and month. Statement-level triggers keep them in the writing transaction itself, so any snapshot
-- sees rows and rollups that agree: counts stay exact, and a rolled-back write leaves no trace.
-- A read takes whole hours from the rollups and only the minutes around its edges from the rows.
--
-- Concurrency: each statement applies its changes to the rollups in key order, and every writer takes
-- thread rows before rollup rows and thread rollups before exchange rollups (bulk writers lock their
-- threads first), so concurrent writers queue on a row instead of deadlocking. New threads of one project
-- in one hour share a row: their transactions serialize on it from the trigger to their commit (about a
-- millisecond in the chat), which bounds one project to several hundred new threads per second. Rows that
-- drop to zero are kept; they count for nothing. NULLS NOT DISTINCT needs PostgreSQL 15 or later.

-- Threads by (project, UTC hour of created_at, category). category_id NULL = unlabelled; the label
-- source of a category's threads is 'user' for `user_labelled` of them and 'auto' for the rest.
CREATE TABLE analytics_thread_hours (
    project_id     uuid NOT NULL,
    hour           timestamptz NOT NULL,
    category_id    uuid,
    threads        integer NOT NULL,
    user_labelled  integer NOT NULL,
    CONSTRAINT analytics_thread_hours_key UNIQUE NULLS NOT DISTINCT (project_id, hour, category_id)
        INCLUDE (threads, user_labelled)
);

-- Exchanges (messages rows) by (project, UTC hour of the question).
CREATE TABLE analytics_exchange_hours (
    project_id         uuid NOT NULL,
    hour               timestamptz NOT NULL,
    questions          integer NOT NULL,
    incomplete         integer NOT NULL,
    failed             integer NOT NULL,
    answered           integer NOT NULL,
    latency_sum_ms     bigint NOT NULL,
    prompt_tokens      bigint NOT NULL,
    completion_tokens  bigint NOT NULL,
    CONSTRAINT analytics_exchange_hours_pkey PRIMARY KEY (project_id, hour)
        INCLUDE (questions, incomplete, failed, answered, latency_sum_ms, prompt_tokens, completion_tokens)
);

-- Latency and first-token histograms per (project, UTC day or month of the question). Bins are
-- log-spaced (DDSketch's mapping): every value of bin i lies within 1% of the bin's value 2g^i/(g+1),
-- g = 1.01/0.99, so a percentile read from the bins is within 1% of the exact one. Months keep a year's
-- read small; days cover the edges of a window; the partial days at its very ends are read from the rows.
CREATE TABLE analytics_latency_bins (
    project_id  uuid NOT NULL,
    grain       text NOT NULL CHECK (grain IN ('day', 'month')),
    period      timestamptz NOT NULL,
    metric      text NOT NULL CHECK (metric IN ('latency', 'first_token')),
    bin         smallint NOT NULL,
    answers     integer NOT NULL,
    CONSTRAINT analytics_latency_bins_pkey PRIMARY KEY (project_id, grain, period, metric, bin) INCLUDE (answers)
);

-- The bin of a value in milliseconds; 0 ms and below share bin -1. 0.020000666706669... = ln(1.01/0.99),
-- written out so that the same constant is used everywhere (domain/usage.py LOG_GAMMA). Not STRICT, so
-- the planner inlines it (a STRICT one is called through the function machinery: twice as slow on a
-- read of 8,000 values); NULL still gives NULL.
CREATE FUNCTION analytics_bin(ms integer) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN ms < 1 THEN -1 ELSE ceil(ln(ms::double precision) / 0.020000666706669435)::smallint END;

-- A row's contribution, with its sign: +1 for a row that appears (insert, or the new side of an update),
-- -1 for one that goes away. An update that changes nothing counted nets to zero and writes nothing.
CREATE TYPE analytics_thread_change AS (
    project_id uuid, created_at timestamptz, category_id uuid, label_source text, sign integer
);
CREATE TYPE analytics_exchange_change AS (
    project_id uuid, created_at timestamptz, status text, latency_ms integer, first_token_ms integer,
    prompt_tokens integer, completion_tokens integer, sign integer
);

CREATE FUNCTION analytics_count_threads(changes analytics_thread_change[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO analytics_thread_hours AS r (project_id, hour, category_id, threads, user_labelled)
    SELECT project_id, date_trunc('hour', created_at, 'UTC'), category_id,
           sum(sign), sum(sign * (label_source IS NOT DISTINCT FROM 'user')::int)
    FROM unnest(changes)
    GROUP BY 1, 2, 3
    HAVING sum(sign) <> 0 OR sum(sign * (label_source IS NOT DISTINCT FROM 'user')::int) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (project_id, hour, category_id) DO UPDATE
        SET threads = r.threads + EXCLUDED.threads, user_labelled = r.user_labelled + EXCLUDED.user_labelled
$$;

CREATE FUNCTION analytics_count_exchanges(changes analytics_exchange_change[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO analytics_exchange_hours AS r (project_id, hour, questions, incomplete, failed, answered,
                                               latency_sum_ms, prompt_tokens, completion_tokens)
    SELECT project_id, hour, questions, incomplete, failed, answered, latency_sum_ms, prompt_tokens, completion_tokens
    FROM (
        SELECT project_id, date_trunc('hour', created_at, 'UTC') AS hour,
               sum(sign) AS questions,
               sum(sign * (status = 'incomplete')::int) AS incomplete,
               sum(sign * (status = 'failed')::int) AS failed,
               sum(sign * (latency_ms IS NOT NULL)::int) AS answered,
               sum(sign * coalesce(latency_ms, 0)::bigint) AS latency_sum_ms,
               sum(sign * prompt_tokens::bigint) AS prompt_tokens,
               sum(sign * completion_tokens::bigint) AS completion_tokens
        FROM unnest(changes)
        GROUP BY 1, 2
    ) delta
    WHERE (questions, incomplete, failed, answered, latency_sum_ms, prompt_tokens, completion_tokens)
          <> (0, 0, 0, 0, 0, 0, 0)
    ORDER BY 1, 2
    ON CONFLICT (project_id, hour) DO UPDATE SET
        questions = r.questions + EXCLUDED.questions,
        incomplete = r.incomplete + EXCLUDED.incomplete,
        failed = r.failed + EXCLUDED.failed,
        answered = r.answered + EXCLUDED.answered,
        latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
        prompt_tokens = r.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = r.completion_tokens + EXCLUDED.completion_tokens;

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

-- One function per table serves its INSERT, UPDATE and DELETE triggers (transition tables allow one event
-- per trigger). PL/pgSQL plans a statement when it first runs it, so the branch naming a transition table
-- that this event lacks is never planned.
CREATE FUNCTION analytics_threads_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changes analytics_thread_change[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        changes := ARRAY(SELECT (project_id, created_at, category_id, label_source, -1)::analytics_thread_change
                         FROM old_rows);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        changes := changes || ARRAY(SELECT (project_id, created_at, category_id, label_source, 1)::analytics_thread_change
                                    FROM new_rows);
    END IF;
    PERFORM analytics_count_threads(changes);
    RETURN NULL;
END
$$;

CREATE FUNCTION analytics_exchanges_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changes analytics_exchange_change[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        changes := ARRAY(SELECT (project_id, created_at, status, latency_ms, first_token_ms, prompt_tokens,
                                 completion_tokens, -1)::analytics_exchange_change
                         FROM old_rows);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        changes := changes || ARRAY(SELECT (project_id, created_at, status, latency_ms, first_token_ms, prompt_tokens,
                                            completion_tokens, 1)::analytics_exchange_change
                                    FROM new_rows);
    END IF;
    PERFORM analytics_count_exchanges(changes);
    RETURN NULL;
END
$$;

CREATE TRIGGER analytics_threads_inserted AFTER INSERT ON threads
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_threads_changed();
CREATE TRIGGER analytics_threads_updated AFTER UPDATE ON threads
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_threads_changed();
CREATE TRIGGER analytics_threads_deleted AFTER DELETE ON threads
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_threads_changed();
CREATE TRIGGER analytics_exchanges_inserted AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_exchanges_changed();
CREATE TRIGGER analytics_exchanges_updated AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_exchanges_changed();
CREATE TRIGGER analytics_exchanges_deleted AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_exchanges_changed();

-- TRUNCATE has no transition tables; it empties the rollups with the rows.
CREATE FUNCTION analytics_rows_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'threads' THEN
        TRUNCATE analytics_thread_hours;
    ELSE
        TRUNCATE analytics_exchange_hours, analytics_latency_bins;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER analytics_threads_truncated AFTER TRUNCATE ON threads
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_rows_truncated();
CREATE TRIGGER analytics_exchanges_truncated AFTER TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_rows_truncated();

-- Recount some projects' rollups from their rows, with the same counting functions: the initial fill
-- below, and the repair after rows were written with triggers off (session_replication_role = replica,
-- which the seeder uses to skip foreign-key checks). It blocks writes to threads and messages until the
-- transaction ends, so no change is counted twice or missed; reads go on.
CREATE FUNCTION analytics_recount(project_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    project uuid;
BEGIN
    LOCK TABLE threads, messages IN SHARE MODE;
    DELETE FROM analytics_thread_hours WHERE project_id = ANY(project_ids);
    DELETE FROM analytics_exchange_hours WHERE project_id = ANY(project_ids);
    DELETE FROM analytics_latency_bins WHERE project_id = ANY(project_ids);
    -- One project at a time keeps each array to one project's rows.
    FOREACH project IN ARRAY project_ids LOOP
        PERFORM analytics_count_threads(ARRAY(
            SELECT (project_id, created_at, category_id, label_source, 1)::analytics_thread_change
            FROM threads WHERE project_id = project));
        PERFORM analytics_count_exchanges(ARRAY(
            SELECT (project_id, created_at, status, latency_ms, first_token_ms, prompt_tokens, completion_tokens,
                    1)::analytics_exchange_change
            FROM messages WHERE project_id = project));
    END LOOP;
END
$$;

SELECT analytics_recount(ARRAY(SELECT id FROM projects ORDER BY id));
