-- Keys with scopes and origins, the widget's rate limits, and feedback on answers (issue 12).
--
-- `scope`: 'admin' keys (every key from before this migration) reach every route of their project; 'widget'
-- keys are public (they sit in a web page) and may only chat, read the threads they started and rate answers,
-- and only from the origins listed on them: normalised `scheme://host[:port]`, lower-case, no path, no wildcard.
-- A NOT NULL column with a constant default rewrites no rows; the CHECKs are validated with one scan of a small
-- table.
ALTER TABLE api_keys
    ADD COLUMN scope text NOT NULL DEFAULT 'admin' CONSTRAINT api_keys_scope_known CHECK (scope IN ('admin', 'widget')),
    ADD COLUMN origins text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT api_keys_origins_by_scope CHECK ((scope = 'widget') = (cardinality(origins) > 0));

-- A preflight carries no key: is this Origin listed on any active widget key? (api/cors.py caches the answer.)
CREATE INDEX api_keys_widget_origins_idx ON api_keys USING gin (origins) WHERE revoked_at IS NULL AND scope = 'widget';

-- The key whose chat created the thread (NULL for threads from before, imported or created by POST .../threads/):
-- a widget key reads and continues only its own threads. No foreign key: keys are revoked, never deleted (a
-- project's deletion takes its threads too), and a foreign key would make each key's deletion scan threads.
ALTER TABLE threads ADD COLUMN api_key_id uuid;

-- Fixed one-minute windows of widget requests, per key ('k:<key id>') and per client IP ('ip:<address>'),
-- counted by one INSERT ... ON CONFLICT per request so every Lambda instance shares the same count.
-- UNLOGGED: a crash may forget the current minute's counts (it is emptied on recovery), which costs nothing
-- but a minute of leniency, and saves the WAL writes of every widget request. Old windows are pruned by the
-- same statement, a few rows at a time (api adapters: postgres/rate_limits.py).
CREATE UNLOGGED TABLE rate_limit_windows (
    bucket        text NOT NULL,
    window_start  timestamptz NOT NULL,
    hits          integer NOT NULL,
    CONSTRAINT rate_limit_windows_pkey PRIMARY KEY (bucket, window_start)
);
CREATE INDEX rate_limit_windows_start_idx ON rate_limit_windows (window_start);

-- Feedback on answers: one row per (answer, key), so a retried or changed rating replaces the first one.
-- project_id is the answer's (copied for the rollup below); the answer's deletion (with its thread) takes its
-- feedback along. The comment is at most 2,000 characters (domain/feedback.py checks it first, with a 422).
CREATE TABLE answer_feedback (
    message_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    api_key_id  uuid NOT NULL,
    project_id  uuid NOT NULL,
    rating      text NOT NULL CONSTRAINT answer_feedback_rating_known CHECK (rating IN ('up', 'down')),
    comment     text CONSTRAINT answer_feedback_comment_length CHECK (length(comment) <= 2000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT answer_feedback_pkey PRIMARY KEY (message_id, api_key_id)
);
-- Analytics read the minutes around a window's edges from the rows, by (project, time of the first rating).
CREATE INDEX answer_feedback_project_created_idx ON answer_feedback (project_id, created_at);

-- Ratings per (project, UTC hour of the first rating), kept exactly like the rollups of 0007 and 0009: a
-- statement-level trigger with transition tables, in the writing transaction, applied in key order. A rating
-- changed from up to down moves one count from `up` to `down` in the hour it was first given.
CREATE TABLE analytics_feedback_hours (
    project_id  uuid NOT NULL,
    hour        timestamptz NOT NULL,
    up          integer NOT NULL,
    down        integer NOT NULL,
    CONSTRAINT analytics_feedback_hours_pkey PRIMARY KEY (project_id, hour) INCLUDE (up, down)
);

CREATE TYPE analytics_feedback_change AS (project_id uuid, created_at timestamptz, rating text, sign integer);

CREATE FUNCTION analytics_count_feedback(changes analytics_feedback_change[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO analytics_feedback_hours AS r (project_id, hour, up, down)
    SELECT * FROM (
        SELECT project_id, date_trunc('hour', created_at, 'UTC') AS hour,
               sum(sign * (rating = 'up')::int) AS up,
               sum(sign * (rating = 'down')::int) AS down
        FROM unnest(changes)
        GROUP BY 1, 2
    ) delta
    WHERE (up, down) <> (0, 0)
    ORDER BY 1, 2
    ON CONFLICT (project_id, hour) DO UPDATE SET up = r.up + EXCLUDED.up, down = r.down + EXCLUDED.down
$$;

CREATE FUNCTION analytics_feedback_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changes analytics_feedback_change[] := '{}';
BEGIN
    IF TG_OP <> 'INSERT' THEN
        changes := ARRAY(SELECT (project_id, created_at, rating, -1)::analytics_feedback_change FROM old_rows);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        changes := changes || ARRAY(SELECT (project_id, created_at, rating, 1)::analytics_feedback_change
                                    FROM new_rows);
    END IF;
    PERFORM analytics_count_feedback(changes);
    RETURN NULL;
END
$$;

CREATE TRIGGER analytics_feedback_inserted AFTER INSERT ON answer_feedback
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_feedback_changed();
CREATE TRIGGER analytics_feedback_updated AFTER UPDATE ON answer_feedback
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_feedback_changed();
CREATE TRIGGER analytics_feedback_deleted AFTER DELETE ON answer_feedback
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_feedback_changed();

CREATE FUNCTION analytics_feedback_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics_feedback_hours;
    RETURN NULL;
END
$$;
-- TRUNCATE of messages cascades to nothing by itself (TRUNCATE needs CASCADE for referencing tables), so
-- emptying answer_feedback is the only way its rows all go at once.
CREATE TRIGGER analytics_feedback_truncated AFTER TRUNCATE ON answer_feedback
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_feedback_truncated();

-- The recount of 0009, now with the feedback rollup: the same lock, the same one-project-at-a-time loop.
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
                    1)::analytics_exchange_change
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
