-- Indexes the API contract's new reads need (issue 15).

-- One answer's alerts (GET /query/v1/answers/{id}/), and the cascade when a thread and its messages are deleted:
-- without it, each deleted message scans the project's alerts.
CREATE INDEX alerts_message_idx ON alerts (message_id);

-- The import jobs listing, newest first, keyset-paginated on (created_at, id).
CREATE INDEX import_jobs_project_created_idx ON import_jobs (project_id, created_at DESC, id DESC);
