"""Parsing and chunking: pure functions, no I/O."""

from __future__ import annotations

import io
import itertools

import pytest

from threadline.domain.chunking import chunk_sections
from threadline.domain.errors import UnsupportedMediaType
from threadline.domain.parsing import DocumentFormat, ParseError, Section, detect_format, parse, parse_markdown

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("filename", "declared", "data", "expected"),
    [
        ("guide.md", "application/octet-stream", b"# x", DocumentFormat.MARKDOWN),
        ("page.HTML", None, b"<p>x</p>", DocumentFormat.HTML),
        ("notes", "text/plain; charset=utf-8", b"x", DocumentFormat.TEXT),
        ("scan", None, b"%PDF-1.7 ...", DocumentFormat.PDF),
    ],
)
def test_format_is_detected_from_name_type_or_magic(
    filename: str, declared: str | None, data: bytes, expected: DocumentFormat
) -> None:
    assert detect_format(filename, declared, data) is expected


def test_unsupported_format_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType):
        detect_format("sheet.xlsx", "application/vnd.ms-excel", b"PK\x03\x04")


def test_markdown_headings_form_paths_and_code_fences_are_not_headings() -> None:
    # Given Markdown with nested headings and a '#' comment inside a code block
    text = "# Guide\nintro\n## Install\nrun it\n```sh\n# not a heading\n```\n### Linux\napt\n## Use\ncall it\n"
    # When it is parsed
    parsed = parse_markdown(text)
    # Then the first H1 is the title and every section carries its heading path
    assert parsed.title == "Guide"
    by_heading = {s.heading: s.text for s in parsed.sections}
    assert "# not a heading" in by_heading["Guide > Install"]
    assert by_heading["Guide > Install > Linux"].strip() == "apt"
    assert by_heading["Guide > Use"].strip() == "call it"


def test_html_sections_skip_scripts_and_keep_headings() -> None:
    html = (
        "<html><head><title>Help</title><style>p{}</style></head><body><nav>menu</nav>"
        "<h1>Billing</h1><p>Invoices are sent monthly.</p><script>evil()</script>"
        "<h2>Refunds</h2><p>Refunds take 5 days.</p></body></html>"
    )
    parsed = parse(html.encode(), DocumentFormat.HTML)
    assert parsed.title == "Help"
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Billing", "Invoices are sent monthly."),
        ("Billing > Refunds", "Refunds take 5 days."),
    ]


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"%PDF-1.4 garbage", DocumentFormat.PDF),
        (b"\xff\xfe\x00bad", DocumentFormat.TEXT),
        (b"  \n ", DocumentFormat.TEXT),
    ],
)
def test_corrupt_or_empty_input_is_a_parse_error(data: bytes, fmt: DocumentFormat) -> None:
    with pytest.raises(ParseError):
        parse(data, fmt)


def test_pdf_text_is_extracted_per_page() -> None:
    # Given a two-page PDF made by reportlab
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 720, "The warranty lasts two years.")
    pdf.showPage()
    pdf.drawString(72, 720, "Returns are accepted within 30 days.")
    pdf.save()
    # When it is parsed
    parsed = parse(buffer.getvalue(), DocumentFormat.PDF)
    # Then each page is a section with its text
    assert [s.text for s in parsed.sections] == [
        "The warranty lasts two years.",
        "Returns are accepted within 30 days.",
    ]


def test_chunks_respect_the_size_keep_the_heading_and_overlap() -> None:
    # Given a long section of numbered sentences in paragraphs
    sentences = [f"Sentence number {i} explains one more detail of the product." for i in range(60)]
    paragraphs = ["\n".join(sentences[i : i + 3]).replace("\n", " ") for i in range(0, 60, 3)]
    section = Section("Manual > Setup", "\n\n".join(paragraphs))
    # When it is chunked
    chunks = chunk_sections([section, Section("Manual > FAQ", "Short answer.")], max_chars=400, overlap_chars=120)
    # Then every chunk fits, carries its heading, and shares a sentence with its predecessor
    setup = [c for c in chunks if c.heading == "Manual > Setup"]
    assert len(setup) > 3
    assert all(len(c.content) <= 400 for c in chunks)
    for previous, current in itertools.pairwise(setup):
        first_sentence = current.content.split(". ")[0]
        assert first_sentence in previous.content
    # And no sentence is lost, ordinals run across sections, and the heading is embedded with the text
    assert all(s in " ".join(c.content for c in setup) for s in sentences)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].embedding_text == "Manual > FAQ\nShort answer."


def test_a_sentence_longer_than_a_chunk_is_split_on_words() -> None:
    chunks = chunk_sections([Section("", "word " * 500)], max_chars=200, overlap_chars=0)
    assert len(chunks) >= 12
    assert all(len(c.content) <= 200 and not c.content.startswith(" ") for c in chunks)
