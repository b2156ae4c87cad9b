"""Bulk import of past interactions from CSV."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from threadline.api.deps import ContainerDep, ProjectIdDep
from threadline.domain import imports
from threadline.domain.errors import InvalidInput

router = APIRouter(prefix="/query/v1/projects/{project_id}/interactions/import", tags=["imports"])


class RejectionPublic(BaseModel):
    """A row that was not imported (the header is row 1)."""

    row: int
    reason: str


class ImportJobPublic(BaseModel):
    """An import and its progress."""

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


def _job(job: imports.ImportJob) -> ImportJobPublic:
    return ImportJobPublic(
        id=job.id,
        status=job.status,
        content_hash=job.content_hash,
        columns=list(job.columns),
        total_rows=job.total_rows,
        rows_done=job.rows_done,
        rows_rejected=job.rows_rejected,
        chunks_total=job.chunks_total,
        chunks_done=job.chunks_done,
        rejections=[RejectionPublic(row=r.row, reason=r.reason) for r in job.rejections],
        errors=job.errors,
        created_at=job.created_at,
    )


async def _read_csv(request: Request, limit: int) -> bytes:
    """The file from a multipart `file` field or a text/csv body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=5)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("the multipart body needs a `file` field holding the CSV")
        data = await upload.read(limit + 1)
    elif content_type in {"text/csv", "application/csv", "text/plain"}:
        data = b""
        async for part in request.stream():
            data += part
            if len(data) > limit:
                break
    else:
        raise InvalidInput("send the CSV as multipart/form-data (field `file`) or as a text/csv body")
    if len(data) > limit:
        raise InvalidInput("the file is too large", max_bytes=limit)
    return data


@router.post("/", status_code=202)
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
    return _job(job)


@router.get("/{job_id}/")
async def get_import(container: ContainerDep, project_id: ProjectIdDep, job_id: UUID) -> ImportJobPublic:
    """An import's status: rows done, rows rejected with reasons, errors."""
    return _job(await run_in_threadpool(container.imports.get_job, project_id, job_id))
