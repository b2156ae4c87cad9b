"""Routers, one module per resource, each imported by the first request for one of its paths.

`ROUTES` names every router module's paths as its routes declare them, so the app can tell which module serves
a request without importing any (api/routing.py, `LazyRouters`). tests/unit/test_routing.py checks the table
against the modules: a route a module adds without its path here fails there.
"""

from __future__ import annotations

API = "/query/v1"
PROJECT = f"{API}/projects/{{project_id}}"

# Module of this package -> the paths of its routes, in the order the app's table holds them. Two modules share
# paths (thread_labels and chat, by method), and the first route that matches a path answers a method neither
# takes: `PUT /query/v1/threads/{id}/` gets the labels route's 405, as it did when the app mounted them all.
ROUTES: dict[str, tuple[str, ...]] = {
    "health": ("/health", "/ready"),
    "keys": (f"{API}/me/", f"{PROJECT}/", f"{PROJECT}/api-keys/", f"{PROJECT}/api-keys/{{key_id}}/"),
    "documents": (f"{PROJECT}/documents/", f"{PROJECT}/documents/{{document_id}}/"),
    "categories": (f"{PROJECT}/categories/", f"{PROJECT}/categories/{{category_id}}/"),
    "thread_labels": (f"{PROJECT}/threads/", f"{API}/threads/{{thread_id}}/"),
    "alerts": (
        f"{API}/answers/{{question_answer_id}}/",
        f"{PROJECT}/alert-rules/",
        f"{PROJECT}/alert-rules/{{rule_id}}/",
        f"{PROJECT}/alerts/",
        f"{PROJECT}/metrics/",
    ),
    "imports": (f"{PROJECT}/interactions/import/", f"{PROJECT}/interactions/import/{{job_id}}/"),
    "backfills": (f"{PROJECT}/backfills/", f"{PROJECT}/backfills/{{backfill_id}}/"),
    "chat": (
        f"{PROJECT}/chat/",
        f"{PROJECT}/chat/stream/",
        f"{PROJECT}/threads/",
        f"{API}/threads/{{thread_id}}/",
        f"{API}/threads/{{thread_id}}/chat/",
        f"{API}/threads/{{thread_id}}/chat/stream/",
    ),
    "feedback": (f"{API}/answers/{{question_answer_id}}/feedback/",),
    "analytics": (f"{PROJECT}/analytics/",),
    "report_settings": (f"{API}/team/report-settings/", f"{API}/team/report-settings/preview/"),
    "mcp_settings": (f"{PROJECT}/mcp-settings/",),
    # /v1: the OpenAI-compatible API.
    "openai_compat": ("/v1/chat/completions", "/v1/models", "/v1/models/{model}"),
}
