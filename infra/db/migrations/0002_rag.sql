-- RAG chat: why an answer ended badly, and when the model handed the user to a human.
ALTER TABLE messages ADD COLUMN error text;
ALTER TABLE messages ADD COLUMN handoff_reason text;
-- Documents put into the DocumentsBucket remember their object key, so a redelivered S3 event is recognised.
CREATE INDEX documents_project_source_idx ON documents (project_id, source) WHERE source <> '';
