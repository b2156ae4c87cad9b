"""CSV planning and row validation of the bulk import: pure domain, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from threadline.domain import imports
from threadline.domain.errors import InvalidInput


@pytest.mark.unit
def test_chunks_hold_whole_records_even_with_newlines_in_quotes() -> None:
    # Given a file whose answers contain commas, quotes and line breaks, including multi-byte text
    rows = [f'"q{i}","line one\nline, ""two"" ü{i}",2026-01-0{1 + i % 9}T10:00:00Z,{i}' for i in range(7)]
    data = ("question,answer,timestamp,latency_ms\n" + "\n".join(rows) + "\n").encode()
    # When it is planned in chunks of three rows
    plan = imports.plan_import(data, chunk_rows=3)
    # Then every chunk re-parses on its own to its rows, numbered as a spreadsheet shows them
    assert plan.total_rows == 7 and [c.row_count for c in plan.chunks] == [3, 3, 1]
    parsed = []
    for chunk in plan.chunks:
        good, bad = imports.parse_chunk(data[chunk.byte_start : chunk.byte_end], plan.columns, chunk.first_row)
        assert bad == []
        parsed.extend(good)
    assert [r.row for r in parsed] == list(range(2, 9))
    assert parsed[6].answer == 'line one\nline, "two" ü6' and parsed[6].latency_ms == 6.0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"question,answer\nq,a\n", "lacks required columns"),
        (b"question,answer,timestamp,answer\nq,a,1,b\n", "repeats columns"),
        (b"question,answer,timestamp\n", "no rows"),
        (b"question,answer,timestamp\n\xff\xfe,a,1\n", "not UTF-8"),
        (b'question,answer,timestamp\n"q"x,a,1\n', "not valid CSV"),
    ],
)
def test_malformed_files_are_rejected_whole(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        imports.plan_import(data, chunk_rows=100)
    assert message in raised.value.message


@pytest.mark.unit
@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ([], "row is empty"),
        (["q", "a"], "expected 4 fields, found 2"),
        (["", "a", "2026-01-01", ""], "question is empty"),
        (["q", " ", "2026-01-01", ""], "answer is empty"),
        (["q", "a", "yesterday", ""], "timestamp"),
        (["q", "a", "2026-01-01", "-5"], "latency_ms"),
        (["q", "a", "2026-01-01", "fast"], "latency_ms"),
        # Year 10000 once in UTC: accepted, it broke every later read of the thread listing (issue 17)
        (["q", "a", "9999-12-31T23:00:00-05:00", ""], "timestamp"),
        (["q", "a", "2100-01-01T00:00:00Z", ""], "between 1970 and 2099"),
        (["q", "a", "1969-12-31T23:59:59Z", ""], "timestamp"),
        (["q", "a", "-86400", ""], "timestamp"),
        (["q\x00", "a", "2026-01-01", ""], "NUL"),
        (["q", "a\x00b", "2026-01-01", ""], "NUL"),
    ],
)
def test_malformed_rows_are_rejected_with_a_reason(fields: list[str], reason: str) -> None:
    # Given a row with one problem
    columns = ("question", "answer", "timestamp", "latency_ms")
    # When it is parsed
    parsed = imports.parse_row(5, fields, columns)
    # Then it is rejected with its row number and a reason
    assert isinstance(parsed, imports.Rejection) and parsed.row == 5 and reason in parsed.reason


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01 12:00:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("1772366400", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T07:00:00-05:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2099-12-31T23:59:59Z", datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_timestamps(text: str, expected: datetime) -> None:
    assert imports.parse_timestamp(text) == expected


@pytest.mark.unit
def test_a_byte_order_mark_is_not_part_of_the_first_column() -> None:
    # Given a file saved by Excel as "CSV UTF-8", which starts with a byte-order mark
    data = b"\xef\xbb\xbfQuestion,answer,timestamp\nq,a,2026-01-01T00:00:00Z\n"
    # When it is planned and its chunk parsed
    plan = imports.plan_import(data, chunk_rows=100)
    good, bad = imports.parse_chunk(data[plan.chunks[0].byte_start : plan.chunks[0].byte_end], plan.columns, 2)
    # Then the header names the required columns and the row is imported
    assert plan.columns == ("question", "answer", "timestamp") and bad == [] and [r.question for r in good] == ["q"]


@pytest.mark.unit
def test_ids_are_derived_from_job_and_row_and_grouped_by_thread() -> None:
    # Given a job and rows, two of them in the same named thread
    job, project = uuid4(), uuid4()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    a = imports.ImportedRow(2, "q", "a", at, None, "t-1")
    b = imports.ImportedRow(3, "q", "a", at, None, "t-1")
    c = imports.ImportedRow(4, "q", "a", at, None, "")
    # When they become interactions (twice, as a retry would)
    first = [imports.interaction_for(project, job, r) for r in (a, b, c)]
    again = [imports.interaction_for(project, job, r) for r in (a, b, c)]
    # Then the ids are stable, a and b share a thread, c has its own
    assert [i.message_id for i in first] == [i.message_id for i in again]
    assert first[0].thread_id == first[1].thread_id != first[2].thread_id
    assert len({i.message_id for i in first}) == 3
