"""The composition root: builds adapters from settings once per process and hands them out."""

from __future__ import annotations

from functools import cached_property, lru_cache

from threadline.adapters.embeddings import OnnxMiniLM
from threadline.adapters.postgres.db import Database
from threadline.adapters.postgres.documents import PostgresDocuments
from threadline.adapters.postgres.tenancy import PostgresTenancy
from threadline.settings import Settings, get_settings


class Container:
    """Lazily built dependencies; nothing connects or loads a model until first used."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def db(self) -> Database:
        """The process's connection pool."""
        if not self.settings.database_url:
            raise RuntimeError("DATABASE_URL is not set (`threadline dev` sets it for the local stack)")
        return Database(self.settings.database_url, max_size=self.settings.db_pool_max)

    @cached_property
    def tenancy(self) -> PostgresTenancy:
        """Teams, projects and keys."""
        return PostgresTenancy(self.db)

    @cached_property
    def embedder(self) -> OnnxMiniLM:
        """The embedding model, loaded on first use (about 0.3 s)."""
        return OnnxMiniLM(self.settings.embedding_tokenizer_path, self.settings.embedding_model_path)

    @cached_property
    def documents(self) -> PostgresDocuments:
        """Documents and their chunks."""
        return PostgresDocuments(self.db)

    def close(self) -> None:
        """Release connections."""
        if "db" in self.__dict__:
            self.db.close()


@lru_cache(maxsize=1)
def get_container() -> Container:
    """The process-wide container, for Lambda handlers and the CLI."""
    return Container(get_settings())
