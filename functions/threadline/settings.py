"""Configuration: one validated settings object, read lazily from the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# functions/ in the repository, /var/task (LAMBDA_TASK_ROOT) in the packaged artifact.
_CODE_ROOT = Path(__file__).resolve().parents[1]
_REPO_ROOT = _CODE_ROOT.parent


def _migrations_dir() -> Path:
    """The SQL migrations: in the Lambda artifact (`make package` puts them there), else in the repo."""
    shipped = _CODE_ROOT / "migrations"
    return shipped if shipped.is_dir() else _REPO_ROOT / "infra" / "db" / "migrations"


class Settings(BaseSettings):
    """Every knob Threadline reads. Names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # Database
    database_url: str = Field(default="", description="libpq URL; empty means the local embedded server")
    db_pool_max: int = Field(default=8, ge=1)
    migrations_dir: Path = Field(default_factory=_migrations_dir)

    # AWS (an empty endpoint means real AWS)
    # `localstack`: every boto3 client comes from localstack_client.session (adapters/aws/clients.py:new_client),
    # at localstack_host unless an explicit endpoint names another server.
    cloud: str = Field(default="aws", pattern="^(aws|localstack)$", validation_alias="THREADLINE_CLOUD")
    localstack_host: str = "localhost:4566"
    aws_endpoint_url: str = ""
    aws_region: str = Field(default="us-east-1", validation_alias="AWS_DEFAULT_REGION")
    documents_bucket: str = ""
    # Uploads through the API are stored in DOCUMENTS_BUCKET and ingested by the IngestFunction. Without a cloud
    # (tests, `threadline invoke` scripts) INGEST_INLINE=true ingests within the request instead; the template
    # never sets it, since ApiFunction's 30 s cannot embed a large file.
    ingest_inline: bool = False
    classify_queue_url: str = ""
    ingest_queue_url: str = ""
    metrics_queue_url: str = ""
    import_queue_url: str = ""
    import_bucket: str = ""
    import_chunk_rows: int = Field(default=1000, ge=1, le=100_000)
    import_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    backfill_state_machine_arn: str = ""
    backfill_bucket: str = ""
    # Ranges classified at once by the backfill's distributed Map (each one a Lambda invocation).
    backfill_map_concurrency: int = Field(default=10, ge=1, le=1000)
    # Threads per keyset range: one ClassifyRange invocation (a few seconds of embedding at 1,000).
    backfill_range_size: int = Field(default=1000, ge=1, le=100_000)
    report_sender: str = "reports@threadline.local"
    # The sweeper: unlabelled threads older than the grace period are asked for again, at most once per retry
    # period; dead-letter queues (comma-separated URLs) are watched and reported to the operators' SNS topic.
    sweep_grace_minutes: int = Field(default=10, ge=1)
    sweep_retry_minutes: int = Field(default=60, ge=1)
    sweep_batch: int = Field(default=5000, ge=1, le=100_000)
    dead_letter_queue_urls: str = ""
    operator_alerts_topic_arn: str = ""

    # LLM (any OpenAI-compatible server); no base URL and no key means the offline extractive answerer
    openai_base_url: str = ""
    openai_api_key: str = ""
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = 60.0
    history_token_budget: int = Field(default=3000, ge=0)

    # Embeddings and retrieval
    embedding_tokenizer_path: Path = _REPO_ROOT / "layers" / "model" / "tokenizer.json"
    # Built by `make model` (per-channel int8 of the published fp32 weights); /opt/... in Lambda (ModelLayer).
    embedding_model_path: Path = _REPO_ROOT / "layers" / "model" / "all-MiniLM-L6-v2.int8.onnx"
    # Intra-op threads of the batch model (ingestion, the classifier, the backfill); 0: onnxruntime's own choice,
    # one per physical core. Environments that share cores (several local workers on one laptop) set 1.
    embedding_threads: int = Field(default=0, ge=0, le=64)
    retrieval_top_k: int = Field(default=6, ge=1, le=50)
    # Candidates per HNSW scan step, in the project's own graph (migration 0015). recall@10 against exact top 10s
    # (numpy, every vector of the project; python -m bench.chat, 100k chunks in 10 projects, on held-out questions,
    # seed 6): 0.888-0.895 at 40, 0.964 at 100, 0.979-0.983 at 150 (three builds of the graphs), 0.985-0.987 at
    # 165. 165 meets 0.98 (search p50 4.9 ms) only because the planner starts sorting some 10,000-chunk partitions
    # exactly there (p95 62 ms; Postgres CPU per chat 25 against 9 ms, one stream's TTFT p95 136 against 70 ms),
    # and from 180 it sorts all of them. 150 is the widest beam that still walks every such graph: recall at the
    # 0.98 target's edge, no cliff. (The 1.000 at 40 measured before compared HNSW with itself: see
    # bench/chat.py, _exact.) Since migration 0020 built the graphs with ef_construction 128, the same measure
    # reads 0.917 at 40, 0.979 at 100 and 0.991 at 150 (one run, load 4-5): 150 now clears 0.98 with margin.
    retrieval_ef_search: int = Field(default=150, ge=10, le=1000)
    # Relevance floor: the documents cover a question when its best passage's cosine reaches it; a covered
    # question's passages down to domain/chat.py's PASSAGE_MARGIN below it are given to the model, and with none
    # reaching it the answer says the documents do not cover the question.
    # python -m bench.retrieval prints the best-score distributions of relevant and off-topic questions to
    # calibrate it (docs/architecture.md, "Honest answers"): relevant questions' best passage scored 0.469 at
    # least, off-topic ones 0.284 at most (token-based chunker); 0.35 sits between with room on both sides.
    retrieval_min_score: float = Field(default=0.35, ge=-1.0, le=1.0)
    # vector: pgvector alone; hybrid: BM25 full text fused with it (convex fusion plus page evidence, see
    # adapters/postgres/chat.py), the default since bench.retrieval measured it on held-out questions: hit@1
    # 65.5% against vector-only's 50.9% (2-fold cross-validation, +14.5 points), +1.95 ms at p95 on 100k
    # chunks in 10 projects (vector p95 10.23 ms, hybrid 12.18 ms; p50 +3.9 ms). Rerun at ef_search 150 on the
    # final model (quiet): +14.5 points held out, but +10.97 ms at p95 (p50 +1.2 ms): docs/architecture.md.
    # With the latency pass's mode order rotated (the earlier figures favoured hybrid) and the QAttention model,
    # quiet: +12.7 points (2-fold), +5.5 (leave-one-out), +11.60 ms at p95. Kept for the answers it gets right.
    retrieval_mode: str = Field(default="hybrid", pattern="^(vector|hybrid)$")

    # Classification
    classifier: str = Field(default="embedding", pattern="^(embedding|llm)$")
    classifier_margin: float = Field(default=0.02, ge=0.0)
    classification_enabled: bool = True

    # The web: widget keys' rate limits (requests per minute, per key and per client IP, shared through Postgres)
    # and the browser origins of the console (comma-separated `scheme://host[:port]`), which may call the API
    # with an admin key. Origins listed on active widget keys are allowed as well (api/cors.py).
    widget_rate_per_key: int = Field(default=60, ge=1)
    widget_rate_per_ip: int = Field(default=20, ge=1)
    console_origins: str = ""
    # Set by template.yaml on ChatFunction only: under the Lambda Web Adapter every request comes from the
    # adapter on 127.0.0.1, and the caller's address is in the `x-amzn-request-context` header it adds.
    aws_lwa_port: int | None = None

    # Local cloud
    local_dir: Path = _REPO_ROOT / ".local"

    @property
    def llm_configured(self) -> bool:
        """True when an OpenAI-compatible endpoint or key is set."""
        return bool(self.openai_base_url or self.openai_api_key)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()
