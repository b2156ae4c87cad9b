-- Issue 17 point 3: documents are ingested off the request path, in batches that may span invocations.
--
-- chunks_total is NULL until the IngestFunction has parsed and chunked the file; chunks_done counts the chunks
-- stored so far and only grows. Documents ingested before this migration are complete (or failed) already.
ALTER TABLE documents ADD COLUMN chunks_total integer;
ALTER TABLE documents ADD COLUMN chunks_done integer NOT NULL DEFAULT 0;
UPDATE documents SET chunks_total = chunk_count, chunks_done = chunk_count WHERE status = 'ready';

-- A batch written twice (a redelivered message, an invocation that timed out after its commit) must not
-- duplicate chunks: each (document, ordinal) is stored once. The partition key leads, as a unique index on the
-- partitioned table requires (every statement names the project anyway, migration 0015).
CREATE UNIQUE INDEX chunks_document_ordinal_key ON chunks (project_id, document_id, ordinal);
