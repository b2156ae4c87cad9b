"""Bulk import of past interactions from CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.api.pagination import PageDep, PagePublic
from threadline.api.routing import contract_router
from threadline.domain import imports
from threadline.domain.errors import InvalidInput

router = contract_router(prefix="/query/v1/projects/{project_id}/interactions/import", tags=["imports"])


class RejectionPublic(BaseModel):
    """A row that was not imported (the header is row 1)."""

    model_config = ConfigDict(from_attributes=True)

    row: int
    reason: str


class ImportJobPublic(BaseModel):
    """An import and its progress."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    status: Literal["pending", "running", "done"]
    content_hash: str
    columns: list[str]
    total_rows: int
    rows_done: int
    rows_rejected: int
    chunks_total: int
    chunks_done: int
    rejections: list[RejectionPublic]
    errors: list[str]
    created_at: datetime


class ImportFile(BaseModel):
    """A CSV sent as a multipart form."""

    file: bytes = Field(json_schema_extra={"format": "binary"}, description="the CSV, UTF-8 with a header row")


# The upload route reads its body itself (a form or a raw CSV), so its shapes are described here for OpenAPI.
_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "a CSV with a header: question, answer, timestamp[, latency_ms][, thread]",
        "content": {
            "multipart/form-data": {"schema": ImportFile.model_json_schema()},
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def _read_csv(request: Request, limit: int) -> bytes:
    """The file from a multipart `file` field or a text/csv body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("the multipart body needs a `file` field holding the CSV", field="file")
        data = await upload.read(limit + 1)
    elif content_type in {"text/csv", "application/csv", "text/plain"}:
        data = b""
        async for part in request.stream():
            data += part
            if len(data) > limit:
                break
    else:
        raise InvalidInput(
            "send the CSV as multipart/form-data (field `file`) or as a text/csv body", field="content-type"
        )
    if len(data) > limit:
        raise InvalidInput("the file is too large", max_bytes=limit)
    return data


@router.post(
    "/",
    status_code=202,
    responses={200: {"model": ImportJobPublic, "description": "the same file was already imported"}},
    openapi_extra=_CSV_BODY,
)
async def start_import(
    request: Request, response: Response, container: ContainerDep, project_id: ProjectIdDep
) -> ImportJobPublic:
    """Upload a CSV (question, answer, timestamp[, latency_ms][, thread]); 202 with the job, 200 if already imported."""
    settings = container.settings
    data = await _read_csv(request, settings.import_max_bytes)
    files, queue = container.import_files, container.import_queue
    job, created = await run_in_threadpool(
        imports.start_import, container.imports, files, queue, project_id, data, settings.import_chunk_rows
    )
    if not created:
        response.status_code = 200
    return ImportJobPublic.model_validate(job)


@router.get("/")
def list_imports(container: ContainerDep, project_id: ProjectIdDep, page: PageDep) -> PagePublic[ImportJobPublic]:
    """The project's imports, newest first, with their progress."""
    return PagePublic[ImportJobPublic].of(imports.list_jobs(container.imports, project_id, page))


@router.get("/{job_id}/")
def get_import(container: ContainerDep, project_id: ProjectIdDep, job_id: UUID) -> ImportJobPublic:
    """An import's status: rows done, rows rejected with reasons, errors."""
    return ImportJobPublic.model_validate(container.imports.get_job(project_id, job_id))
