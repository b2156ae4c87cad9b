"""What text Postgres can store: the one policy every entry point (API bodies, query strings, files) applies."""

from __future__ import annotations

import re

# NUL cannot be stored in a Postgres text value ("invalid byte sequence for encoding UTF8: 0x00"), and a lone
# UTF-16 surrogate (JSON allows "\ud800") cannot be encoded as UTF-8 at all: either reached the database as a
# driver error, a 500 (issue 17: a chat question, a system prompt, a category's examples).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(value: str) -> str | None:
    """Why `value` cannot be stored as text (the first offending character), or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    return f"contains a character that cannot be stored (U+{ord(found.group()):04X} at position {found.start()})"


def strip_unstorable(value: str) -> str:
    """`value` without the characters text columns cannot hold: the policy for text extracted from files,
    where a stray NUL (common in PDF text layers) should not reject a whole document."""
    return _UNSTORABLE.sub("", value)
