"""Chunking: sections cut at paragraph, then sentence, then word boundaries, with overlap between neighbours."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from threadline.domain.parsing import Section

# MiniLM reads at most 256 word pieces; ~900 characters of English stays under that with the heading.
MAX_CHARS = 900
OVERLAP_CHARS = 150

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A chunk before it is embedded: its place in the document, its heading path and its text."""

    ordinal: int
    heading: str
    content: str

    @property
    def embedding_text(self) -> str:
        """What is embedded: the heading gives a short passage the context it lacks on its own."""
        return f"{self.heading}\n{self.content}" if self.heading else self.content


def chunk_sections(
    sections: Sequence[Section], max_chars: int = MAX_CHARS, overlap_chars: int = OVERLAP_CHARS
) -> list[ChunkDraft]:
    """Cut every section into chunks of at most about `max_chars`, numbered across the document."""
    drafts: list[ChunkDraft] = []
    for section in sections:
        for content in _chunk_text(section.text, max_chars, overlap_chars):
            drafts.append(ChunkDraft(len(drafts), section.heading, content))
    return drafts


def _chunk_text(text: str, max_chars: int, overlap_chars: int) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for unit in _units(text, max_chars):
        if current and size + len(unit) + 2 > max_chars:
            chunks.append("\n\n".join(current))
            tail = _tail(current[-1], overlap_chars)
            current, size = ([tail], len(tail)) if tail and len(tail) + len(unit) + 2 <= max_chars else ([], 0)
        current.append(unit)
        size += len(unit) + 2
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _units(text: str, max_chars: int) -> Iterable[str]:
    """Paragraphs; a paragraph that is too long becomes sentences, and a sentence that is too long, words."""
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            yield paragraph
            continue
        yield from _pack(_sentences(paragraph, max_chars), max_chars)


def _sentences(paragraph: str, max_chars: int) -> Iterable[str]:
    for sentence in _SENTENCE.split(paragraph):
        if len(sentence) <= max_chars:
            yield sentence
        else:
            yield from _pack(sentence.split(), max_chars)


def _pack(pieces: Iterable[str], max_chars: int) -> Iterable[str]:
    """Join consecutive pieces with spaces into runs of at most max_chars."""
    run = ""
    for piece in pieces:
        piece = piece[:max_chars]
        if run and len(run) + 1 + len(piece) > max_chars:
            yield run
            run = piece
        else:
            run = f"{run} {piece}" if run else piece
    if run:
        yield run


def _tail(text: str, overlap_chars: int) -> str:
    """The last whole sentences of a chunk that fit in the overlap, so the next chunk starts in context."""
    if overlap_chars <= 0:
        return ""
    sentences = _SENTENCE.split(text)
    kept: list[str] = []
    size = 0
    for sentence in reversed(sentences):
        if size + len(sentence) + 1 > overlap_chars:
            break
        kept.insert(0, sentence)
        size += len(sentence) + 1
    if kept:
        return " ".join(kept)
    # No sentence boundary inside the budget: fall back to the last words.
    words = text[-overlap_chars:].split(" ", 1)
    return words[-1].strip() if len(words) > 1 else ""
