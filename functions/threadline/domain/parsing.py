"""Turning uploaded bytes into titled sections of plain text: PDF, Markdown, HTML and plain text."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from enum import StrEnum
from html.parser import HTMLParser
from pathlib import PurePosixPath

from threadline.domain.errors import UnsupportedMediaType
from threadline.domain.text import strip_unstorable


class DocumentFormat(StrEnum):
    """The formats Threadline reads, named by their media type."""

    PDF = "application/pdf"
    MARKDOWN = "text/markdown"
    HTML = "text/html"
    TEXT = "text/plain"


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text under one heading path ("Guide > Install"); the heading stays with every chunk of it."""

    heading: str
    text: str


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """What a parser found: an optional title and the sections in reading order."""

    title: str | None
    sections: list[Section]


class ParseError(Exception):
    """The bytes claim a supported format but cannot be read; the reason is shown to the user."""


_BY_SUFFIX = {
    ".pdf": DocumentFormat.PDF,
    ".md": DocumentFormat.MARKDOWN,
    ".markdown": DocumentFormat.MARKDOWN,
    ".html": DocumentFormat.HTML,
    ".htm": DocumentFormat.HTML,
    ".txt": DocumentFormat.TEXT,
    ".text": DocumentFormat.TEXT,
    ".rst": DocumentFormat.TEXT,
}
_BY_TYPE = {
    "application/pdf": DocumentFormat.PDF,
    "text/markdown": DocumentFormat.MARKDOWN,
    "text/x-markdown": DocumentFormat.MARKDOWN,
    "text/html": DocumentFormat.HTML,
    "application/xhtml+xml": DocumentFormat.HTML,
    "text/plain": DocumentFormat.TEXT,
}


def detect_format(filename: str, declared_type: str | None, data: bytes) -> DocumentFormat:
    """The format of an upload, from its name first (browsers often send octet-stream), then its declared type."""
    if found := _BY_SUFFIX.get(PurePosixPath(filename.lower()).suffix):
        return found
    media_type = (declared_type or "").split(";")[0].strip().lower()
    if found := _BY_TYPE.get(media_type):
        return found
    if data.startswith(b"%PDF-"):
        return DocumentFormat.PDF
    raise UnsupportedMediaType(
        "unsupported file type: send PDF, Markdown, HTML or plain text",
        filename=filename,
        content_type=media_type or None,
    )


def parse(data: bytes, fmt: DocumentFormat) -> ParsedDocument:
    """Extract sections; raises ParseError for corrupt, encrypted or empty input."""
    if fmt is DocumentFormat.PDF:
        parsed = _parse_pdf(data)
    else:
        text = _decode(data)
        if fmt is DocumentFormat.MARKDOWN:
            parsed = parse_markdown(text)
        elif fmt is DocumentFormat.HTML:
            parsed = _parse_html(text)
        else:
            parsed = ParsedDocument(None, [Section("", text)])
    # Text extracted from a file loses the characters Postgres cannot store (a PDF's text layer can hold NUL):
    # the policy for files, where the JSON `text` field refuses them with a 422 instead.
    sections = [
        Section(strip_unstorable(s.heading), text)
        for s in parsed.sections
        if (text := strip_unstorable(s.text).strip())
    ]
    if not sections:
        raise ParseError("the document contains no text")
    title = strip_unstorable(parsed.title) if parsed.title is not None else None
    return ParsedDocument(title, sections)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"the text is not valid UTF-8 (byte {exc.start})") from exc


_ATX_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(text: str) -> ParsedDocument:
    """Split Markdown on ATX headings, ignoring '#' lines inside fenced code; the first H1 is the title."""
    title: str | None = None
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        sections.append(Section(" > ".join(h for _, h in path), "\n".join(lines)))
        lines.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _ATX_HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level, heading = len(match.group(1)), match.group(2)
        if level == 1 and title is None:
            title = heading
        path[:] = [(lvl, h) for lvl, h in path if lvl < level] + [(level, heading)]
    flush()
    return ParsedDocument(title, sections)


_BLOCKS = {"p", "div", "li", "br", "tr", "section", "article", "pre", "blockquote", "table", "ul", "ol", "dd", "dt"}
_SKIPPED = {"script", "style", "noscript", "template", "svg", "nav", "head"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _HtmlSections(HTMLParser):
    """Collects text by heading; scripts, styles and navigation are skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._text: list[str] = []
        self._heading: list[str] | None = None
        self._heading_level = 0
        self._in_title = False
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002
        if tag in _SKIPPED:
            self._skip_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _HEADINGS:
            self._heading, self._heading_level = [], _HEADINGS[tag]
        elif tag in _BLOCKS:
            self._text.append("\n\n" if tag == "p" else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in _HEADINGS and self._heading is not None:
            heading = " ".join("".join(self._heading).split())
            self._heading = None
            self.flush()
            if heading:
                level = self._heading_level
                self._path = [(lvl, h) for lvl, h in self._path if lvl < level] + [(level, heading)]
        elif tag in _BLOCKS:
            self._text.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = (self.title or "") + data.strip()
        elif self._skip_depth:
            return
        elif self._heading is not None:
            self._heading.append(data)
        else:
            self._text.append(data)

    def flush(self) -> None:
        text = re.sub(r"[ \t]+", " ", "".join(self._text))
        text = re.sub(r"\n\s*\n\s*", "\n\n", text)
        self.sections.append(Section(" > ".join(h for _, h in self._path), text))
        self._text.clear()


def _parse_html(text: str) -> ParsedDocument:
    parser = _HtmlSections()
    parser.feed(text)
    parser.close()
    parser.flush()
    return ParsedDocument(parser.title or None, parser.sections)


def _parse_pdf(data: bytes) -> ParsedDocument:
    # pypdf raises many exception types for damaged files (its own, ValueError, KeyError, ...); any of them
    # means the same thing to the user.
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ParseError("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(f"the PDF cannot be read ({type(exc).__name__})") from exc
    # One section per page: PDF text has no reliable headings, and pages are where readers look things up.
    return ParsedDocument(title or None, [Section("", _unwrap(p)) for p in pages])


def _unwrap(page: str) -> str:
    """PDF text breaks lines at the margin; rejoin them so sentences and paragraphs survive."""
    paragraphs = re.split(r"\n\s*\n", page)
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)
