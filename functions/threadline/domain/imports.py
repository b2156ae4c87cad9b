"""Bulk import of past interactions from a CSV file, processed in chunks off the request path.

The file's header names its columns: `question`, `answer` and `timestamp` are required;
`latency_ms` and `thread` are optional (other columns are ignored). Rows that share a non-empty
`thread` value become one thread; every other row is a thread of its own. Row numbers count the
header as row 1, as a spreadsheet shows them.

Idempotency: a job is identified per project by the SHA-256 of the file, so the same file is
the same job; message and thread ids are derived from (job, row) and (job, thread), so a retried
chunk inserts nothing twice; a chunk is stored in one transaction that flips its `done_at` once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol
from uuid import UUID, uuid5

from threadline.domain.alerts import AlertRepository, Judge, judge, rules_for
from threadline.domain.categories import ClassificationRequests
from threadline.domain.errors import DomainError, InvalidInput
from threadline.domain.instants import EARLIEST, LATEST
from threadline.domain.metrics import Interaction, Measurement, measure
from threadline.domain.pagination import Cursor, Page, PageRequest, page_of

REQUIRED_COLUMNS = ("question", "answer", "timestamp")
OPTIONAL_COLUMNS = ("latency_ms", "thread")
MAX_QUESTION_CHARS = 32_000
MAX_ANSWER_CHARS = 200_000
MAX_REJECTIONS_SHOWN = 1000
MAX_LATENCY_MS = 86_400_000
JobStatus = Literal["pending", "running", "done"]


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    """A byte range of the file holding whole records."""

    chunk_no: int
    first_row: int
    row_count: int
    byte_start: int
    byte_end: int


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What the upload check found: the columns, the row count and the chunks."""

    columns: tuple[str, ...]
    total_rows: int
    chunks: tuple[ChunkPlan, ...]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row that was not imported, and why."""

    row: int
    reason: str


@dataclass(frozen=True, slots=True)
class ImportedRow:
    """A valid row, ready to become a message."""

    row: int
    question: str
    answer: str
    occurred_at: datetime
    latency_ms: float | None
    thread_key: str


@dataclass(frozen=True, slots=True)
class ImportChunk:
    """A stored chunk of a job."""

    job_id: UUID
    project_id: UUID
    chunk_no: int
    first_row: int
    row_count: int
    byte_start: int
    byte_end: int
    object_key: str
    columns: tuple[str, ...]
    done: bool


@dataclass(frozen=True, slots=True)
class ImportJob:
    """An import and its progress."""

    id: UUID
    project_id: UUID
    content_hash: str
    status: JobStatus
    total_rows: int
    rows_done: int
    rows_rejected: int
    chunks_total: int
    chunks_done: int
    rejections: list[Rejection]
    errors: list[str]
    columns: tuple[str, ...]
    created_at: datetime


class ImportRepository(Protocol):
    """Storage of import jobs, their chunks, and what the chunks create."""

    def create_job(
        self, project_id: UUID, content_hash: str, object_key: str, plan: ImportPlan, size_bytes: int
    ) -> tuple[UUID, bool]: ...
    def get_job(self, project_id: UUID, job_id: UUID) -> ImportJob: ...
    def list_jobs(self, project_id: UUID, page: PageRequest) -> list[ImportJob]: ...
    def chunks_not_enqueued(self, job_id: UUID) -> list[int]: ...
    def mark_enqueued(self, job_id: UUID, chunk_nos: Sequence[int]) -> None: ...
    def get_chunk(self, project_id: UUID, job_id: UUID, chunk_no: int) -> ImportChunk | None: ...
    def store_chunk(
        self,
        chunk: ImportChunk,
        interactions: Sequence[Interaction],
        rejections: Sequence[Rejection],
        measurements: Sequence[Measurement],
        judge: Judge,
    ) -> list[UUID] | None:
        """Store a chunk once: the ids of the threads it created, or None when it was already stored."""
        ...

    def record_chunk_error(self, job_id: UUID, chunk_no: int, error: str) -> None: ...


class ImportFiles(Protocol):
    """Where uploaded files are kept."""

    def put(self, key: str, data: bytes) -> None: ...
    def read_range(self, key: str, start: int, end: int) -> bytes: ...


class ImportQueue(Protocol):
    """Hands chunks to the background worker."""

    def send_chunks(self, project_id: UUID, job_id: UUID, chunk_nos: Sequence[int]) -> None: ...


def _decoded_lines(data: bytes, offset: list[int]) -> Iterator[str]:
    # csv pulls one physical line at a time and never reads ahead, so `offset` is the byte position
    # just after the last record it returned. Splitting UTF-8 on b"\n" is safe: no multi-byte
    # sequence contains that byte.
    for line in io.BytesIO(data):
        offset[0] += len(line)
        yield line.decode("utf-8")


def _check_header(header: list[str]) -> tuple[str, ...]:
    # Excel writes a byte-order mark at the start of "CSV UTF-8" files; it is not part of the first column's name.
    columns = tuple(c.strip().lower() for c in [header[0].removeprefix("\ufeff"), *header[1:]] if header)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InvalidInput("the CSV header lacks required columns", missing=missing, required=list(REQUIRED_COLUMNS))
    duplicated = sorted({c for c in columns if c and columns.count(c) > 1})
    if duplicated:
        raise InvalidInput("the CSV header repeats columns", duplicated=duplicated)
    return columns


def plan_import(data: bytes, chunk_rows: int) -> ImportPlan:
    """Check a whole file (encoding, header, CSV structure) and cut it into chunks of whole records."""
    offset = [0]
    reader = csv.reader(_decoded_lines(data, offset), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidInput("the file is empty")
        columns = _check_header(header)
        chunks: list[ChunkPlan] = []
        start, rows, total = offset[0], 0, 0
        for _ in reader:
            rows += 1
            total += 1
            if rows == chunk_rows:
                chunks.append(ChunkPlan(len(chunks), total - rows + 2, rows, start, offset[0]))
                start, rows = offset[0], 0
    except UnicodeDecodeError as exc:
        raise InvalidInput("the file is not UTF-8 text") from exc
    except csv.Error as exc:
        raise InvalidInput("the file is not valid CSV", row=reader.line_num, reason=str(exc)) from exc
    if rows:
        chunks.append(ChunkPlan(len(chunks), total - rows + 2, rows, start, offset[0]))
    if total == 0:
        raise InvalidInput("the file has a header but no rows")
    return ImportPlan(columns, total, tuple(chunks))


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 (a missing offset means UTC) or Unix seconds, in UTC, between EARLIEST and LATEST.

    Raises ValueError for anything else, a time outside that range included.
    """
    value = text.strip()
    try:
        parsed = datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):
        parsed = datetime.fromisoformat(value)
    try:
        in_utc = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00:00-05:00 is in year 10000 in UTC
        raise ValueError("timestamp out of range") from exc
    if not EARLIEST <= in_utc < LATEST:
        raise ValueError("timestamp out of range")
    return in_utc


def _parse_latency(text: str) -> float | None:
    if not text.strip():
        return None
    value = float(text)
    if not math.isfinite(value) or not 0 <= value <= MAX_LATENCY_MS:
        raise ValueError("latency_ms out of range")
    # Stored as whole milliseconds; the metric uses the stored value so a recomputation agrees.
    return float(round(value))


def parse_row(row_no: int, fields: list[str], columns: tuple[str, ...]) -> ImportedRow | Rejection:
    """A valid row, or the reason it is rejected."""
    if not fields:
        return Rejection(row_no, "row is empty")
    if len(fields) != len(columns):
        return Rejection(row_no, f"expected {len(columns)} fields, found {len(fields)}")
    values = dict(zip(columns, fields, strict=True))
    question, answer = values["question"].strip(), values["answer"].strip()
    if not question:
        return Rejection(row_no, "question is empty")
    if not answer:
        return Rejection(row_no, "answer is empty")
    if len(question) > MAX_QUESTION_CHARS or len(answer) > MAX_ANSWER_CHARS:
        return Rejection(row_no, f"question or answer too long (max {MAX_QUESTION_CHARS} / {MAX_ANSWER_CHARS})")
    if "\x00" in question or "\x00" in answer or "\x00" in values.get("thread", ""):
        return Rejection(row_no, "question, answer or thread contains a NUL character, which cannot be stored")
    try:
        occurred_at = parse_timestamp(values["timestamp"])
    except ValueError:
        return Rejection(
            row_no,
            f"timestamp is not ISO 8601 or Unix seconds between {EARLIEST.year} and {LATEST.year - 1}: "
            f"{values['timestamp'][:40]!r}",
        )
    try:
        latency = _parse_latency(values.get("latency_ms", ""))
    except ValueError:
        return Rejection(row_no, f"latency_ms is not a number of ms from 0 to one day: {values['latency_ms'][:40]!r}")
    return ImportedRow(row_no, question, answer, occurred_at, latency, values.get("thread", "").strip())


def parse_chunk(data: bytes, columns: tuple[str, ...], first_row: int) -> tuple[list[ImportedRow], list[Rejection]]:
    """The rows of one chunk, valid and rejected."""
    rows: list[ImportedRow] = []
    rejections: list[Rejection] = []
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True)
    for index, fields in enumerate(reader):
        parsed = parse_row(first_row + index, fields, columns)
        if isinstance(parsed, Rejection):
            rejections.append(parsed)
        else:
            rows.append(parsed)
    return rows, rejections


def interaction_for(project_id: UUID, job_id: UUID, row: ImportedRow) -> Interaction:
    """The interaction a row becomes, with ids derived from the job so a retry reuses them."""
    thread_name = f"thread:{row.thread_key}" if row.thread_key else f"row-thread:{row.row}"
    return Interaction(
        message_id=uuid5(job_id, f"row:{row.row}"),
        thread_id=uuid5(job_id, thread_name),
        project_id=project_id,
        question=row.question,
        answer=row.answer,
        occurred_at=row.occurred_at,
        latency_ms=row.latency_ms,
    )


def list_jobs(repo: ImportRepository, project_id: UUID, page: PageRequest) -> Page[ImportJob]:
    """A page of the project's imports, newest first."""
    return page_of(repo.list_jobs(project_id, page), page, lambda j: Cursor.after(j.created_at, j.id))


def start_import(
    repo: ImportRepository, files: ImportFiles, queue: ImportQueue, project_id: UUID, data: bytes, chunk_rows: int
) -> tuple[ImportJob, bool]:
    """Check, store and enqueue a file; the same file again returns its existing job (created=False)."""
    plan = plan_import(data, chunk_rows)
    content_hash = hashlib.sha256(data).hexdigest()
    key = f"imports/{project_id}/{content_hash}.csv"
    files.put(key, data)
    job_id, created = repo.create_job(project_id, content_hash, key, plan, len(data))
    # Chunks not yet enqueued (a first upload, or one whose enqueue failed) are sent now;
    # a duplicate delivery is harmless because every chunk is idempotent.
    pending = repo.chunks_not_enqueued(job_id)
    if pending:
        queue.send_chunks(project_id, job_id, pending)
        repo.mark_enqueued(job_id, pending)
    return repo.get_job(project_id, job_id), created


def process_chunk(
    repo: ImportRepository,
    alerts: AlertRepository,
    files: ImportFiles,
    classification: ClassificationRequests,
    request: tuple[UUID, UUID, int],
) -> bool:
    """Import one chunk (project, job, chunk number): messages, threads, metrics and alerts, then ask for the
    new threads to be labelled; False if it was already done or is unknown.

    The classification request follows the commit and is not retried with the chunk: a lost request leaves
    threads unlabelled, which the sweeper requeues after its grace period.
    """
    project_id, job_id, chunk_no = request
    chunk = repo.get_chunk(project_id, job_id, chunk_no)
    if chunk is None or chunk.done:
        return False
    try:
        data = files.read_range(chunk.object_key, chunk.byte_start, chunk.byte_end)
        rows, rejections = parse_chunk(data, chunk.columns, chunk.first_row)
        interactions = [interaction_for(project_id, job_id, row) for row in rows]
        rules = rules_for(alerts, project_id)
        created = repo.store_chunk(chunk, interactions, rejections, measure(interactions), judge(rules))
    except Exception as exc:
        # Kept on the job so its status shows why a chunk is retrying (or sits in the DLQ). Only our own
        # errors' messages are shown: a driver's text can quote data or internals (it is logged instead).
        shown = f"{exc.code}: {exc.message}" if isinstance(exc, DomainError) else "internal error; retrying"
        repo.record_chunk_error(job_id, chunk_no, shown[:500])
        raise
    if created is None:
        return False
    if created:
        classification.request_classification(project_id, created)
    return True
