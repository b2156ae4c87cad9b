"""Documents of a project: upload (file or JSON text), list, get, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.api.errors import UNSUPPORTED, field_problems, invalid_fields
from threadline.api.models import RequestModel
from threadline.api.pagination import PageDep, PagePublic
from threadline.api.routing import contract_router
from threadline.domain import documents
from threadline.domain.documents import Upload
from threadline.domain.errors import DocumentRejected, InvalidInput, Unavailable
from threadline.domain.text import strip_unstorable, unstorable_reason

router = contract_router(prefix="/query/v1/projects/{project_id}/documents", tags=["documents"])


class DocumentText(RequestModel):
    """A document sent as JSON text (treated as Markdown, so headings are kept)."""

    title: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1)


class DocumentFile(BaseModel):
    """A document sent as a multipart form: the file and an optional title (the file name otherwise)."""

    file: bytes = Field(
        json_schema_extra={"format": "binary"},
        description="PDF, Word (.docx), Markdown, reStructuredText, HTML or plain text",
    )
    title: str | None = Field(default=None, max_length=300)


class DocumentPublic(BaseModel):
    """A document and its ingest status."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    title: str
    source: str
    content_type: str
    content_hash: str
    size_bytes: int
    status: str
    error: str | None
    chunk_count: int
    chunks_total: int | None = Field(description="chunks the file makes; null until the ingester has parsed it")
    chunks_done: int = Field(description="chunks embedded and stored so far (only grows)")
    created_at: datetime
    updated_at: datetime


# The upload route reads its body itself (a file or JSON), so its two shapes are described here for OpenAPI.
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": DocumentFile.model_json_schema()},
            "application/json": {"schema": DocumentText.model_json_schema()},
        },
    }
}


async def _upload_from(request: Request) -> Upload:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        try:
            body = DocumentText.model_validate_json(await request.body())
        except ValidationError as exc:
            raise invalid_fields(field_problems(exc.errors())) from exc
        return Upload(
            data=body.text.encode(), filename=f"{body.title}.md", declared_type="text/markdown", title=body.title
        )
    if media_type == "multipart/form-data":
        form = await request.form()
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidInput("multipart upload needs a `file` field", field="file")
        title = form.get("title")
        if isinstance(title, str) and (reason := unstorable_reason(title)):
            raise InvalidInput(f"title: {reason}", field="title")
        return Upload(
            data=await file.read(),
            # The name only seeds the title: its unstorable characters are dropped, like the file's own text's.
            filename=strip_unstorable(file.filename or "") or "upload",
            declared_type=file.content_type,
            title=title if isinstance(title, str) else None,
        )
    raise InvalidInput("send multipart/form-data with a `file` field, or JSON {title, text}", field="content-type")


@router.post(
    "/",
    status_code=202,
    responses={200: {"model": DocumentPublic, "description": "the same content was already uploaded"}, **UNSUPPORTED},
    openapi_extra=_UPLOAD_BODY,
)
async def upload_document(
    request: Request, response: Response, container: ContainerDep, project_id: ProjectIdDep
) -> DocumentPublic:
    """Upload a PDF, Word (.docx), Markdown, reStructuredText, HTML or text file (multipart `file`, optional
    `title`) or JSON {title, text}.

    Answers 202 with the document `pending`: the file is stored in the documents bucket and the
    IngestFunction embeds it; poll GET .../documents/{id}/ until `ready` (progress in `chunks_done` of
    `chunks_total`) or `failed` (with the reason). Re-uploading the same content returns the existing
    document with 200. With INGEST_INLINE (no cloud) the request ingests the file itself, so the 202
    already shows it `ready`, and a file that cannot be parsed is answered with 422 naming the reason.
    """
    upload = await _upload_from(request)
    settings = container.settings
    if settings.ingest_inline:
        document, created = await run_in_threadpool(
            documents.ingest, container.documents, container.embedder, project_id, upload
        )
    elif settings.documents_bucket:
        document, created = await run_in_threadpool(
            documents.submit,
            container.documents,
            container.documents_bucket,
            settings.documents_bucket,
            project_id,
            upload,
        )
    else:
        raise Unavailable("document uploads need DOCUMENTS_BUCKET (or INGEST_INLINE=true without a cloud)")
    if document.status == "failed":
        raise DocumentRejected(
            f"the document could not be ingested: {document.error}",
            document_id=str(document.id),
            reason=document.error,
        )
    if not created:
        response.status_code = 200
    return DocumentPublic.model_validate(document)


@router.get("/")
def list_documents(container: ContainerDep, project_id: ProjectIdDep, page: PageDep) -> PagePublic[DocumentPublic]:
    """The project's documents, newest first."""
    return PagePublic[DocumentPublic].of(documents.list_documents(container.documents, project_id, page))


@router.get("/{document_id}/")
def get_document(container: ContainerDep, project_id: ProjectIdDep, document_id: UUID) -> DocumentPublic:
    """One document with its status (pending, ready, failed with the reason)."""
    return DocumentPublic.model_validate(container.documents.get(project_id, document_id))


@router.delete("/{document_id}/", status_code=204)
def delete_document(container: ContainerDep, project_id: ProjectIdDep, document_id: UUID) -> Response:
    """Delete a document and all of its chunks."""
    container.documents.delete(project_id, document_id)
    return Response(status_code=204)
