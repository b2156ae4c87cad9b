-- Where each thread came from, and the per-project settings of the hosted MCP server (issue 13).
--
-- `channel` is set once, when the thread is created: `api` (the /query/v1 chat routes; also every thread from
-- before this migration and every imported one), `widget` (the embeddable widget), `openai` (POST
-- /v1/chat/completions) or `mcp` (the hosted MCP server's `ask` tool). A NOT NULL column with a constant
-- default rewrites no rows (the default lives in the catalogue); the CHECK is validated with one scan.
ALTER TABLE threads ADD COLUMN channel text NOT NULL DEFAULT 'api'
    CONSTRAINT threads_channel_known CHECK (channel IN ('api', 'widget', 'openai', 'mcp'));

-- The listing's `channel=` filter, on the same keyset as the other listing indexes.
CREATE INDEX threads_project_channel_created_idx ON threads (project_id, channel, created_at DESC, id DESC);

-- Threads per (project, UTC hour of created_at, channel), kept exactly like the rollups of 0007: a statement-level
-- trigger with transition tables, in the writing transaction, applied in key order.
CREATE TABLE analytics_channel_hours (
    project_id  uuid NOT NULL,
    hour        timestamptz NOT NULL,
    channel     text NOT NULL,
    threads     integer NOT NULL,
    CONSTRAINT analytics_channel_hours_pkey PRIMARY KEY (project_id, hour, channel) INCLUDE (threads)
);

CREATE TYPE analytics_channel_change AS (project_id uuid, created_at timestamptz, channel text, sign integer);

CREATE FUNCTION analytics_count_channels(changes analytics_channel_change[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO analytics_channel_hours AS r (project_id, hour, channel, threads)
    SELECT project_id, date_trunc('hour', created_at, 'UTC'), channel, sum(sign)
    FROM unnest(changes)
    GROUP BY 1, 2, 3
    HAVING sum(sign) <> 0
    ORDER BY 1, 2, 3
    ON CONFLICT (project_id, hour, channel) DO UPDATE SET threads = r.threads + EXCLUDED.threads
$$;

-- An UPDATE counts only the rows whose key changed (no code path changes project, creation time or channel,
-- so the chat's follow-ups and every label write add a join of one-row transition tables and nothing more).
CREATE FUNCTION analytics_channels_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM analytics_count_channels(ARRAY(
            SELECT (project_id, created_at, channel, 1)::analytics_channel_change FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM analytics_count_channels(ARRAY(
            SELECT (project_id, created_at, channel, -1)::analytics_channel_change FROM old_rows));
    ELSE
        PERFORM analytics_count_channels(ARRAY(
            SELECT (c.project_id, c.created_at, c.channel, c.sign)::analytics_channel_change
            FROM old_rows o JOIN new_rows n ON n.id = o.id
            CROSS JOIN LATERAL (VALUES (o.project_id, o.created_at, o.channel, -1),
                                       (n.project_id, n.created_at, n.channel, 1)) AS c (project_id, created_at, channel, sign)
            WHERE (o.project_id, o.created_at, o.channel) IS DISTINCT FROM (n.project_id, n.created_at, n.channel)));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER analytics_channels_inserted AFTER INSERT ON threads
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_channels_changed();
CREATE TRIGGER analytics_channels_updated AFTER UPDATE ON threads
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_channels_changed();
CREATE TRIGGER analytics_channels_deleted AFTER DELETE ON threads
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analytics_channels_changed();

CREATE FUNCTION analytics_channels_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics_channel_hours;
    RETURN NULL;
END
$$;
CREATE TRIGGER analytics_channels_truncated AFTER TRUNCATE ON threads
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_channels_truncated();

-- The recount of 0007, now with the channel rollup: the same lock, the same one-project-at-a-time loop.
CREATE OR REPLACE FUNCTION analytics_recount(project_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    project uuid;
BEGIN
    LOCK TABLE threads, messages IN SHARE MODE;
    DELETE FROM analytics_thread_hours WHERE project_id = ANY(project_ids);
    DELETE FROM analytics_exchange_hours WHERE project_id = ANY(project_ids);
    DELETE FROM analytics_latency_bins WHERE project_id = ANY(project_ids);
    DELETE FROM analytics_channel_hours WHERE project_id = ANY(project_ids);
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
    END LOOP;
END
$$;

-- Existing threads are all `api`: one row per (project, hour) from what is there now.
INSERT INTO analytics_channel_hours (project_id, hour, channel, threads)
SELECT project_id, date_trunc('hour', created_at, 'UTC'), channel, count(*)
FROM threads
GROUP BY 1, 2, 3;

-- The hosted MCP server of a project: what its clients are told (instructions) and how its two tools are named
-- and described. No row means the defaults of domain/mcp.py; NULL in a column means that column's default.
CREATE TABLE mcp_settings (
    project_id               uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    instructions             text,
    search_tool_name         text,
    search_tool_description  text,
    ask_tool_name            text,
    ask_tool_description     text,
    updated_at               timestamptz NOT NULL DEFAULT now()
);
