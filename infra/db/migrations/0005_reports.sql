-- Usage analytics and scheduled email reports (issue 6).

-- Analytics read threads by (project, created_at) and need only the label columns: with them in the
-- index, a year of a large project is an index-only scan. The key (and the name) stay the listing
-- index's, so keyset pagination uses it exactly as before. (On a large live table, build the new
-- index CONCURRENTLY under another name first and swap; a migration runs in one transaction.)
DROP INDEX threads_project_created_idx;
CREATE INDEX threads_project_created_idx ON threads (project_id, created_at DESC, id DESC)
    INCLUDE (category_id, label_source);

-- Per-exchange figures (volume, status, latency, tokens) by (project, created_at) without touching
-- the heap; same key and name as before, so every query the plain index served, it serves.
DROP INDEX messages_project_created_idx;
CREATE INDEX messages_project_created_idx ON messages (project_id, created_at)
    INCLUDE (status, latency_ms, first_token_ms, prompt_tokens, completion_tokens);

-- One row per team; absent means "never configured" (reports off).
CREATE TABLE report_settings (
    team_id     uuid PRIMARY KEY REFERENCES teams (id) ON DELETE CASCADE,
    recipients  text[] NOT NULL DEFAULT '{}' CHECK (cardinality(recipients) <= 50),
    cadence     text NOT NULL DEFAULT 'weekly' CHECK (cadence IN ('weekly', 'monthly')),
    timezone    text NOT NULL DEFAULT 'UTC',
    enabled     boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT report_settings_enabled_needs_recipients CHECK (NOT enabled OR cardinality(recipients) > 0)
);

-- One row per team and period: the claim that makes "at most one report per period" hold. A worker
-- claims the row BEFORE building and sending; the states are
--   claimed   -> being built, nothing handed to SES yet (safe to take over once the lease is stale)
--   sending   -> handed to SES; if the worker dies here nobody knows whether SES accepted the mail
--   sent      -> SES accepted it (ses_message_id kept)
--   failed    -> definitely not sent (SES refused, or building failed): retried on a later tick
--   uncertain -> a 'sending' claim went stale: never resent automatically (at most once), an
--                operator decides with `threadline report --now --team ID --resend`
CREATE TABLE reports (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id         uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    cadence         text NOT NULL CHECK (cadence IN ('weekly', 'monthly')),
    period_start    date NOT NULL,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    timezone        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('claimed', 'sending', 'sent', 'failed', 'uncertain')),
    attempts        integer NOT NULL DEFAULT 1,
    claim_token     uuid NOT NULL,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    sending_at      timestamptz,
    sent_at         timestamptz,
    ses_message_id  text,
    recipients      text[] NOT NULL DEFAULT '{}',
    error           text,
    CONSTRAINT reports_team_period_key UNIQUE (team_id, cadence, period_start),
    CONSTRAINT reports_period_order CHECK (starts_at < ends_at),
    CONSTRAINT reports_sent_has_id CHECK (status <> 'sent' OR ses_message_id IS NOT NULL)
);
CREATE INDEX reports_open_idx ON reports (status, claimed_at) WHERE status IN ('claimed', 'sending');
