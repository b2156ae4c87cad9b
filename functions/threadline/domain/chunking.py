"""Chunking in the model's own tokens: sections cut at paragraphs, then sentences, then words, with overlap.

A chunk is sized by what the embedding model reads: its heading path, a line break and its text,
counted in word pieces with [CLS] and [SEP], never more than the model's window (256 for
all-MiniLM-L6-v2; anything past it would be truncated and never embedded). Characters were a poor
proxy: 900 characters of prose are ~200 pieces, of code or tables often more than 256.

WordPiece counts add up across whitespace: the tokenizer splits at whitespace and punctuation before
it cuts words into pieces, so the pieces of "a\\n\\nb" are those of "a" followed by those of "b". Pieces
are therefore counted once per paragraph (sentence, word) and packed by sum; every finished chunk is
counted again as a whole, and one that still does not fit is split on words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from threadline.domain.parsing import Section
from threadline.domain.ports import TokenCounter

# The last whole sentences of a chunk (at most this many word pieces, ~150 characters of prose) start
# the next one, so a passage cut between two chunks is still found with its context.
OVERLAP_TOKENS = 40
# [CLS] and [SEP]: what every count of a whole text includes once.
_SPECIAL = 2

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
    sections: Sequence[Section],
    counter: TokenCounter,
    max_tokens: int | None = None,
    overlap_tokens: int = OVERLAP_TOKENS,
) -> list[ChunkDraft]:
    """Cut every section into chunks whose embedding text fits `max_tokens` (the model's window by default)."""
    limit = max_tokens or counter.max_tokens
    drafts: list[ChunkDraft] = []
    for section in sections:
        heading = _fit_heading(section.heading, counter, limit)
        # The heading, its line break and the special tokens come out of every chunk's budget.
        budget = limit - (counter.count_tokens([heading])[0] if heading else _SPECIAL)
        packer = _Packer(counter, budget, min(overlap_tokens, budget // 4))
        for content in packer.chunks(section.text):
            drafts.extend(_enforce(ChunkDraft(0, heading, content), counter, limit))
    return [ChunkDraft(i, d.heading, d.content) for i, d in enumerate(drafts)]


def _fit_heading(heading: str, counter: TokenCounter, limit: int) -> str:
    """The heading path, cut from the front (the nearest headings matter most) to half the window."""
    words = heading.split()
    while words and counter.count_tokens([" ".join(words)])[0] > limit // 2:
        words = words[max(1, len(words) // 4) :]
    return " ".join(words)


def _enforce(draft: ChunkDraft, counter: TokenCounter, limit: int) -> list[ChunkDraft]:
    """The draft if it fits as a whole; else its words in halves until every half does."""
    if counter.count_tokens([draft.embedding_text])[0] <= limit or len(draft.content) < 2:
        return [draft]
    words = draft.content.split(" ")
    if len(words) < 2:  # one unbreakable run of characters: halve it
        middle = len(draft.content) // 2
        halves = [draft.content[:middle], draft.content[middle:]]
    else:
        middle = len(words) // 2
        halves = [" ".join(words[:middle]), " ".join(words[middle:])]
    return [
        piece
        for half in halves
        if half.strip()
        for piece in _enforce(ChunkDraft(0, draft.heading, half), counter, limit)
    ]


class _Packer:
    """Packs paragraphs (or their sentences, or their words) into chunks of at most `budget` pieces."""

    def __init__(self, counter: TokenCounter, budget: int, overlap: int) -> None:
        self._counter = counter
        self._budget = budget
        self._overlap = overlap

    def _sizes(self, texts: Sequence[str]) -> list[int]:
        return [n - _SPECIAL for n in self._counter.count_tokens(texts)]

    def chunks(self, text: str) -> list[str]:
        chunks: list[str] = []
        current: list[str] = []
        size = 0
        for unit, unit_size in self._units(text):
            if current and size + unit_size > self._budget:
                chunks.append("\n\n".join(current))
                tail, tail_size = self._tail(current[-1])
                current, size = ([tail], tail_size) if tail and tail_size + unit_size <= self._budget else ([], 0)
            current.append(unit)
            size += unit_size
        if current:
            chunks.append("\n\n".join(current))
        return chunks

    def _units(self, text: str) -> list[tuple[str, int]]:
        """Paragraphs; one that is too long becomes sentences, and a sentence that is too long, words."""
        paragraphs = [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]
        units: list[tuple[str, int]] = []
        for paragraph, size in zip(paragraphs, self._sizes(paragraphs), strict=True):
            if size <= self._budget:
                units.append((paragraph, size))
                continue
            sentences = [s for s in _SENTENCE.split(paragraph) if s.strip()]
            pieces: list[tuple[str, int]] = []
            for sentence, sentence_size in zip(sentences, self._sizes(sentences), strict=True):
                if sentence_size <= self._budget:
                    pieces.append((sentence, sentence_size))
                else:
                    words = sentence.split()
                    pieces.extend(zip(words, self._sizes(words), strict=True))
            units.extend(self._pack(pieces))
        return units

    def _pack(self, pieces: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """Join consecutive pieces with spaces into runs of at most `budget` word pieces."""
        runs: list[tuple[str, int]] = []
        run, size = "", 0
        for piece, piece_size in pieces:
            if run and size + piece_size > self._budget:
                runs.append((run, size))
                run, size = "", 0
            run = f"{run} {piece}" if run else piece
            size += piece_size
        if run:
            runs.append((run, size))
        return runs

    def _tail(self, text: str) -> tuple[str, int]:
        """The last whole sentences of a chunk that fit in the overlap, with their size."""
        if self._overlap <= 0:
            return "", 0
        sentences = [s for s in _SENTENCE.split(text) if s.strip()][-8:]
        kept: list[str] = []
        size = 0
        for sentence, sentence_size in reversed(list(zip(sentences, self._sizes(sentences), strict=True))):
            if size + sentence_size > self._overlap:
                break
            kept.insert(0, sentence)
            size += sentence_size
        return " ".join(kept), size
