"""Word documents (.docx): files written by python-docx from Word's own template, and hand-written parts for
what a template does not show (localised style ids, tracked changes, field codes, hostile archives)."""

from __future__ import annotations

import io
import zipfile

import pytest

from threadline.domain.errors import UnsupportedMediaType
from threadline.domain.parsing import DocumentFormat, ParseError, detect_format, parse
from threadline.domain.wordml import MAX_PART_BYTES

pytestmark = pytest.mark.unit

_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _word_file() -> bytes:
    """A manual as python-docx writes it: Word's default template, its styles, tables and lists."""
    import docx

    document = docx.Document()
    document.core_properties.title = "Acme Router Manual"
    document.add_heading("Setup", level=1)
    document.add_paragraph("Plug the router in and wait for the green light.")
    document.add_heading("Resetting", level=2)
    document.add_paragraph("Hold the reset button for ten seconds.")
    document.add_paragraph("Unplug the cable", style="List Bullet")
    document.add_paragraph("Wait a minute", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, (("Light", "Meaning"), ("Red", "No signal")), strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_heading("Warranty", level=1)
    document.add_paragraph("Two years.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _archive(parts: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_a_word_manual_becomes_sections_under_its_headings() -> None:
    # Given a .docx written from Word's template
    data = _word_file()
    # When its format is detected from a browser's generic upload and it is parsed
    fmt = detect_format("manual", "application/octet-stream", data)
    parsed = parse(data, fmt)
    # Then headings form paths, list items and table rows are lines, and the core title names it
    assert fmt is DocumentFormat.DOCX
    assert parsed.title == "Acme Router Manual"
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Setup", "Plug the router in and wait for the green light."),
        (
            "Setup > Resetting",
            "Hold the reset button for ten seconds.\n\n- Unplug the cable\n- Wait a minute\n"
            "Light | Meaning\nRed | No signal",
        ),
        ("Warranty", "Two years."),
    ]


def test_localised_styles_tracked_changes_and_fields() -> None:
    # Given a body whose heading style has a German id, a title paragraph, a deleted revision, a field code,
    # a direct outline level and a content control
    styles = (
        f"<w:styles {_NS}>"
        '<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/></w:style>'
        '<w:style w:type="paragraph" w:styleId="Titel"><w:name w:val="Title"/></w:style></w:styles>'
    )
    body = (
        f"<w:document {_NS}><w:body>"
        '<w:p><w:pPr><w:pStyle w:val="Titel"/></w:pPr><w:r><w:t>Handbuch</w:t></w:r></w:p>'
        '<w:p><w:pPr><w:pStyle w:val="berschrift1"/></w:pPr><w:r><w:t>Einrichtung</w:t></w:r></w:p>'
        '<w:p><w:r><w:t xml:space="preserve">Press </w:t></w:r><w:del><w:r><w:delText>old</w:delText></w:r></w:del>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText>PAGE</w:instrText></w:r>'
        "<w:r><w:t>OK</w:t><w:tab/><w:t>now</w:t></w:r></w:p>"
        '<w:p><w:pPr><w:outlineLvl w:val="1"/></w:pPr><w:r><w:t>Details</w:t></w:r></w:p>'
        "<w:sdt><w:sdtContent><w:p><w:r><w:t>Inside a control.</w:t></w:r></w:p></w:sdtContent></w:sdt>"
        "</w:body></w:document>"
    )
    # When it is parsed
    parsed = parse(_archive({"word/document.xml": body, "word/styles.xml": styles}), DocumentFormat.DOCX)
    # Then the style's name, not its id, makes the heading, and only visible text is kept
    assert parsed.title == "Handbuch"
    assert [(s.heading, s.text) for s in parsed.sections] == [
        ("Einrichtung", "Press OK\tnow"),
        ("Einrichtung > Details", "Inside a control."),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"PK\x03\x04 truncated word/document.xml", "cannot be read"),
        (_archive({"xl/workbook.xml": "<workbook/>"}), "not a Word document"),
        (
            _archive({"word/document.xml": '<!DOCTYPE d [<!ENTITY a "aaaa">]><w:document/>'}),
            "declares a DTD",
        ),
        (_archive({"word/document.xml": f"<w:document {_NS}><w:body><w:p>"}), "not well-formed"),
        (_archive({"word/document.xml": f"<w:document {_NS}><w:body/></w:document>"}), "no text"),
    ],
)
def test_damaged_foreign_or_hostile_files_are_parse_errors(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(data, DocumentFormat.DOCX)


def test_deeply_nested_content_controls_are_read_to_a_bound() -> None:
    # Given a body nesting content controls far deeper than Word does
    nested = "<w:sdt><w:sdtContent>" * 5000 + "<w:p><w:r><w:t>deep</w:t></w:r></w:p>" + "</w:sdtContent></w:sdt>" * 5000
    body = f"<w:document {_NS}><w:body><w:p><w:r><w:t>Top.</w:t></w:r></w:p>{nested}</w:body></w:document>"
    # When it is parsed, then the bounded walk keeps what it reaches, instead of overflowing the stack
    parsed = parse(_archive({"word/document.xml": body}), DocumentFormat.DOCX)
    assert [s.text for s in parsed.sections] == ["Top."]


def test_a_corrupt_compressed_part_is_a_parse_error() -> None:
    # Given a Word archive whose body's deflate stream is damaged after its header
    data = bytearray(_archive({"word/document.xml": f"<w:document {_NS}>" + "hello " * 2000 + "</w:document>"}))
    start = data.find(b"word/document.xml") + len("word/document.xml") + 20
    data[start : start + 40] = bytes(b ^ 0x55 for b in data[start : start + 40])
    # When it is parsed, then the user is told it cannot be read (zlib's own error would fail the ingestion)
    with pytest.raises(ParseError, match="cannot be read"):
        parse(bytes(data), DocumentFormat.DOCX)


def test_a_part_that_inflates_past_the_limit_is_refused_unread() -> None:
    # Given a body part that compresses a hundredfold (a zip bomb's shape)
    data = _archive({"word/document.xml": f"<w:document {_NS}>" + " " * (MAX_PART_BYTES + 1) + "</w:document>"})
    assert len(data) < MAX_PART_BYTES // 100
    # Then it is refused by its declared size
    with pytest.raises(ParseError, match="inflates past"):
        parse(data, DocumentFormat.DOCX)


def test_old_binary_word_files_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedMediaType, match=r"Word \(\.docx\)"):
        detect_format("letter.doc", "application/msword", b"\xd0\xcf\x11\xe0")
