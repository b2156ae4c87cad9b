"""/docs works without the internet: Swagger UI's assets come from the app, not a CDN (issue 17)."""

from __future__ import annotations

import re
from typing import cast

import pytest
from fastapi.testclient import TestClient

from threadline.api.app import create_app
from threadline.bootstrap import Container

pytestmark = pytest.mark.unit

# Every place an HTML page names a resource the browser fetches: src/href attributes and Swagger's `url:`.
_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")


def test_docs_reference_no_external_host_and_every_asset_is_served() -> None:
    # Given the app (its docs touch no container)
    with TestClient(create_app(cast(Container, object()))) as client:
        # When the docs page is loaded
        page = client.get("/docs")
        assert page.status_code == 200 and "swagger-ui" in page.text
        references = [a or b for a, b in _REFERENCES.findall(page.text)]
        # Then it references no host at all (nothing absolute, nothing protocol-relative) ...
        assert references and not [r for r in references if re.match(r"^(?:[a-z]+:)?//", r)], references
        assert "cdn" not in page.text.lower()
        # ... and every script, stylesheet and icon it names is served by the app, with content
        for reference in references:
            asset = client.get(reference)
            assert asset.status_code == 200 and len(asset.content) > 100, reference
        assert (
            client.get("/docs/assets/swagger-ui-bundle.js")
            .headers["content-type"]
            .startswith(("application/javascript", "text/javascript"))
        )
        # And ReDoc, which would load its script from a CDN, is not offered
        assert client.get("/redoc").status_code == 404
