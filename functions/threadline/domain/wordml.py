"""Word documents (.docx, Office Open XML WordprocessingML) as titled sections, with the standard library only.

A .docx is a zip of XML parts. The body (`word/document.xml`) is read in order: paragraphs, tables (a row per
line, cells set apart by " | ") and content controls. A paragraph is a heading when its style is one, by the
style's name in `word/styles.xml` ("heading 2"; the style id is localised, "berschrift2" in a German Word)
or by an outline level, so headings form paths as in Markdown; the "Title" paragraph, else the core
properties' title, names the document. Deleted tracked changes and field codes are not text.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from xml.etree import ElementTree

from threadline.domain.parsing import ParsedDocument, ParseError, Section

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
BODY = "word/document.xml"
_STYLES = "word/styles.xml"
_CORE = "docProps/core.xml"
# What one part may inflate to. Uploads are at most 20 MiB; an XML part a hundred times its compressed size is
# a zip bomb, not a manual.
MAX_PART_BYTES = 64 * 1024 * 1024
_HEADING_NAME = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_TITLE = 0
_MAX_DEPTH = 32
_LIST = -1


def parse_docx(data: bytes) -> ParsedDocument:
    """Sections of a .docx; raises ParseError for a damaged, encrypted or foreign file."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        # A password-protected .docx is an OLE compound file, not a zip.
        raise ParseError("the Word document cannot be read (damaged, encrypted or not a .docx)") from exc
    with archive:
        names = set(archive.namelist())
        if BODY not in names:
            raise ParseError("the file is a zip archive but not a Word document (no word/document.xml)")
        levels = _style_levels(_xml(archive, _STYLES)) if _STYLES in names else {}
        body = _xml(archive, BODY).find(f"{_W}body")
        core_title = _core_title(_xml(archive, _CORE)) if _CORE in names else None
    reader = _Body(levels)
    if body is not None:
        reader.read(body)
    reader.flush()
    return ParsedDocument(reader.title or core_title, reader.sections)


def _xml(archive: zipfile.ZipFile, name: str) -> ElementTree.Element:
    if archive.getinfo(name).file_size > MAX_PART_BYTES:
        raise ParseError(f"the Word document's {name} inflates past {MAX_PART_BYTES // (1024 * 1024)} MiB")
    try:
        raw = archive.read(name)
    # A damaged member: bad CRC or header (BadZipFile), corrupt deflate data (zlib.error), an encrypted member
    # (RuntimeError), a compression method this Python lacks (NotImplementedError), a truncated stream (EOFError).
    except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError, OSError, ValueError) as exc:
        raise ParseError(f"the Word document cannot be read ({type(exc).__name__} in {name})") from exc
    # Office never writes a DTD: one here could only declare entities (exponential expansion, external files).
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise ParseError(f"the Word document's {name} declares a DTD")
    try:
        return ElementTree.fromstring(raw)
    except ElementTree.ParseError as exc:
        raise ParseError(f"the Word document's {name} is not well-formed XML ({exc})") from exc


def _val(element: ElementTree.Element | None) -> str | None:
    return None if element is None else element.get(f"{_W}val")


def _style_levels(styles: ElementTree.Element) -> dict[str, int]:
    """Paragraph style id -> heading level (1-9), 0 for the title style, or `_LIST` for a numbered or bulleted
    style ("List Bullet")."""
    levels: dict[str, int] = {}
    for style in styles.iter(f"{_W}style"):
        style_id = style.get(f"{_W}styleId")
        name = (_val(style.find(f"{_W}name")) or "").strip()
        if not style_id:
            continue
        if style.find(f"{_W}pPr/{_W}numPr") is not None:
            levels[style_id] = _LIST
        elif name.lower() == "title":
            levels[style_id] = _TITLE
        elif match := _HEADING_NAME.match(name):
            levels[style_id] = int(match.group(1))
        elif (outline := _val(style.find(f"{_W}pPr/{_W}outlineLvl"))) and outline.isdigit() and int(outline) < 9:
            levels[style_id] = int(outline) + 1
    return levels


def _core_title(core: ElementTree.Element) -> str | None:
    title = core.find(_DC_TITLE)
    if title is None:
        return None
    return " ".join((title.text or "").split()) or None


class _Body:
    """Walks the body in reading order, collecting text under the current heading path."""

    def __init__(self, levels: dict[str, int]) -> None:
        self._levels = levels
        self.title: str | None = None
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._lines: list[str] = []

    def read(self, container: ElementTree.Element, depth: int = 0) -> None:
        """Paragraphs, tables and content controls of a body or control, in order (controls nested past
        `_MAX_DEPTH` are skipped: Word nests a few, a hostile file thousands)."""
        for child in container:
            if child.tag == f"{_W}p":
                self._paragraph(child)
            elif child.tag == f"{_W}tbl":
                self._lines.extend(_table_rows(child))
            elif child.tag == f"{_W}sdt":
                content = child.find(f"{_W}sdtContent")
                if content is not None and depth < _MAX_DEPTH:
                    self.read(content, depth + 1)

    def _paragraph(self, paragraph: ElementTree.Element) -> None:
        text = _text(paragraph)
        level = self._level(paragraph)
        heading = " ".join(text.split())
        if level == _TITLE and heading and self.title is None:
            self.title = heading
        elif level is not None and level > 0 and heading:
            self.flush()
            self._path = [(lvl, h) for lvl, h in self._path if lvl < level] + [(level, heading)]
        elif (level == _LIST or paragraph.find(f"{_W}pPr/{_W}numPr") is not None) and text.strip():
            self._lines.append(f"- {text.strip()}")
        else:
            # A paragraph is a paragraph: blank lines between them, as the chunker splits text.
            self._lines.append(f"{text}\n")

    def _level(self, paragraph: ElementTree.Element) -> int | None:
        properties = paragraph.find(f"{_W}pPr")
        if properties is None:
            return None
        outline = _val(properties.find(f"{_W}outlineLvl"))
        if outline is not None and outline.isdigit() and int(outline) < 9:
            return int(outline) + 1
        style = _val(properties.find(f"{_W}pStyle"))
        return self._levels.get(style) if style else None

    def flush(self) -> None:
        """End the current section."""
        self.sections.append(Section(" > ".join(h for _, h in self._path), "\n".join(self._lines).strip()))
        self._lines.clear()


def _text(element: ElementTree.Element) -> str:
    """A paragraph's visible text: runs, tabs and breaks; not deleted revisions (`w:delText`) or field codes."""
    parts: list[str] = []
    for node in element.iter():
        if node.tag == f"{_W}t":
            parts.append(node.text or "")
        elif node.tag == f"{_W}tab":
            parts.append("\t")
        elif node.tag in (f"{_W}br", f"{_W}cr"):
            parts.append("\n")
    return "".join(parts)


def _table_rows(table: ElementTree.Element) -> list[str]:
    """One line per row, its cells' paragraphs joined by spaces and the cells by " | "; then a blank line."""
    rows: list[str] = []
    for row in table.findall(f"{_W}tr"):
        cells = [" ".join(_text(p).strip() for p in cell.iter(f"{_W}p")).strip() for cell in row.findall(f"{_W}tc")]
        if any(cells):
            rows.append(" | ".join(cells))
    return [*rows, ""] if rows else []
