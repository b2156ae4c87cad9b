"""Parsing and chunking: pure functions, no I/O but the tokenizer's file."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest

from threadline.adapters.embeddings import WordPieceCounter
from threadline.domain.chunking import chunk_sections
from threadline.domain.errors import UnsupportedMediaType
from threadline.domain.parsing import DocumentFormat, ParseError, Section, detect_format, parse, parse_markdown

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("filename", "declared", "data", "expected"),
    [
        ("guide.md", "application/octet-stream", b"# x", DocumentFormat.MARKDOWN),
        ("intro.mdx", None, b"# x", DocumentFormat.MARKDOWN),
        ("index.rst", "text/plain", b"x\n=", DocumentFormat.RST),
        ("manual.docx", "application/zip", b"PK\x03\x04", DocumentFormat.DOCX),
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


def test_markdown_setext_headings_and_front_matter() -> None:
    # Given Markdown with YAML front matter, underlined headings, and "---" lines that are rules, table
    # separators or code rather than underlines
    text = (
        '---\ntitle: "Getting started"\nsidebar_position: 2\n---\nIntro.\n\nInstall\n=======\nRun pip.\n\n'
        "Options\n-------\n- one\n- two\n---\n| a | b |\n|---|---|\n\n```\ncode\n---\n```\n"
    )
    # When it is parsed
    parsed = parse_markdown(text)
    # Then the front matter names the document and is not text, and only the real underlines make headings
    assert parsed.title == "Getting started"
    # (a document that opens with a rule, not YAML, keeps what follows it: here, as CommonMark reads it, a heading)
    opened = parse_markdown("---\nRead this first.\n---\nBody.\n")
    assert [(s.heading, s.text) for s in opened.sections] == [("", "---"), ("Read this first.", "Body.")]
    assert [(s.heading, s.text.strip()) for s in parsed.sections] == [
        ("", "Intro."),
        ("Install", "Run pip."),
        ("Install > Options", "- one\n- two\n---\n| a | b |\n|---|---|\n\n```\ncode\n---\n```"),
    ]


def test_restructuredtext_titles_form_paths_by_adornment_style() -> None:
    # Given reST with an overlined document title, two underline styles, a transition, a literal block whose
    # lines look like adornments, and a line under a short underline
    text = (
        "=========\n Widgets\n=========\n\nIntro.\n\nInstall\n-------\n\nRun::\n\n    pip install widget\n"
        "    ------\n\nLinux\n~~~~~\n\napt.\n\n----------\n\nUsage\n-------\n\nToo long a title\n~~~\n"
    )
    # When it is read as reStructuredText (a .rst file)
    parsed = parse(text.encode(), detect_format("widgets.rst", None, b""))
    # Then the overlined title names it, each new style is a level deeper, and nothing else is a title
    assert parsed.title == "Widgets"
    assert [(s.heading, s.text.strip()) for s in parsed.sections] == [
        ("Widgets", "Intro."),
        ("Widgets > Install", "Run::\n\n    pip install widget\n    ------"),
        ("Widgets > Install > Linux", "apt.\n\n----------"),
        ("Widgets > Usage", "Too long a title\n~~~"),
    ]


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


def test_html_of_a_documentation_site_is_read_from_its_main_region_without_chrome() -> None:
    # Given a page laid out as Sphinx lays out a site's pages: "related" bars and a sidebar (role="navigation")
    # naming the neighbouring pages, a search form, a main region with permalinks beside its headings, a footer
    html = (
        "<html><head><title>pickle - Python object serialization</title></head><body>"
        '<div class="related" role="navigation"><ul><li>previous | marshal</li></ul></div>'
        '<div class="sphinxsidebar" role="navigation"><h3>Previous topic</h3><p>copyreg</p>'
        "<h3>Next topic</h3><p>marshal - Internal Python object serialization</p>"
        '<div id="searchbox" style="display: none" role="search"><form><input type="text"/></form></div></div>'
        '<div class="body" role="main"><section><h1>pickle<a class="headerlink" href="#pickle">\u00b6</a></h1>'
        "<p>The pickle module serializes objects.</p><div><div><p>Nested blocks are read.</p></div></div>"
        '<section><h2>Security<a class="headerlink" href="#s">\u00b6</a></h2><p>Never unpickle untrusted data.</p>'
        "</section></section></div>"
        '<div class="footer">Copyright 2001 Python Software Foundation.</div></body></html>'
    )
    # When it is parsed
    parsed = parse(html.encode(), DocumentFormat.HTML)
    # Then only the main region's text remains, under headings without their permalink signs
    assert parsed.title == "pickle - Python object serialization"
    assert [(s.heading, " ".join(s.text.split())) for s in parsed.sections] == [
        ("pickle", "The pickle module serializes objects. Nested blocks are read."),
        ("pickle > Security", "Never unpickle untrusted data."),
    ]


def test_html_chrome_and_hidden_elements_are_skipped_to_their_own_end_tag() -> None:
    # Given a page without a main region: a banner, hidden elements (nested in elements of their own name),
    # a hidden input (no end tag) and a footer, around the content
    html = (
        '<body><header role="banner"><p>Acme Docs</p></header><h1>Setup</h1>'
        '<div aria-hidden="true"><div>decorative</div> still hidden</div><p>Install the agent.</p>'
        '<div hidden><div><div>template</div></div></div><input type="hidden" hidden>'
        '<span style="DISPLAY:none">collapsed</span><p>Then restart it.</p><footer>Last updated today</footer></body>'
    )
    # When it is parsed
    parsed = parse(html.encode(), DocumentFormat.HTML)
    # Then the text after each skipped element is kept, and nothing inside one
    assert [(s.heading, " ".join(s.text.split())) for s in parsed.sections] == [
        ("Setup", "Install the agent. Then restart it.")
    ]


def test_html_code_blocks_keep_their_lines_and_indentation() -> None:
    # Given prose with runs of spaces and a highlighted code block (spans inside <pre>, as Sphinx writes it)
    html = (
        "<h1>Retries</h1><p>Wrap   the    call:</p>"
        '<div class="highlight"><pre><span class="k">def</span> call():\n    for attempt in range(3):\n'
        "        <span>try_once</span>()\n\n    return None\n</pre></div><p>Then   log it.</p>"
    )
    # When it is parsed
    (section,) = parse(html.encode(), DocumentFormat.HTML).sections
    # Then the prose's spaces collapse and the code stays as written, a paragraph of its own
    assert section.text == (
        "Wrap the call:\n\ndef call():\n    for attempt in range(3):\n        try_once()\n\n    return None"
        "\n\nThen log it."
    )


def test_html_table_rows_stay_lines_with_their_cells_apart() -> None:
    # Given a table whose cells hold paragraphs, as docutils writes them
    # (and a heading whose permalink is an anchor reading "#", as Node.js writes it, and a heading "C#")
    html = (
        '<h1>Plans<a href="#plans">#</a></h1><table><thead><tr><th>Plan</th><th>Price</th></tr></thead><tbody>'
        "<tr><td><p>Pro</p></td><td><p>$20 a\nmonth</p></td></tr>\n<tr><td>Team</td>\n<td>$50</td></tr></tbody></table>"
        "<h2>C#</h2><p>After\nthe table.</p>"
    )
    # When it is parsed, then each row is a line and no two cells run together
    parsed = parse(html.encode(), DocumentFormat.HTML)
    assert parsed.sections[0].heading == "Plans"
    assert parsed.sections[0].text.split("\n\n") == ["Plan | Price", "Pro | $20 a month", "Team | $50"]
    assert (parsed.sections[1].heading, parsed.sections[1].text) == ("Plans > C#", "After\nthe table.")


def test_html_lists_of_nothing_but_links_are_skipped_where_the_page_has_other_text() -> None:
    # Given a page without landmarks, as SQLite's manual lays its pages out: a menu of links (items left open),
    # a table of contents, a "Previous | Next" bar; and in the content, a sentence with links, a list whose items
    # say something beside their link, and a list of only two links
    html = (
        '<body><div class="menu"><ul><li><a href="index.html">Home</a><li><a href="docs.html">Documentation</a>'
        '<li><a href="download.html">Download</a><li><a href="support.html">Support</a></ul></div>'
        "<h1>Transactions</h1><div class=toc><ul><li><a href=#a>1. Overview</a><ul><li><a href=#b>1.1 Locks</a>"
        "</li></ul></li><li><a href=#c>2. Journals</a></li></ul></div>"
        '<p>Use <a href="begin.html">BEGIN</a>, <a href="commit.html">COMMIT</a> and <a href="r.html">ROLLBACK</a>.</p>'
        '<ul><li><a href="begin.html">BEGIN</a> starts one</li><li><a href="c.html">COMMIT</a></li>'
        '<li><a href="r.html">ROLLBACK</a></li></ul><ul><li><a href="wal.html">WAL</a></li>'
        '<li><a href="lock.html">Locking</a></li></ul>'
        '<p class=nav><a href="a.html">Previous</a> | <a href="b.html">Next</a> | <a href="index.html">Top</a></p>'
        "</body>"
    )
    # When it is parsed
    parsed = parse(html.encode(), DocumentFormat.HTML)
    # Then the menu, the table of contents and the bar are gone, and every list that says something is kept
    assert [(s.heading, " ".join(s.text.split())) for s in parsed.sections if s.text.strip()] == [
        ("Transactions", "Use BEGIN, COMMIT and ROLLBACK. BEGIN starts one COMMIT ROLLBACK WAL Locking"),
    ]


def test_html_that_is_only_lists_of_links_keeps_them() -> None:
    # Given an index page, in a main region and out of one, whose content is its table of contents
    toc = '<ul><li><a href="install.html">Installing</a></li><li><a href="usage.html">Usage</a></li>' + (
        '<li><a href="faq.html">FAQ</a></li></ul>'
    )
    for html in (f"<h1>Guide</h1>{toc}", f'<div role="main"><h1>Guide</h1>{toc}</div><ul>{toc}</ul>'):
        # When it is parsed, then the page is its links rather than refused as empty
        parsed = parse(html.encode(), DocumentFormat.HTML)
        assert [(s.heading, " ".join(s.text.split())) for s in parsed.sections if s.text.strip()] == [
            ("Guide", "Installing Usage FAQ")
        ]


def test_the_title_heads_the_sections_where_no_heading_names_the_page() -> None:
    # Given pages whose headings do not name them: numbered top headings under a title the page sets apart (as
    # SQLite's manual does), and a static site's Markdown titled only in its front matter
    numbered = (
        "<title>The Amalgamation</title><div class=title>The Amalgamation</div>"
        "<h1>1. Executive Summary</h1><p>One file.</p><h1>2. Building</h1><h2>2.1 Flags</h2><p>Use -O2.</p>"
    )
    front_matter = '---\ntitle: "Rotate keys"\n---\nKeys expire yearly.\n\n## Steps\nOpen Settings.\n'
    # When they are parsed, then every section is headed by the title (and a passage says which page it is from)
    assert [(s.heading, s.text) for s in parse(numbered.encode(), DocumentFormat.HTML).sections] == [
        ("The Amalgamation", "The Amalgamation"),
        ("The Amalgamation > 1. Executive Summary", "One file."),
        ("The Amalgamation > 2. Building > 2.1 Flags", "Use -O2."),
    ]
    assert [(s.heading, s.text) for s in parse(front_matter.encode(), DocumentFormat.MARKDOWN).sections] == [
        ("Rotate keys", "Keys expire yearly."),
        ("Rotate keys > Steps", "Open Settings."),
    ]


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        # a heading that the title starts with ("Billing | Acme Help")
        ("<title>Billing | Acme Help</title><h1>Billing</h1><p>Monthly.</p><h2>Refunds</h2><p>5 days.</p>", "html"),
        # an HTML page's only top heading, under a <title> that may be the site's name on every page
        ("<title>Acme Help</title><h1>Billing</h1><p>Monthly.</p><h2>Refunds</h2><p>5 days.</p>", "html"),
        # Markdown whose first H1 is its title
        ("# Billing\nMonthly.\n## Refunds\n5 days.\n", "md"),
    ],
)
def test_a_heading_that_names_the_page_is_not_headed_again(text: str, fmt: str) -> None:
    # Given a page that a heading names, when it is parsed
    parsed = parse(text.encode(), DocumentFormat.HTML if fmt == "html" else DocumentFormat.MARKDOWN)
    # Then its headings are its own
    assert [s.heading for s in parsed.sections] == ["Billing", "Billing > Refunds"]


def test_a_pdf_metadata_title_heads_nothing() -> None:
    # Given a PDF whose metadata title a tool filled in
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.setTitle("Microsoft Word - Document1")
    pdf.drawString(72, 720, "The warranty lasts two years.")
    pdf.save()
    # When it is parsed
    parsed = parse(buffer.getvalue(), DocumentFormat.PDF)
    # Then the title is reported but no section is headed by it
    assert parsed.title == "Microsoft Word - Document1"
    assert all("Microsoft Word" not in s.heading for s in parsed.sections)


def test_html_whose_main_region_is_empty_is_read_whole() -> None:
    # Given a page that marks an empty main region and keeps its text outside it
    html = "<body><main></main><h1>FAQ</h1><p>Yes, it works offline.</p></body>"
    # When it is parsed, then the text outside is read rather than the page being refused as empty
    parsed = parse(html.encode(), DocumentFormat.HTML)
    assert [(s.heading, s.text.strip()) for s in parsed.sections] == [("FAQ", "Yes, it works offline.")]


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


def test_pdf_outline_entries_head_the_text_they_start() -> None:
    # Given a three-page PDF with bookmarks, as Word or LaTeX writes them: a chapter on page 1, a section
    # starting mid-page 2, and a bookmark whose title is not in the text on page 3
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    lines = {
        0: ["Installation", "Copy the files to the server."],
        1: ["Unpack the archive first.", "", "Upgrading", "Stop the service before upgrading."],
        2: ["Keep a backup of the data folder."],
    }
    outline = {0: [("Installation", 0)], 1: [("Upgrading", 1)], 2: [("Backups", 1)]}
    for page in range(3):
        for number, line in enumerate(lines[page]):
            pdf.drawString(72, 720 - 14 * number, line)
        for title, level in outline[page]:
            pdf.bookmarkPage(title)
            pdf.addOutlineEntry(title, title, level=level)
        pdf.showPage()
    pdf.save()
    # When it is parsed
    parsed = parse(buffer.getvalue(), DocumentFormat.PDF)
    # Then each entry heads the text from where its title appears (or from its page's top), pages still apart
    assert [(s.heading, " ".join(s.text.split())) for s in parsed.sections] == [
        ("Installation", "Installation Copy the files to the server."),
        ("Installation", "Unpack the archive first."),
        ("Installation > Upgrading", "Upgrading Stop the service before upgrading."),
        ("Installation > Backups", "Keep a backup of the data folder."),
    ]


@pytest.fixture(scope="module")
def counter(tokenizer_path: Path) -> WordPieceCounter:
    """The model's own tokenizer (the file only: no model is loaded)."""
    return WordPieceCounter(tokenizer_path)


def test_chunks_fit_the_window_keep_the_heading_and_overlap(counter: WordPieceCounter) -> None:
    # Given a long section of numbered sentences in paragraphs
    sentences = [f"Sentence number {i} explains one more detail of the product." for i in range(60)]
    paragraphs = ["\n".join(sentences[i : i + 3]).replace("\n", " ") for i in range(0, 60, 3)]
    section = Section("Manual > Setup", "\n\n".join(paragraphs))
    # When it is chunked for a window of 100 word pieces
    chunks = chunk_sections([section, Section("Manual > FAQ", "Short answer.")], counter, 100, overlap_tokens=30)
    # Then every chunk, heading included, fits in the window, and shares a sentence with its predecessor
    setup = [c for c in chunks if c.heading == "Manual > Setup"]
    assert len(setup) > 3
    assert max(counter.count_tokens([c.embedding_text for c in chunks])) <= 100
    for previous, current in itertools.pairwise(setup):
        first_sentence = current.content.split(". ")[0]
        assert first_sentence in previous.content
    # And no sentence is lost, ordinals run across sections, and the heading is embedded with the text
    assert all(s in " ".join(c.content for c in setup) for s in sentences)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].embedding_text == "Manual > FAQ\nShort answer."


def test_a_sentence_longer_than_a_chunk_is_split_on_words(counter: WordPieceCounter) -> None:
    # Given one "sentence" of 500 words and no punctuation
    # When it is chunked for a window of 64 word pieces
    chunks = chunk_sections([Section("", "word " * 500)], counter, 64, overlap_tokens=0)
    # Then it is cut on words into runs that fit, and every word is kept once
    assert len(chunks) >= 8
    assert max(counter.count_tokens([c.content for c in chunks])) <= 64
    assert all(not c.content.startswith(" ") for c in chunks)
    assert sum(c.content.split().count("word") for c in chunks) == 500


def test_dense_text_is_sized_in_tokens_not_characters(counter: WordPieceCounter) -> None:
    # Given a paragraph of code: ~700 characters but far more than 256 word pieces
    code = " ".join(f"cfg[{i}]=os.environ.get('K_{i}','x');" for i in range(25))
    assert len(code) < 900 and counter.count_tokens([code])[0] > 256
    # When it is chunked for the model's own window, under a long heading path
    heading = " > ".join(f"Configuration reference part {i}" for i in range(40))
    chunks = chunk_sections([Section(heading, code)], counter)
    # Then no chunk is longer than what the model reads, and the heading was shortened from the front
    assert len(chunks) >= 2
    assert max(counter.count_tokens([c.embedding_text for c in chunks])) <= counter.max_tokens
    assert chunks[0].heading.endswith("Configuration reference part 39")
    assert counter.count_tokens([chunks[0].heading])[0] <= counter.max_tokens // 2
