-- The sweeper (issue 17): threads it asked the classifier for, and the dead-letter depths it reported.

-- One row per thread the sweep has asked for, so a thread the classifier keeps skipping (its project's
-- categories all gone, a poison question) is asked for once per retry period rather than every sweep.
-- A side table, not a column of threads: the sweep never rewrites thread rows (nor their rollups).
CREATE TABLE thread_sweeps (
    thread_id    uuid PRIMARY KEY REFERENCES threads (id) ON DELETE CASCADE,
    requested_at timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 1
);

-- The sweep finds unlabelled threads across every project, oldest first; only unlabelled threads with a
-- question are in this index, so it stays as small as the backlog.
CREATE INDEX threads_unlabelled_created_idx ON threads (created_at)
    WHERE category_id IS NULL AND first_question IS NOT NULL;

-- Per dead-letter queue: the depth last reported to operators and when (no row: nothing reported).
CREATE TABLE dead_letter_notices (
    queue       text PRIMARY KEY,
    depth       integer NOT NULL CHECK (depth > 0),
    notified_at timestamptz NOT NULL
);
