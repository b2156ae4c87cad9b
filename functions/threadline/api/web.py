"""The chat widget (`/widget.js`) and the team console (`/console/`), served by the API itself.

`make web` builds them into `threadline/web_static/` (git-ignored), so the same files ship in the Lambda code
artifact and are served by the same app locally and in AWS (HTTP API and Function URL alike): one origin for
the console and the API, no bucket or CDN to keep in step. They are public files: no key is needed to fetch them.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse

from threadline.domain.errors import NotFound

WEB_DIR = Path(__file__).resolve().parents[1] / "web_static"

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
# widget.js keeps one URL in every customer's page, so it cannot be cached for long: five minutes bounds how long
# a fix takes to reach visitors. The console's index is revalidated on every load so it never pairs a stale page
# with new assets.
_WIDGET_CACHE = "public, max-age=300"
_INDEX_CACHE = "no-cache"
_ASSET_CACHE = "public, max-age=300"
# The console renders answers as DOM nodes (never HTML); the policy is a second fence against injected scripts.
# connect-src allows any http(s) API because the console may sign in to an API on another origin.
_CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; connect-src 'self' http: https:; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _file(path: Path, cache: str, extra: dict[str, str] | None = None) -> FileResponse:
    if not path.is_file():
        raise NotFound("the web assets are not built here: run `make web`", path=path.name)
    headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff", **(extra or {})}
    return FileResponse(path, media_type=_TYPES.get(path.suffix, "application/octet-stream"), headers=headers)


def mount_web(app: FastAPI, web_dir: Path = WEB_DIR) -> None:
    """Add the static routes (outside the OpenAPI document: they are files, not API)."""
    console = web_dir / "console"

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> FileResponse:
        # Any page may load the script; the key it carries decides what it may do.
        return _file(web_dir / "widget.js", _WIDGET_CACHE, {"Cross-Origin-Resource-Policy": "cross-origin"})

    @app.get("/console", include_in_schema=False)
    def console_redirect() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=308)

    @app.get("/console/", include_in_schema=False)
    def console_index() -> FileResponse:
        return _file(console / "index.html", _INDEX_CACHE, {"Content-Security-Policy": _CONSOLE_CSP})

    @app.get("/console/{name}", include_in_schema=False)
    def console_asset(name: str) -> FileResponse:
        # Only the files of the console folder itself: a name is one path segment, never `..` or a subfolder.
        path = console / name
        if "/" in name or name.startswith(".") or path.parent != console:
            raise NotFound("no such console file", path=name)
        return _file(path, _ASSET_CACHE)
