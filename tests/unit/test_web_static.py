"""The widget and the console as files the API serves: types, cache headers, no key, nothing outside the folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from threadline.api.errors import install_error_handlers
from threadline.api.web import mount_web

pytestmark = pytest.mark.unit


def _client(web_dir: Path) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    mount_web(app, web_dir)
    return TestClient(app)


@pytest.fixture
def built(tmp_path: Path) -> Path:
    (tmp_path / "console").mkdir()
    (tmp_path / "widget.js").write_text("(()=>{})();")
    (tmp_path / "console" / "index.html").write_text("<!doctype html><div id=app></div>")
    (tmp_path / "console" / "app.js").write_text("export{};")
    (tmp_path / "secret.txt").write_text("not for the web")
    return tmp_path


def test_the_widget_is_served_to_any_page_without_a_key(built: Path) -> None:
    # When any page loads the script
    response = _client(built).get("/widget.js", headers={"Origin": "https://docs.example.com"})
    # Then it is JavaScript, cacheable for a short while, and loadable cross-origin
    assert response.status_code == 200 and response.text == "(()=>{})();"
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"


def test_the_console_page_is_revalidated_and_fenced_by_a_content_security_policy(built: Path) -> None:
    client = _client(built)
    # When the console is opened, with and without its trailing slash
    index = client.get("/console/")
    bare = client.get("/console", follow_redirects=False)
    asset = client.get("/console/app.js")
    # Then the page is HTML that is revalidated on each load, under a CSP that allows only its own scripts
    assert index.status_code == 200 and index.headers["content-type"] == "text/html; charset=utf-8"
    assert index.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert (bare.status_code, bare.headers["location"]) == (308, "/console/")
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/console/..%2Fsecret.txt", "/console/%2E%2E/secret.txt", "/console/.hidden"])
def test_nothing_outside_the_console_folder_is_served(built: Path, path: str) -> None:
    # When a path tries to leave the folder
    response = _client(built).get(path)
    # Then it is the API's 404, and the file's content never leaves
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "not for the web" not in response.text


def test_assets_not_built_give_a_404_that_says_how_to_build_them(tmp_path: Path) -> None:
    # Given no `make web` output
    response = _client(tmp_path / "missing").get("/widget.js")
    # Then the 404 says what to run
    assert response.status_code == 404
    assert "make web" in response.json()["error"]["message"]
