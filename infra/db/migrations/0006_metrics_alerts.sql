-- Interaction metrics, running statistics, alert rules, alerts, and bulk imports of past interactions.

-- One value per (interaction, metric): recomputing a metric inserts nothing new.
CREATE TABLE interaction_metrics (
    message_id   uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    metric       text NOT NULL CHECK (length(metric) BETWEEN 1 AND 64),
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    value        double precision NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, metric)
);
CREATE INDEX interaction_metrics_project_metric_idx ON interaction_metrics (project_id, metric);

-- Running count, mean and M2 (sum of squared deviations) per project and metric, updated with
-- Welford/Chan's combination only for metric rows that were newly inserted, so that outlier rules
-- stay O(1) per interaction at any history size and a recomputation never skews them.
CREATE TABLE metric_stats (
    project_id  uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    metric      text NOT NULL,
    n           bigint NOT NULL DEFAULT 0 CHECK (n >= 0),
    mean        double precision NOT NULL DEFAULT 0,
    m2          double precision NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, metric)
);

CREATE TABLE alert_rules (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind         text NOT NULL CHECK (kind IN ('threshold', 'outlier')),
    metric       text NOT NULL CHECK (length(metric) BETWEEN 1 AND 64),
    operator     text CHECK (operator IN ('>', '>=', '<', '<=')),
    threshold    double precision,
    stddevs      double precision CHECK (stddevs > 0),
    min_samples  integer NOT NULL DEFAULT 30 CHECK (min_samples >= 2),
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_rules_shape CHECK (
        (kind = 'threshold' AND operator IS NOT NULL AND threshold IS NOT NULL AND stddevs IS NULL)
        OR (kind = 'outlier' AND operator IS NULL AND threshold IS NULL AND stddevs IS NOT NULL)
    )
);
CREATE INDEX alert_rules_project_idx ON alert_rules (project_id, created_at, id);

-- Which projects got the default rules: created with the project, or lazily for projects that
-- existed before this migration. A project whose owner deleted every rule does not get them back.
CREATE TABLE alert_rule_defaults (
    project_id  uuid PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    seeded_at   timestamptz NOT NULL DEFAULT now()
);

-- An alert keeps a copy of its rule and the statistics at the time, so it still reads right after
-- the rule is edited or deleted.
CREATE TABLE alerts (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    rule_id       uuid REFERENCES alert_rules (id) ON DELETE SET NULL,
    rule_name     text NOT NULL,
    message_id    uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    thread_id     uuid NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    metric        text NOT NULL,
    value         double precision NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('threshold', 'outlier')),
    operator      text,
    threshold     double precision,
    stddevs       double precision,
    mean          double precision,
    stddev        double precision,
    sample_count  bigint,
    occurred_at   timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alerts_rule_message_key UNIQUE (rule_id, message_id)
);
CREATE INDEX alerts_project_occurred_idx ON alerts (project_id, occurred_at DESC, id DESC);
CREATE INDEX alerts_project_thread_idx ON alerts (project_id, thread_id, occurred_at DESC, id DESC);
CREATE INDEX alerts_project_metric_idx ON alerts (project_id, metric, occurred_at DESC, id DESC);

-- A CSV of past interactions, identified per project by the SHA-256 of its bytes: the same file
-- imported twice is the same job.
CREATE TABLE import_jobs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    content_hash  text NOT NULL,
    object_key    text NOT NULL,
    columns       text[] NOT NULL,
    total_rows    integer NOT NULL CHECK (total_rows >= 0),
    size_bytes    bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT import_jobs_project_content_key UNIQUE (project_id, content_hash)
);

-- A byte range of the file holding whole CSV records, processed by one queue message in one
-- transaction; `done_at` flips once, with the chunk's final counts.
CREATE TABLE import_chunks (
    job_id         uuid NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    chunk_no       integer NOT NULL CHECK (chunk_no >= 0),
    first_row      integer NOT NULL,
    row_count      integer NOT NULL,
    byte_start     bigint NOT NULL,
    byte_end       bigint NOT NULL,
    enqueued_at    timestamptz,
    done_at        timestamptz,
    rows_done      integer NOT NULL DEFAULT 0,
    rows_rejected  integer NOT NULL DEFAULT 0,
    rejections     jsonb NOT NULL DEFAULT '[]',
    last_error     text,
    attempts       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, chunk_no)
);
