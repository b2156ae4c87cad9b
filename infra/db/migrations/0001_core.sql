-- Core schema shared by every capability: tenancy, documents and their chunks, threads and messages.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE teams (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE projects (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id     uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_team_idx ON projects (team_id);

-- Only a hash of each key is kept; the prefix lets people tell their keys apart.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name          text NOT NULL,
    prefix        text NOT NULL UNIQUE,
    key_hash      bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
CREATE INDEX api_keys_project_idx ON api_keys (project_id);

CREATE TABLE categories (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description  text NOT NULL DEFAULT '',
    examples     text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX categories_project_name_key ON categories (project_id, lower(name));

CREATE TABLE documents (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id    uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title         text NOT NULL,
    source        text NOT NULL DEFAULT '',
    content_type  text NOT NULL,
    content_hash  text NOT NULL,
    size_bytes    integer NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
    error         text,
    chunk_count   integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT documents_project_content_key UNIQUE (project_id, content_hash)
);
CREATE INDEX documents_project_created_idx ON documents (project_id, created_at DESC, id DESC);

CREATE TABLE chunks (
    id           bigserial PRIMARY KEY,
    document_id  uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    ordinal      integer NOT NULL,
    heading      text NOT NULL DEFAULT '',
    content      text NOT NULL,
    embedding    vector(384) NOT NULL
);
CREATE INDEX chunks_document_idx ON chunks (document_id, ordinal);
CREATE INDEX chunks_project_idx ON chunks (project_id);
CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

CREATE TABLE threads (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    system_prompt     text,
    document_ids      uuid[],
    first_question    text,
    message_count     integer NOT NULL DEFAULT 0,
    category_id       uuid REFERENCES categories (id) ON DELETE SET NULL,
    label_source      text CHECK (label_source IN ('auto', 'user')),
    label_confidence  real,
    label_model       text,
    labelled_at       timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- A thread either has a complete label or none at all.
    CONSTRAINT threads_label_complete CHECK ((category_id IS NULL) = (label_source IS NULL))
);
-- Keyset pagination: newest first, per project, optionally per category, or the unlabelled.
CREATE INDEX threads_project_created_idx ON threads (project_id, created_at DESC, id DESC);
CREATE INDEX threads_project_category_created_idx ON threads (project_id, category_id, created_at DESC, id DESC);
CREATE INDEX threads_project_unlabelled_idx ON threads (project_id, created_at DESC, id DESC) WHERE category_id IS NULL;

-- One row per exchange: a question and the answer to it.
CREATE TABLE messages (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    thread_id          uuid NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    project_id         uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    question           text NOT NULL,
    answer             text NOT NULL DEFAULT '',
    sources            jsonb NOT NULL DEFAULT '[]',
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'complete', 'incomplete', 'failed')),
    model              text,
    prompt_tokens      integer NOT NULL DEFAULT 0,
    completion_tokens  integer NOT NULL DEFAULT 0,
    latency_ms         integer,
    first_token_ms     integer,
    retrieval_score    real,
    created_at         timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz
);
CREATE INDEX messages_thread_idx ON messages (thread_id, created_at, id);
CREATE INDEX messages_project_created_idx ON messages (project_id, created_at);
