"""Turning uploaded bytes into titled sections of plain text: PDF, Word (.docx), Markdown, reStructuredText, HTML
and plain text."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any

from threadline.domain.errors import UnsupportedMediaType
from threadline.domain.text import strip_unstorable

log = logging.getLogger(__name__)


class DocumentFormat(StrEnum):
    """The formats Threadline reads, named by their media type."""

    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    MARKDOWN = "text/markdown"
    HTML = "text/html"
    TEXT = "text/plain"
    RST = "text/x-rst"


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
    ".docx": DocumentFormat.DOCX,
    ".md": DocumentFormat.MARKDOWN,
    ".markdown": DocumentFormat.MARKDOWN,
    ".mdx": DocumentFormat.MARKDOWN,  # Docusaurus and Nextra pages: Markdown with JSX lines, read as text
    ".html": DocumentFormat.HTML,
    ".htm": DocumentFormat.HTML,
    ".xhtml": DocumentFormat.HTML,
    ".txt": DocumentFormat.TEXT,
    ".text": DocumentFormat.TEXT,
    ".rst": DocumentFormat.RST,
}
_BY_TYPE = {
    "application/pdf": DocumentFormat.PDF,
    DocumentFormat.DOCX.value: DocumentFormat.DOCX,
    "text/markdown": DocumentFormat.MARKDOWN,
    "text/x-markdown": DocumentFormat.MARKDOWN,
    "text/html": DocumentFormat.HTML,
    "application/xhtml+xml": DocumentFormat.HTML,
    "text/plain": DocumentFormat.TEXT,
    "text/x-rst": DocumentFormat.RST,
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
    # A zip whose directory names the Word body part (its name is stored uncompressed in the archive).
    if data.startswith(b"PK\x03\x04") and b"word/document.xml" in data:
        return DocumentFormat.DOCX
    raise UnsupportedMediaType(
        "unsupported file type: send PDF, Word (.docx), Markdown, reStructuredText, HTML or plain text",
        filename=filename,
        content_type=media_type or None,
    )


def parse(data: bytes, fmt: DocumentFormat) -> ParsedDocument:
    """Extract sections; raises ParseError for corrupt, encrypted or empty input."""
    if fmt is DocumentFormat.PDF:
        parsed = _parse_pdf(data)
    elif fmt is DocumentFormat.DOCX:
        from threadline.domain.wordml import parse_docx  # it builds on this module's types

        parsed = parse_docx(data)
    else:
        text = _decode(data)
        if fmt is DocumentFormat.MARKDOWN:
            parsed = parse_markdown(text)
        elif fmt is DocumentFormat.HTML:
            parsed = _parse_html(text)
        elif fmt is DocumentFormat.RST:
            parsed = parse_rst(text)
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
    if title and fmt in _TITLED_BY_AUTHOR:
        sections = _under_title(" ".join(title.split()), sections, one_heading_names=fmt is DocumentFormat.HTML)
    return ParsedDocument(title, sections)


# Formats whose title its author wrote (an HTML <title>, Markdown's front matter, a reStructuredText title), not
# a PDF's or a Word file's metadata, which tools fill in ("Microsoft Word - Document1", "untitled").
_TITLED_BY_AUTHOR = {DocumentFormat.HTML, DocumentFormat.MARKDOWN, DocumentFormat.RST}
_MAX_TITLE_HEADING = 120


def _under_title(title: str, sections: list[Section], one_heading_names: bool) -> list[Section]:
    """The sections headed by the document's title where no heading names the page, so that each passage says
    what page it is from: SQLite's pages number their top headings ("1. Executive Summary", "2. Details") under
    a title in a <div>, and a static site's Markdown is titled in its front matter, above "## Steps".

    A heading names the page when it starts with the title or the title with it ("Billing" in "Billing | Acme"),
    or, on an HTML page (whose <title> is often the site's name on every page), when it is the only top heading.
    """
    if len(title) > _MAX_TITLE_HEADING:
        return sections
    tops = {s.heading.split(" > ", 1)[0].strip().casefold() for s in sections if s.heading}
    lowered = title.casefold()
    named = any(lowered.startswith(top) or top.startswith(lowered) for top in tops)
    if named or (one_heading_names and len(tops) == 1):
        return sections
    return [Section(f"{title} > {s.heading}" if s.heading else title, s.text) for s in sections]


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"the text is not valid UTF-8 (byte {exc.start})") from exc


_ATX_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# A setext underline: "===" makes the line above a level-1 heading, "---" a level-2 one.
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
# Lines that cannot be a setext heading's text: list items, quotes, table rows (a "---" under them is a rule).
_NOT_SETEXT_TEXT = re.compile(r"^\s*([-*+>|]|\d+[.)])(\s|$)|\|")
_FENCE = re.compile(r"^\s*(```|~~~)")
# YAML front matter (Jekyll, Hugo, Docusaurus, MkDocs): metadata, not text; its `title:` names the document.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*$\r?\n?", re.DOTALL | re.MULTILINE)
_YAML_LINE = re.compile(r"^(\s|- |#|[\w.-]+\s*:(\s|$))")
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)


def parse_markdown(text: str) -> ParsedDocument:
    """Split Markdown on ATX ("## x") and setext (underlined) headings, ignoring lines inside fenced code; the
    title is the front matter's `title:`, else the first H1."""
    title: str | None = None
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        sections.append(Section(" > ".join(h for _, h in path), "\n".join(lines)))
        lines.clear()

    front_title, text = _front_matter(text)
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _markdown_heading(line, lines)
        if heading is None:
            lines.append(line)
            continue
        flush()
        level, name = heading
        if level == 1 and title is None:
            title = name
        path[:] = [(lvl, h) for lvl, h in path if lvl < level] + [(level, name)]
    flush()
    return ParsedDocument(front_title or title, sections)


def _front_matter(text: str) -> tuple[str | None, str]:
    """The front matter's title, if any, and the text without the front matter. Only a block that reads as YAML
    (keys, their indented or listed values, comments): a document that opens with a rule keeps its text."""
    front = _FRONT_MATTER.match(text)
    if front is None or not all(_YAML_LINE.match(line) for line in front.group(1).splitlines() if line.strip()):
        return None, text
    named = _FRONT_TITLE.search(front.group(1))
    return (named.group(1).strip("'\"") or None) if named else None, text[front.end() :]


def _markdown_heading(line: str, before: list[str]) -> tuple[int, str] | None:
    """The level and text of a heading `line` makes, or None; a setext underline takes its text from `before`."""
    if match := _ATX_HEADING.match(line):
        return len(match.group(1)), match.group(2)
    underline = _SETEXT.match(line)
    if underline is None or not before or not before[-1].strip() or _NOT_SETEXT_TEXT.match(before[-1]):
        return None
    return (1 if underline.group(1)[0] == "=" else 2), before.pop().strip()


# A reStructuredText adornment line: one of docutils' punctuation characters, repeated; it must also be at least
# as long as the title it adorns (checked where it is used).
_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1+\s*$")


def parse_rst(text: str) -> ParsedDocument:
    """Split reStructuredText on its section titles: a line underlined (and optionally overlined) by a
    punctuation character at least as long as it. As in docutils, a title's level is the order in which its
    adornment style (the character, with or without an overline) first appears; the first title is the
    document's title."""
    styles: list[tuple[str, bool]] = []
    title: str | None = None
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    lines: list[str] = []
    source = text.splitlines()
    index = 0
    while index < len(source):
        found = _rst_title(source, index, lines)
        if found is None:
            lines.append(source[index])
            index += 1
            continue
        name, style, index = found
        sections.append(Section(" > ".join(h for _, h in path), "\n".join(lines)))
        lines.clear()
        if style not in styles:
            styles.append(style)
        level = styles.index(style) + 1
        title = title or name
        path[:] = [(lvl, h) for lvl, h in path if lvl < level] + [(level, name)]
    sections.append(Section(" > ".join(h for _, h in path), "\n".join(lines)))
    return ParsedDocument(title, sections)


def _rst_title(source: list[str], index: int, before: list[str]) -> tuple[str, tuple[str, bool], int] | None:
    """The section title starting at `source[index]`: (its text, its adornment style, the index after it); a
    title underlined only takes its text from the end of `before`."""
    line = source[index]
    adornment = _ADORNMENT.match(line)
    if adornment is None:
        return None
    char, width = adornment.group(1), len(line.rstrip())
    # Overlined: adornment, title, the same adornment.
    if index + 2 < len(source) and source[index + 2].rstrip() == line.rstrip():
        name = source[index + 1].strip()
        if name and len(source[index + 1].rstrip()) <= width and not _ADORNMENT.match(source[index + 1]):
            return name, (char, True), index + 3
    # Underlined: a title line just above, no wider than the underline, itself after a blank line.
    if before and before[-1].strip() and not before[-1].startswith(" ") and len(before[-1].rstrip()) <= width:
        if len(before) == 1 or not before[-2].strip():
            return before.pop().strip(), (char, False), index + 1
    return None


_BLOCKS = {"p", "div", "li", "br", "tr", "section", "article", "pre", "blockquote", "table", "ul", "ol", "dd", "dt"}
# Never text a reader asks about: code, styles, and the controls and chrome every page of a site repeats.
_SKIPPED = {
    "script", "style", "noscript", "template", "svg", "nav", "head", "footer", "form", "button", "select",
}  # fmt: skip
# ARIA landmarks of a site's chrome (Sphinx's sidebar and "related" bars are <div role="navigation">): each
# page's copy of the site's table of contents and its previous/next links name the neighbouring pages, so
# without this every page held a chunk matching the others' terms.
_CHROME_ROLES = {"navigation", "search", "banner", "contentinfo", "menu", "menubar"}
# Permalink anchors next to headings (Sphinx and Python-Markdown "headerlink", Docusaurus "hash-link"): a
# "¶" or "#" in every heading path.
_PERMALINKS = {"headerlink", "hash-link"}
_PERMALINK_SIGNS = {"", "#", "\u00b6", "\u00a7", "\U0001f517"}
# Elements without an end tag: nothing to skip inside them, and skipping one would never end.
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_CELLS = {"td", "th"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.IGNORECASE)
# Where a <pre> run stands in the text until `flush` has collapsed the spaces around it.
_PRE_MARKER = re.compile(r"\x00(\d+)\x00")
# A page that marks its content (<main>, or role="main" as Sphinx, Read the Docs and MkDocs themes do) is read
# there only; a page without one, or whose main region holds no text, is read whole.
_HAS_MAIN = re.compile(r"<main[\s>]|\brole\s*=\s*[\"']?main\b", re.IGNORECASE)


def _is_chrome(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    """Whether an element holds no content of the page: skipped tags, chrome landmarks, hidden elements and
    permalink anchors."""
    if tag in _SKIPPED:
        return True
    for name, value in attrs:
        if name == "class":
            hit = value is not None and not _PERMALINKS.isdisjoint(value.split())
        elif name == "role":
            hit = (value or "").strip().lower() in _CHROME_ROLES
        elif name == "aria-hidden":
            hit = (value or "").strip().lower() == "true"
        elif name == "style":
            hit = value is not None and _HIDDEN_STYLE.search(value) is not None
        else:
            hit = name == "hidden"
        if hit:
            return True
    return False


def _is_main(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    return tag == "main" or any(name == "role" and (value or "").strip().lower() == "main" for name, value in attrs)


def _nested(element: tuple[str, int] | None, tag: str, step: int) -> tuple[str, int] | None:
    """An open element (its name, and how many elements of that name are open from it inward) after a start
    (step 1) or end (step -1) tag: its own end tag is the one that closes the last of them."""
    if element is None or tag != element[0]:
        return element
    depth = element[1] + step
    return (tag, depth) if depth else None


# Containers that a site fills with nothing but links (a menu, a table of contents, "Previous | Next"): every
# page of a site without landmarks (SQLite's manual: 762 of its 766 pages) repeats them, and their only words
# are other pages' titles, which a search then matches on every page. Three links are the least that makes a list.
_LINK_LIST_TAGS = {"ul", "ol", "menu", "div", "p", "table"}
_LINK_LIST_MIN = 3
_WORD = re.compile(r"\w")


@dataclass(slots=True)
class _Candidate:
    """An open element that may turn out to hold nothing but links."""

    tag: str
    ordinal: int  # of its start tag in the page
    depth: int = 1  # elements of its name open from it inward: its own end tag is the one that closes the last
    links: int = 0
    worded: bool = False  # a word outside a link was seen in it


class _LinkLists(HTMLParser):
    """A first pass over a page: which elements (by the ordinal of their start tag) hold at least three links and
    no word outside them. Text of skipped elements (scripts, forms, hidden ones) does not count as a word."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: set[int] = set()
        self._ordinal = -1
        self._open: list[_Candidate] = []  # innermost last
        self._skipping: tuple[str, int] | None = None
        self._link: tuple[str, int] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._ordinal += 1
        if self._skipping is not None:
            self._skipping = _nested(self._skipping, tag, 1)
            return
        if tag not in _VOID and _is_chrome(tag, attrs):
            self._skipping = (tag, 1)
            return
        for candidate in self._open:
            candidate.depth += candidate.tag == tag
        if tag in _LINK_LIST_TAGS:
            self._open.append(_Candidate(tag, self._ordinal))
        if tag == "a" and any(name == "href" for name, _ in attrs):
            if self._link is None:
                for candidate in self._open:
                    candidate.links += 1
            self._link = _nested(self._link or ("a", 0), tag, 1)
        else:
            self._link = _nested(self._link, tag, 1)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping is not None:
            self._skipping = _nested(self._skipping, tag, -1)
            return
        self._link = _nested(self._link, tag, -1)
        for candidate in self._open:
            candidate.depth -= candidate.tag == tag
            if not candidate.depth and candidate.links >= _LINK_LIST_MIN and not candidate.worded:
                self.found.add(candidate.ordinal)
        self._open = [c for c in self._open if c.depth]

    def handle_data(self, data: str) -> None:
        if self._skipping is None and self._link is None and _WORD.search(data):
            for candidate in self._open:
                candidate.worded = True


def _link_lists(text: str) -> set[int]:
    finder = _LinkLists()
    finder.feed(text)
    finder.close()
    return finder.found


class _HtmlSections(HTMLParser):
    """Collects text by heading; scripts, styles, a site's navigation and hidden elements are skipped, and only
    the main region is read when `main_only`."""

    def __init__(self, main_only: bool, link_lists: set[int] | frozenset[int] = frozenset()) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        # Start tags so far, to find the elements `_LinkLists` counted.
        self._ordinal = -1
        self._link_lists = link_lists
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._text: list[str] = []
        # Preformatted runs (<pre>: code, shell sessions), kept as written: text outside them has its spaces
        # collapsed, and a code block without its indentation is another program.
        self._pre: list[list[str]] = []
        self._pre_depth = 0
        # Cells of the current table row so far: the next one is set apart by " | " ("Pro | $20", not "Pro$20").
        self._cells = 0
        self._cell_depth = 0
        self._heading: list[str] | None = None
        self._heading_level = 0
        self._heading_link: int | None = None
        self._in_title = False
        # The element being skipped or read as main, and how many elements of its name are open inside it, so
        # its own end tag is the one that ends it.
        self._skipping: tuple[str, int] | None = None
        self._main: tuple[str, int] | None = None
        self._main_only = main_only

    @property
    def _reading(self) -> bool:
        return self._skipping is None and (self._main is not None or not self._main_only)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._ordinal += 1
        if tag == "title":  # in <head>, which is skipped
            self._in_title = True
            return
        if self._skipping is not None:
            self._skipping = _nested(self._skipping, tag, 1)
            return
        if tag not in _VOID and (_is_chrome(tag, attrs) or self._ordinal in self._link_lists):
            self._skipping = (tag, 1)
            return
        if self._main is None and tag not in _VOID and _is_main(tag, attrs):
            self._main = (tag, 1)
        else:
            self._main = _nested(self._main, tag, 1)
        if self._reading:
            self._open(tag, attrs)

    def _open(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """What a start tag being read does to the text: a heading begins, a block breaks the line."""
        if tag == "a" and self._heading is not None and (dict(attrs).get("href") or "").startswith("#"):
            self._heading_link = len(self._heading)
        if tag in _HEADINGS:
            self._heading, self._heading_level = [], _HEADINGS[tag]
        elif tag in _CELLS:
            self._text.append(" | " if self._cells else "")
            self._cells += 1
            self._cell_depth += 1
        elif tag in _BLOCKS:
            # Inside a cell a block (docutils writes <td><p>...</p></td>) only separates words: the row stays a line.
            self._text.append(" " if self._cell_depth else "\n\n" if tag in ("p", "pre") else "\n")
            self._cells = 0 if tag == "tr" else self._cells
        if tag == "pre":
            self._pre_depth += 1
            if self._pre_depth == 1:
                self._pre.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if self._skipping is not None:
            self._skipping = _nested(self._skipping, tag, -1)
            return
        reading = self._reading
        self._main = _nested(self._main, tag, -1)
        if reading:
            self._close(tag)

    def _close(self, tag: str) -> None:
        """What an end tag being read does to the text: a heading ends its section, a block breaks the line."""
        if tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
            if not self._pre_depth:
                self._text.append(f"\x00{len(self._pre) - 1}\x00\n\n")
        if tag == "a" and self._heading is not None and self._heading_link is not None:
            # A link to the heading itself whose text is only a sign is a permalink ("#" in Node.js's manual).
            if "".join(self._heading[self._heading_link :]).strip() in _PERMALINK_SIGNS:
                del self._heading[self._heading_link :]
            self._heading_link = None
        if tag in _HEADINGS and self._heading is not None:
            heading = " ".join("".join(self._heading).split())
            self._heading = None
            self.flush()
            if heading:
                level = self._heading_level
                self._path = [(lvl, h) for lvl, h in self._path if lvl < level] + [(level, heading)]
        elif tag in _CELLS:
            self._cell_depth = max(0, self._cell_depth - 1)
        elif tag in _BLOCKS:
            self._text.append(" " if self._cell_depth else "\n")
            self._cells = 0 if tag in ("tr", "table") else self._cells

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = (self.title or "") + data.strip()
        elif not self._reading:
            return
        elif self._heading is not None:
            self._heading.append(data)
        elif self._pre_depth:
            self._pre[-1].append(data)
        else:
            text = data.replace("\x00", "")
            # Within a table row, a line break (the source's, between or in cells) would split the row.
            self._text.append(text.replace("\n", " ") if self._cells else text)

    def flush(self) -> None:
        text = re.sub(r" *\n *", "\n", re.sub(r"[ \t]+", " ", "".join(self._text)))
        text = re.sub(r"\n\s*\n\s*", "\n\n", text)
        text = _PRE_MARKER.sub(lambda m: "".join(self._pre[int(m.group(1))]).strip("\n"), text)
        self.sections.append(Section(" > ".join(h for _, h in self._path), text))
        self._text.clear()


def _parse_html(text: str) -> ParsedDocument:
    """The page's text by heading, from its main region and without lists of links where that leaves text (a
    table of contents page is its lists of links, and an empty main region is no region)."""
    lists = _link_lists(text)
    regions = (True, False) if _HAS_MAIN.search(text) else (False,)
    drops: tuple[set[int] | frozenset[int], ...] = (lists, frozenset()) if lists else (lists,)
    for restricted, dropped in ((r, d) for r in regions for d in drops):
        parser = _HtmlSections(main_only=restricted, link_lists=dropped)
        parser.feed(text)
        parser.close()
        parser.flush()
        if any(s.text.strip() for s in parser.sections):
            break
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
    # Sections end at pages, where readers look things up; the headings are the PDF's outline (its bookmarks,
    # which Word, LaTeX and Sphinx write): PDF text itself has no reliable headings.
    return ParsedDocument(title or None, _outlined_pages([_unwrap(p) for p in pages], _pdf_outline(reader)))


def _pdf_outline(reader: Any) -> dict[int, list[list[str]]]:
    """Page index -> the heading paths of the outline entries that start on it, in outline order. A damaged
    outline is no outline: the text still counts."""
    starts: dict[int, list[list[str]]] = {}

    def walk(items: Any, parents: list[str], depth: int) -> None:
        path: list[str] | None = None
        for item in items:
            if isinstance(item, list):
                if depth < 16:
                    walk(item, path or parents, depth + 1)
                continue
            name = " ".join(str(getattr(item, "title", "") or "").split())
            page = reader.get_destination_page_number(item)
            if not name or page is None or page < 0:
                continue
            path = [*parents, name]
            starts.setdefault(page, []).append(path)

    try:
        walk(reader.outline, [], 0)
    except Exception:  # pypdf's errors for a broken outline are as varied as for a broken file
        log.info("the PDF's outline cannot be read; its pages are read without headings")
        return {}
    return starts


def _outlined_pages(pages: list[str], starts: dict[int, list[list[str]]]) -> list[Section]:
    """One section per page, split where an outline entry's title appears on its page (or at the page's top,
    when its title is not found in the text), each under the path of the entry above it."""
    sections: list[Section] = []
    path: list[str] = []
    for index, text in enumerate(pages):
        cursor = 0
        for entry in starts.get(index, []):
            found = text.lower().find(entry[-1].lower(), cursor)
            cut = found if found >= 0 else cursor
            sections.append(Section(" > ".join(path), text[cursor:cut]))
            cursor, path = cut, entry
        sections.append(Section(" > ".join(path), text[cursor:]))
    return sections


def _unwrap(page: str) -> str:
    """PDF text breaks lines at the margin; rejoin them so sentences and paragraphs survive."""
    paragraphs = re.split(r"\n\s*\n", page)
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)
