"""The widget on a plain HTML page of another origin, against the real app: it streams, cites, rates, and
survives a reload; failures read as messages; the page's CSS does not reach it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import SCREENSHOTS
from tests.integration.rag.conftest import Tenant
from threadline.local.openai_stub import OpenAIStub, Reply

pytestmark = pytest.mark.browser

REFUNDS = "# Refunds\n\nRefunds are paid within 5 business days to the card used for the purchase."
# Model text with HTML in it: the widget must show it as text, never as elements.
ANSWER = "Refunds take **5 business days** [1]. <img src=x onerror=\"document.title='pwned'\"> Anything else?"

# Counts how many different lengths the answer's text went through while it streamed (one per token or so).
WATCH_STREAM = """() => {
  const root = document.querySelector('threadline-chat').shadowRoot;
  window.__lengths = new Set();
  new MutationObserver(() => {
    const bodies = root.querySelectorAll('.msg.bot .body');
    const last = bodies[bodies.length - 1];
    if (last) window.__lengths.add(last.textContent.length);
  }).observe(root, {subtree: true, childList: true, characterData: true});
}"""


def _widget_key(app_url: str, tenant: Tenant, origin: str) -> str:
    response = httpx.post(
        f"{app_url}/query/v1/projects/{tenant.project_id}/api-keys/",
        json={"name": "docs site", "scope": "widget", "origins": [origin]},
        headers=tenant.headers,
        timeout=60,
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def _embed(folder: Path, app_url: str, tenant: Tenant, key: str, theme: str = "") -> None:
    extra = f' data-theme="{theme}"' if theme else ""
    # The host page's own CSS is hostile on purpose: it must not restyle the widget.
    (folder / "index.html").write_text(
        "<!doctype html><html><head><title>Acme docs</title><link rel='icon' href='data:,'>"
        "<style>button{background:red!important;font-size:40px!important} p{color:lime}</style></head>"
        "<body><h1>Acme documentation</h1><p>How do refunds work? Ask the assistant.</p>"
        f'<script src="{app_url}/widget.js" data-project-id="{tenant.project_id}" data-key="{key}"{extra} async>'
        "</script></body></html>"
    )


def _upload(app_url: str, tenant: Tenant) -> None:
    response = httpx.post(
        f"{app_url}/query/v1/projects/{tenant.project_id}/documents/",
        json={"title": "Refund policy", "text": REFUNDS},
        headers=tenant.headers,
        timeout=60,
    )
    assert response.status_code == 201, response.text


def _thread(app_url: str, tenant: Tenant, thread_id: str) -> dict[str, Any]:
    response = httpx.get(f"{app_url}/query/v1/threads/{thread_id}/", headers=tenant.headers, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_widget_streams_cites_rates_and_survives_a_reload(
    page: Any, app_url: str, host_site: tuple[str, Path], tenant: Tenant, llm_stub: OpenAIStub
) -> None:
    # Given a document, a widget key for the host page's origin, and the page embedding the widget
    host, folder = host_site
    _upload(app_url, tenant)
    _embed(folder, app_url, tenant, _widget_key(app_url, tenant, host))
    llm_stub.script(Reply(text=ANSWER, delay_s=0.03), Reply(text="Yes, to the same card [1]."))
    page.goto(f"{host}/index.html")

    # When the visitor opens the chat and asks
    launcher = page.get_by_role("button", name="Chat with us")
    launcher.click()
    dialog = page.get_by_role("dialog", name="Ask us anything")
    question = dialog.get_by_role("textbox", name="Your question")
    assert question.evaluate("e => e.getRootNode().activeElement === e"), "focus moves into the panel"
    page.evaluate(WATCH_STREAM)
    question.fill("How long do refunds take?")
    question.press("Enter")

    # Then the answer streams in token by token, Markdown rendered and the model's HTML shown as text
    answer = dialog.locator(".msg.bot").first
    answer.get_by_role("button", name="Helpful", exact=True).wait_for()
    assert page.evaluate("window.__lengths.size") >= 5, "the answer appeared in pieces, not at once"
    assert answer.locator("strong", has_text="5 business days").count() == 1
    assert answer.locator("img").count() == 0 and page.title() == "Acme docs"
    assert "<img src=x" in answer.inner_text()
    # and [1] links to the numbered source, the uploaded document
    cite = answer.locator("a.cite", has_text="[1]")
    source = answer.get_by_role("list", name="Sources").locator("li").first
    assert cite.get_attribute("href") == f"#{source.get_attribute('id')}"
    assert "Refund policy" in source.inner_text()
    # and the page's CSS did not reach the widget (nor the widget's the page)
    assert launcher.evaluate("e => getComputedStyle(e).fontSize") != "40px"
    assert page.locator("body > p").evaluate("e => getComputedStyle(e).color") == "rgb(0, 255, 0)"

    # When the visitor rates the answer
    answer.get_by_role("button", name="Helpful", exact=True).click()
    # Then the rating is stored on the answer
    answer.locator("button[data-rating=up][aria-pressed=true]").wait_for()  # once the API has stored it
    page.get_by_text("Thanks for your feedback").wait_for()
    thread_id = page.evaluate(f"localStorage.getItem('threadline:thread:{tenant.project_id}')")
    deadline = time.monotonic() + 5
    while _thread(app_url, tenant, thread_id)["messages"][0]["feedback"]["up"] != 1:
        assert time.monotonic() < deadline, "the rating was not stored"
        time.sleep(0.1)
    page.screenshot(path=str(SCREENSHOTS / "widget.png"))

    # When the page is reloaded and the visitor asks a follow-up
    page.reload()
    page.get_by_role("button", name="Chat with us").click()
    restored = page.get_by_role("dialog").locator(".msg.bot").first
    restored.get_by_role("button", name="Helpful", exact=True).wait_for()
    assert "5 business days" in restored.inner_text()
    assert restored.get_by_role("button", name="Helpful", exact=True).get_attribute("aria-pressed") == "true"
    page.get_by_role("textbox", name="Your question").fill("To which card?")
    page.get_by_role("textbox", name="Your question").press("Enter")
    page.get_by_role("dialog").locator(".msg.bot").nth(1).get_by_role("button", name="Helpful", exact=True).wait_for()

    # Then the follow-up went to the same thread, with the first exchange as its history
    messages = _thread(app_url, tenant, thread_id)["messages"]
    assert [m["question"] for m in messages] == ["How long do refunds take?", "To which card?"]
    assert "How long do refunds take?" in str(llm_stub.requests[-1]["messages"])
    assert page.console_errors == []


def test_failures_read_as_messages_and_the_panel_is_keyboard_operable(
    page: Any, app_url: str, host_site: tuple[str, Path], tenant: Tenant, llm_stub: OpenAIStub
) -> None:
    # Given the widget, in dark mode, and a model that fails once
    host, folder = host_site
    _embed(folder, app_url, tenant, _widget_key(app_url, tenant, host), theme="dark")
    llm_stub.script(*[Reply(status=500)] * 4)  # the chat and the SDK each retry once
    page.goto(f"{host}/index.html")

    # When the visitor opens it with the keyboard and asks
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    question = page.get_by_role("textbox", name="Your question")
    question.fill("Hello?")
    question.press("Enter")

    # Then the model's failure is said plainly, in an alert
    alert = page.get_by_role("dialog").get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().strip() != ""

    # When the network drops during the next question
    page.route("**/chat/stream/", lambda route: route.abort("internetdisconnected"))
    question.fill("Still there?")
    question.press("Enter")
    # Then the visitor is told the connection was lost
    page.get_by_text("The connection was lost").wait_for()

    # When Escape is pressed, the panel closes and focus returns to the launcher
    question.press("Escape")
    launcher = page.get_by_role("button", name="Chat with us")
    assert page.get_by_role("dialog").count() == 0
    assert launcher.get_attribute("aria-expanded") == "false"
    assert launcher.evaluate("e => e.getRootNode().activeElement === e")
    # and the dark theme applies
    assert launcher.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(122, 162, 255)"
