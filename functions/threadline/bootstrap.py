"""The composition root: builds adapters from settings once per process and hands them out.

Every adapter is imported inside the property that builds it, so a function imports only what it
uses: a handler module that imported every adapter (openai, onnxruntime, boto3's clients, psycopg)
took 1.2-1.6 s to import on the 2-core development machine, against ~0.12 s for Powertools alone, and
that is every Lambda's cold start. tests/unit/test_cold_imports.py guards it; `python -m bench.coldstart`
measures it.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from threadline.domain.errors import Unavailable
from threadline.settings import Settings, get_settings

if TYPE_CHECKING:
    from threadline.adapters.aws.backfill import S3Manifests, StepFunctionsRunner
    from threadline.adapters.aws.chat_events import SqsChatEvents
    from threadline.adapters.aws.classify_queue import SqsClassifyQueue
    from threadline.adapters.aws.documents_bucket import S3Objects, SqsContinuations
    from threadline.adapters.aws.imports import S3ImportFiles, SqsImportQueue
    from threadline.adapters.embeddings import OnnxMiniLM
    from threadline.adapters.llm.openai_chat import OpenAIChat
    from threadline.adapters.postgres.alerts import PostgresAlerts
    from threadline.adapters.postgres.analytics import PostgresAnalytics
    from threadline.adapters.postgres.backfill import PostgresBackfills
    from threadline.adapters.postgres.categories import PostgresCategories
    from threadline.adapters.postgres.chat import PostgresChat
    from threadline.adapters.postgres.db import Database
    from threadline.adapters.postgres.documents import PostgresDocuments
    from threadline.adapters.postgres.feedback import PostgresFeedback
    from threadline.adapters.postgres.imports import PostgresImports
    from threadline.adapters.postgres.labels import PostgresLabels
    from threadline.adapters.postgres.rate_limits import PostgresRateCounter
    from threadline.adapters.postgres.reports import PostgresReports
    from threadline.adapters.postgres.tenancy import PostgresTenancy
    from threadline.domain.chat import ChatService
    from threadline.domain.classification import Classifier
    from threadline.domain.mcp import McpSettingsRepository
    from threadline.domain.reports import ReportServices
    from threadline.domain.sweeper import SweepServices


class Container:
    """Lazily built dependencies; nothing connects or loads a model until first used."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def db(self) -> Database:
        """The process's connection pool."""
        from threadline.adapters.postgres.db import Database

        if not self.settings.database_url:
            raise RuntimeError("DATABASE_URL is not set (`threadline dev` sets it for the local stack)")
        return Database(self.settings.database_url, max_size=self.settings.db_pool_max)

    @cached_property
    def tenancy(self) -> PostgresTenancy:
        """Teams, projects and keys."""
        from threadline.adapters.postgres.tenancy import PostgresTenancy

        return PostgresTenancy(self.db)

    @cached_property
    def rate_counter(self) -> PostgresRateCounter:
        """Widget keys' request counts, shared by every instance through the database."""
        from threadline.adapters.postgres.rate_limits import PostgresRateCounter

        return PostgresRateCounter(self.db)

    @cached_property
    def embedder(self) -> OnnxMiniLM:
        """The embedding model, loaded on first use (about 0.3 s)."""
        from threadline.adapters.embeddings import OnnxMiniLM

        return OnnxMiniLM(
            self.settings.embedding_tokenizer_path,
            self.settings.embedding_model_path,
            threads=self.settings.embedding_threads,
        )

    @cached_property
    def query_embedder(self) -> OnnxMiniLM:
        """The model for single questions on the chat path, on one intra-op thread.

        One short question gains nothing from a second thread, and on busy cores the thread hand-off
        costs more than it saves: measured 4.7 ms p50 / 12 ms p95 with one thread against 12.7 / 28 with two.
        """
        from threadline.adapters.embeddings import OnnxMiniLM

        return OnnxMiniLM(self.settings.embedding_tokenizer_path, self.settings.embedding_model_path, threads=1)

    @cached_property
    def documents(self) -> PostgresDocuments:
        """Documents and their chunks."""
        from threadline.adapters.postgres.documents import PostgresDocuments

        return PostgresDocuments(self.db)

    @cached_property
    def categories(self) -> PostgresCategories:
        """Categories per project."""
        from threadline.adapters.postgres.categories import PostgresCategories

        return PostgresCategories(self.db)

    @cached_property
    def labels(self) -> PostgresLabels:
        """Threads with their labels: listing, corrections, guarded automatic labels."""
        from threadline.adapters.postgres.labels import PostgresLabels

        return PostgresLabels(self.db)

    @cached_property
    def classify_queue(self) -> SqsClassifyQueue:
        """ClassifyQueue producer (sends nothing when CLASSIFY_QUEUE_URL is empty)."""
        from threadline.adapters.aws.classify_queue import SqsClassifyQueue
        from threadline.adapters.aws.clients import sqs_for

        settings = self.settings
        return SqsClassifyQueue(
            settings.classify_queue_url, lambda: sqs_for(settings.aws_endpoint_url, settings.aws_region)
        )

    @cached_property
    def classifier(self) -> Classifier:
        """The thread classifier: embedding prototypes, plus the LLM as fallback or primary when one is configured."""
        from threadline.domain.classification import Classifier

        chooser = None
        if self.settings.llm_configured:
            import openai

            from threadline.adapters.llm.classifier import OpenAICategoryChooser

            client = openai.OpenAI(
                base_url=self.settings.openai_base_url or None,
                api_key=self.settings.openai_api_key or "unused",
                timeout=self.settings.llm_timeout_s,
                max_retries=1,
            )
            chooser = OpenAICategoryChooser(client, self.settings.llm_model)
        return Classifier(
            categories=self.categories,
            embedder=self.embedder,
            margin=self.settings.classifier_margin,
            chooser=chooser,
            llm_primary=self.settings.classifier == "llm",
            corrections=self.labels,
        )

    @cached_property
    def alerts(self) -> PostgresAlerts:
        """Metrics, statistics, alert rules and alerts."""
        from threadline.adapters.postgres.alerts import PostgresAlerts

        return PostgresAlerts(self.db)

    @cached_property
    def feedback(self) -> PostgresFeedback:
        """Ratings of answers."""
        from threadline.adapters.postgres.feedback import PostgresFeedback

        return PostgresFeedback(self.db)

    @cached_property
    def imports(self) -> PostgresImports:
        """Import jobs and their chunks."""
        from threadline.adapters.postgres.imports import PostgresImports

        return PostgresImports(self.db)

    @property
    def import_files(self) -> S3ImportFiles:
        """The bucket uploaded import files go to."""
        from threadline.adapters.aws.clients import s3_for
        from threadline.adapters.aws.imports import S3ImportFiles

        if not self.settings.import_bucket:
            raise Unavailable("imports are not configured (IMPORT_BUCKET)")
        return S3ImportFiles(
            s3_for(self.settings.aws_endpoint_url, self.settings.aws_region), self.settings.import_bucket
        )

    @property
    def import_queue(self) -> SqsImportQueue:
        """The queue import chunks go to."""
        from threadline.adapters.aws.clients import sqs_for
        from threadline.adapters.aws.imports import SqsImportQueue

        if not self.settings.import_queue_url:
            raise Unavailable("imports are not configured (IMPORT_QUEUE_URL)")
        return SqsImportQueue(
            sqs_for(self.settings.aws_endpoint_url, self.settings.aws_region), self.settings.import_queue_url
        )

    @cached_property
    def backfills(self) -> PostgresBackfills:
        """Backfill jobs and their keyset ranges."""
        from threadline.adapters.postgres.backfill import PostgresBackfills

        return PostgresBackfills(self.db)

    @cached_property
    def backfill_runner(self) -> StepFunctionsRunner:
        """Executions of the backfill state machine (Unavailable when its ARN is not configured)."""
        from threadline.adapters.aws.backfill import StepFunctionsRunner
        from threadline.adapters.aws.clients import stepfunctions_for

        settings = self.settings
        return StepFunctionsRunner(
            settings.backfill_state_machine_arn,
            lambda: stepfunctions_for(settings.aws_endpoint_url, settings.aws_region),
        )

    @cached_property
    def backfill_manifests(self) -> S3Manifests:
        """Where Plan writes the Map's items."""
        from threadline.adapters.aws.backfill import S3Manifests
        from threadline.adapters.aws.clients import s3_for

        settings = self.settings
        return S3Manifests(settings.backfill_bucket, lambda: s3_for(settings.aws_endpoint_url, settings.aws_region))

    @cached_property
    def documents_bucket(self) -> S3Objects:
        """Objects uploaded to the DocumentsBucket."""
        from threadline.adapters.aws.clients import s3_for
        from threadline.adapters.aws.documents_bucket import S3Objects

        settings = self.settings
        return S3Objects(lambda: s3_for(settings.aws_endpoint_url, settings.aws_region))

    @property
    def ingest_continuations(self) -> SqsContinuations:
        """Where the IngestFunction sends documents it could not finish in one invocation (the IngestQueue)."""
        from threadline.adapters.aws.clients import sqs_for
        from threadline.adapters.aws.documents_bucket import SqsContinuations

        settings = self.settings
        return SqsContinuations(
            lambda: sqs_for(settings.aws_endpoint_url, settings.aws_region), settings.ingest_queue_url
        )

    @cached_property
    def sweeper(self) -> SweepServices:
        """What a sweep reads and tells: unlabelled threads, the dead-letter queues, the operators."""
        from datetime import timedelta

        from threadline.adapters.aws.clients import sns_for, sqs_for
        from threadline.adapters.aws.operations import SnsOperatorAlerts, SqsDeadLetterQueues
        from threadline.adapters.postgres.sweeper import PostgresSweeper
        from threadline.domain.sweeper import SweepPolicy, SweepServices

        s = self.settings
        return SweepServices(
            PostgresSweeper(self.db),
            self.classify_queue,
            SqsDeadLetterQueues(s.dead_letter_queue_urls.split(","), lambda: sqs_for(s.aws_endpoint_url, s.aws_region)),
            SnsOperatorAlerts(s.operator_alerts_topic_arn, lambda: sns_for(s.aws_endpoint_url, s.aws_region)),
            SweepPolicy(
                grace=timedelta(minutes=s.sweep_grace_minutes),
                retry_after=timedelta(minutes=s.sweep_retry_minutes),
                batch=s.sweep_batch,
            ),
        )

    @cached_property
    def llm(self) -> OpenAIChat | None:
        """The configured OpenAI-compatible model, or None for the offline extractive answerer."""
        from threadline.adapters.llm.openai_chat import OpenAIChat

        s = self.settings
        if not s.llm_configured:
            return None
        return OpenAIChat(s.openai_base_url, s.openai_api_key, s.llm_model, s.llm_timeout_s)

    @cached_property
    def chat_events(self) -> SqsChatEvents:
        """Classify and metrics messages, sent off the chat path."""
        from threadline.adapters.aws.chat_events import SqsChatEvents
        from threadline.adapters.aws.clients import sqs_for

        settings = self.settings
        return SqsChatEvents(
            # CLASSIFICATION_ENABLED=false turns the classify messages off (an empty URL means "not configured").
            settings.classify_queue_url if settings.classification_enabled else "",
            settings.metrics_queue_url,
            lambda: sqs_for(settings.aws_endpoint_url, settings.aws_region),
        )

    @cached_property
    def chat(self) -> ChatService:
        """Threads and answers."""
        from threadline.adapters.postgres.chat import PostgresChat
        from threadline.domain.chat import ChatService

        return ChatService(
            PostgresChat(self.db, self.settings.retrieval_ef_search, self.settings.retrieval_mode),
            self.query_embedder,
            self.llm,
            self.chat_events,
            top_k=self.settings.retrieval_top_k,
            history_budget=self.settings.history_token_budget,
            min_score=self.settings.retrieval_min_score,
        )

    @cached_property
    def passages(self) -> PostgresChat:
        """Retrieval over a project's chunks outside a thread (the MCP server's search tool)."""
        from threadline.adapters.postgres.chat import PostgresChat

        return PostgresChat(self.db, self.settings.retrieval_ef_search, self.settings.retrieval_mode)

    @cached_property
    def mcp_settings(self) -> McpSettingsRepository:
        """Each project's MCP server instructions and tool names."""
        from threadline.adapters.postgres.mcp_settings import PostgresMcpSettings

        return PostgresMcpSettings(self.db)

    @cached_property
    def analytics(self) -> PostgresAnalytics:
        """Project analytics aggregates."""
        from threadline.adapters.postgres.analytics import PostgresAnalytics

        return PostgresAnalytics(self.db)

    @cached_property
    def reports(self) -> PostgresReports:
        """Report settings, the report ledger and the report aggregates."""
        from threadline.adapters.postgres.reports import PostgresReports

        return PostgresReports(self.db)

    @cached_property
    def report_services(self) -> ReportServices:
        """What a report run needs, SES included."""
        from threadline.adapters.aws.mailer import SesMailer, ses_client
        from threadline.domain.reports import ReportServices

        reports = self.reports
        mailer = SesMailer(ses_client(self.settings))
        return ReportServices(reports, reports, reports, mailer, self.settings.report_sender)

    def close(self) -> None:
        """Release connections."""
        if "db" in self.__dict__:
            self.db.close()


@lru_cache(maxsize=1)
def get_container() -> Container:
    """The process-wide container, for Lambda handlers and the CLI."""
    return Container(get_settings())
