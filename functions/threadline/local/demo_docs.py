"""The repository's own documentation as the demo project's documents, so a newcomer's first question
gets a grounded answer (`make dev` runs this for the demo project)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from threadline.bootstrap import Container
from threadline.domain import documents
from threadline.domain.documents import Document, Upload

REPO_ROOT = Path(__file__).resolve().parents[3]


def repository_docs(root: Path = REPO_ROOT) -> list[Path]:
    """README.md and docs/*.md, in a stable order."""
    found = [root / "README.md"] if (root / "README.md").is_file() else []
    return found + sorted((root / "docs").glob("*.md"))


def ingest_repository_docs(container: Container, project_id: UUID, root: Path = REPO_ROOT) -> list[Document]:
    """Ingest the repository's documentation into a project; running it again changes nothing (content hash)."""
    ingested = []
    for path in repository_docs(root):
        relative = path.relative_to(root).as_posix()
        upload = Upload(data=path.read_bytes(), filename=relative, title=relative, source=f"repo:{relative}")
        document, _ = documents.ingest(container.documents, container.embedder, project_id, upload)
        ingested.append(document)
    return ingested
