"""Keys of the benchmarks' caches of real embeddings (under .local/bench)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path


def embeddings_key(texts: Sequence[str], model_path: Path) -> str:
    """A digest of the texts and of the model file: a rebuilt model must never be measured against vectors an
    older model computed (its questions would be embedded by one model and the passages by another)."""
    digest = hashlib.sha256("\x00".join(texts).encode())
    digest.update(model_path.read_bytes())
    return digest.hexdigest()[:16]
