-- Backfills: relabelling many past threads with the Step Functions state machine (issue 5).

-- One row per backfill job. An execution is one attempt at it: a stopped or failed job is resumed
-- by a new execution of the same row, which skips the ranges already recorded done.
CREATE TABLE backfills (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL means every project (the operator's `threadline backfill --all`).
    project_id         uuid REFERENCES projects (id) ON DELETE CASCADE,
    scope              text NOT NULL CHECK (scope IN ('unlabelled', 'relabel_auto')),
    state              text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'succeeded', 'failed', 'stopped')),
    -- Threads created after the cutoff belong to the SQS path; auto labels written after it are
    -- this job's own (or fresher), so a resumed relabel never touches them again.
    cutoff             timestamptz NOT NULL DEFAULT now(),
    attempt            integer NOT NULL DEFAULT 1,
    execution_arn      text,
    planned            boolean NOT NULL DEFAULT false,
    error              text,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- One running backfill per project (NULL, every project, counts as one more "project").
CREATE UNIQUE INDEX backfills_one_running_key
    ON backfills ((coalesce(project_id, '00000000-0000-0000-0000-000000000000'::uuid)))
    WHERE state = 'running';
CREATE INDEX backfills_project_started_idx ON backfills (project_id, started_at DESC);

-- The keyset ranges a backfill was split into: [first_id, next_id) of one project's thread ids.
CREATE TABLE backfill_ranges (
    backfill_id   uuid NOT NULL REFERENCES backfills (id) ON DELETE CASCADE,
    ordinal       integer NOT NULL,
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    first_id      uuid NOT NULL,
    next_id       uuid,
    planned       integer NOT NULL,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    labelled      integer NOT NULL DEFAULT 0,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    finished_at   timestamptz,
    PRIMARY KEY (backfill_id, ordinal)
);

-- Keyset ranges walk one project's threads in id order.
CREATE INDEX threads_project_id_idx ON threads (project_id, id);
