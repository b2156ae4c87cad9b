"""Swagger UI at /docs with its assets served by the app itself, so the page works without the internet."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from threadline.api.web import WEB_DIR

ASSETS = "/docs/assets"


def mount_docs(app: FastAPI) -> None:
    """/docs and its JS/CSS from `make web`'s copy of the pinned npm `swagger-ui-dist` (FastAPI's default page
    loads them from a CDN, which left it blank offline, issue 17). ReDoc has no bundled assets: not served.

    The PyPI `swagger-ui-bundle` did the same at run time but put 8.3 MB (every asset and source map) and
    jinja2 into the dependencies layer, pushing every function past Lambda's 250 MB; three files are ~1.9 MB.
    """
    app.mount(ASSETS, StaticFiles(directory=str(WEB_DIR / "docs"), check_dir=False), name="swagger-ui-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
