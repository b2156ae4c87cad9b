"""The team console in a browser against the real app: sign in with an admin key, correct a label, edit a
category, upload a document and see it ready, read the analytics chart, and create a widget key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import SCREENSHOTS
from tests.integration.rag.conftest import Tenant

pytestmark = pytest.mark.browser

QUESTIONS = ["How long do refunds take?", "The export button does nothing", "Do you offer a yearly plan?"]


def _api(app_url: str, tenant: Tenant, method: str, path: str, body: object = None) -> Any:
    response = httpx.request(method, f"{app_url}/query/v1{path}", json=body, headers=tenant.headers, timeout=60)
    assert response.is_success, response.text
    return response.json()


def _categories(app_url: str, tenant: Tenant) -> dict[str, dict[str, Any]]:
    page = _api(app_url, tenant, "GET", f"/projects/{tenant.project_id}/categories/")
    return {c["name"]: c for c in page["results"]}


def test_the_console_corrects_a_label_edits_a_category_uploads_and_charts(
    page: Any, app_url: str, tenant: Tenant, tmp_path: Path
) -> None:
    # Given three conversations, one of them labelled by a person already
    pid = tenant.project_id
    threads = [_api(app_url, tenant, "POST", f"/projects/{pid}/chat/", {"query": q})["thread_id"] for q in QUESTIONS]
    categories = _categories(app_url, tenant)
    _api(app_url, tenant, "PATCH", f"/threads/{threads[2]}/", {"category_id": categories["Discovery"]["id"]})

    # When the team signs in with the project's admin key
    page.goto(f"{app_url}/console/")
    page.get_by_label("Project admin key").fill(tenant.key)
    page.get_by_role("button", name="Sign in").click()
    # Then the threads are listed with their labels
    page.get_by_role("link", name=QUESTIONS[1]).wait_for()
    assert page.get_by_role("row").count() == 1 + len(QUESTIONS)
    page.screenshot(path=str(SCREENSHOTS / "console-threads.png"))

    # When a thread's label is corrected
    page.get_by_role("link", name=QUESTIONS[1]).click()
    page.get_by_text("the classifier and backfills never overwrite it").wait_for()
    page.get_by_label("Correct the label").select_option(label="Troubleshooting")
    page.get_by_role("button", name="Save label").click()
    # Then the page and the API show the user label
    page.get_by_text("set by a person").wait_for()
    assert page.get_by_test_id("label").inner_text() == "Troubleshooting"
    thread = _api(app_url, tenant, "GET", f"/threads/{threads[1]}/")
    assert (thread["category"]["name"], thread["label_source"]) == ("Troubleshooting", "user")

    # When a category is edited, and another is created with a name that is taken
    page.get_by_role("link", name="Categories").click()
    card = page.locator("[data-category=Discovery]")
    card.get_by_role("button", name="Edit").click()
    page.get_by_role("form", name="Edit Discovery").get_by_label("Description").fill("Questions before buying")
    page.get_by_role("form", name="Edit Discovery").get_by_role("button", name="Save").click()
    page.locator("[data-category=Discovery]", has_text="Questions before buying").wait_for()
    create = page.get_by_role("form", name="New category")
    create.get_by_label("Name").fill("troubleshooting")
    create.get_by_role("button", name="Create category").click()
    # Then the edit is stored, and the refusal shows the API's own message
    assert _categories(app_url, tenant)["Discovery"]["description"] == "Questions before buying"
    assert "409" in create.get_by_role("alert").inner_text()

    # When a document is uploaded
    page.get_by_role("link", name="Documents").click()
    doc = tmp_path / "shipping.md"
    doc.write_text("# Shipping\n\nOrders ship within two days from our Lyon warehouse.\n")
    upload = page.get_by_role("form", name="Upload a document")
    upload.get_by_label("File").set_input_files(str(doc))
    upload.get_by_label("Title").fill("Shipping")
    upload.get_by_role("button", name="Upload").click()
    # Then it is listed and becomes ready
    page.locator("[data-document=Shipping] .status.ready").wait_for()
    listed = _api(app_url, tenant, "GET", f"/projects/{pid}/documents/")["results"]
    assert [(d["title"], d["status"]) for d in listed] == [("Shipping", "ready")]

    # When the analytics page opens
    page.get_by_role("link", name="Analytics").click()
    chart = page.get_by_role("img", name="Threads per category per day")
    chart.locator("canvas").wait_for()
    # Then the chart's legend names every category, and the totals match the API
    legend = page.locator(".chart").first.inner_text()
    assert "Discovery" in legend and "Troubleshooting" in legend and "unlabelled" in legend
    assert page.locator(".figure", has_text="threads").inner_text().split()[0] == str(len(QUESTIONS))
    page.screenshot(path=str(SCREENSHOTS / "console-analytics.png"), full_page=True)
    # When a widget key is created for a docs site
    page.get_by_role("link", name="Keys").click()
    form = page.get_by_role("form", name="New key")
    form.get_by_label("Name").fill("docs site")
    form.get_by_label("Origins").fill("https://docs.example.com")
    form.get_by_role("button", name="Create key").click()
    # Then the script tag to paste is shown with the new key, and the key is a widget key for that origin
    snippet = page.locator(".snippet").inner_text()
    assert f'src="{app_url}/widget.js"' in snippet and f'data-project-id="{pid}"' in snippet
    keys = _api(app_url, tenant, "GET", f"/projects/{pid}/api-keys/")["results"]
    widget = next(k for k in keys if k["scope"] == "widget")
    assert widget["origins"] == ["https://docs.example.com"] and widget["prefix"] in snippet

    # and nothing failed in the page but the refused category (the browser logs every non-2xx response)
    assert [e for e in page.console_errors if "409" not in e] == []
