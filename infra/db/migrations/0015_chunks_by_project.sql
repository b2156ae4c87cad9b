-- Issue 14 point 5: each project searches only its own chunks' graph.
--
-- One HNSW graph over every project's chunks made a project's search a filtered graph walk: most candidates
-- belonged to other projects, so recall@10 was 0.954 at ef_search 400 (p50 10.9 ms on 100k chunks in 10
-- projects) and 0.979 cost p50 18 ms. LIST partitions by project give each project its own table and its own
-- HNSW graph (the partitioned index below is built per partition): a search is pruned to one partition at plan
-- time and walks a graph holding nothing but that project's chunks, so no candidate is filtered out. A small
-- project's partition is small enough that the planner sorts it exactly instead (measured in bench/chat.py).
--
-- The partition is created with the project (trigger below) and dropped with it, which also deletes its chunks
-- at once instead of row by row. There is no DEFAULT partition: a chunk of a project without a partition is an
-- error, never a row silently landing in a shared graph (and CREATE TABLE ... PARTITION OF need not scan one).

ALTER TABLE chunks RENAME TO chunks_single;
ALTER INDEX chunks_pkey RENAME TO chunks_single_pkey;
ALTER INDEX chunks_document_idx RENAME TO chunks_single_document_idx;
ALTER INDEX chunks_project_idx RENAME TO chunks_single_project_idx;
ALTER INDEX chunks_embedding_hnsw RENAME TO chunks_single_embedding_hnsw;
ALTER TABLE chunks_single ALTER COLUMN id DROP DEFAULT;
ALTER SEQUENCE chunks_id_seq OWNED BY NONE;

-- The foreign key's cascade (deleting a document) runs DELETE FROM chunks WHERE <its columns>: with the
-- project in the key it is pruned to one partition instead of probing (and locking) every project's. It also
-- makes a chunk's document belong to the chunk's project, and it implies the project exists, so the row-by-row
-- check of a separate key on projects is gone from every COPY of an ingest.
CREATE UNIQUE INDEX documents_project_id_key ON documents (project_id, id);

-- The primary key must hold the partition key; ids still come from the one sequence, so they stay unique.
CREATE TABLE chunks (
    id           bigint NOT NULL DEFAULT nextval('chunks_id_seq'),
    document_id  uuid NOT NULL,
    project_id   uuid NOT NULL,
    ordinal      integer NOT NULL,
    heading      text NOT NULL DEFAULT '',
    content      text NOT NULL,
    embedding    vector(384) NOT NULL,
    PRIMARY KEY (project_id, id),
    FOREIGN KEY (project_id, document_id) REFERENCES documents (project_id, id) ON DELETE CASCADE
) PARTITION BY LIST (project_id);
ALTER SEQUENCE chunks_id_seq OWNED BY chunks.id;

-- Partitioned indexes: every partition gets its own, the HNSW graph included.
CREATE INDEX chunks_document_idx ON chunks (document_id, ordinal);
CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

-- The partition of a project: chunks_<its id without dashes> (39 characters; its indexes' names fit in 63).
CREATE FUNCTION chunks_partition_name(project uuid) RETURNS text LANGUAGE sql IMMUTABLE
    RETURN 'chunks_' || replace(project::text, '-', '');

CREATE FUNCTION create_chunks_partition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF chunks FOR VALUES IN (%L)',
                   chunks_partition_name(NEW.id), NEW.id);
    RETURN NULL;
END
$$;

-- Before the project's row goes: dropping the partition removes its chunks in one step (the cascade through
-- documents would otherwise delete them one by one, each a visit to the HNSW graph at vacuum time).
CREATE FUNCTION drop_chunks_partition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', chunks_partition_name(OLD.id));
    RETURN OLD;
END
$$;

CREATE TRIGGER projects_create_chunks_partition AFTER INSERT ON projects
    FOR EACH ROW EXECUTE FUNCTION create_chunks_partition();
CREATE TRIGGER projects_drop_chunks_partition BEFORE DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION drop_chunks_partition();

-- Existing projects get their partitions, and their chunks move over (ids kept).
DO $$
DECLARE
    project uuid;
BEGIN
    FOR project IN SELECT id FROM projects LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF chunks FOR VALUES IN (%L)', chunks_partition_name(project), project);
    END LOOP;
END
$$;
INSERT INTO chunks (id, document_id, project_id, ordinal, heading, content, embedding)
    SELECT id, document_id, project_id, ordinal, heading, content, embedding FROM chunks_single;
DROP TABLE chunks_single;
