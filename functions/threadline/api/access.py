"""Who may call which route: the one place where a key's scope, origin and rate are checked.

Every entry point authenticates through `authorize`: the /query/v1 routes (X-API-KEY, api/deps.py), the
OpenAI-compatible /v1 routes and /mcp (Bearer). An admin key reaches every route of its project. A widget key
reaches only the routes of `WIDGET_ROUTES`, so a route added later is forbidden to widget keys until it is
listed here (tests/integration/web/test_widget_keys.py walks every route of the app).
"""

from __future__ import annotations

import ipaddress
import json

from starlette.requests import Request

from threadline.bootstrap import Container
from threadline.domain.access import check_origin, enforce_rate, widget_limits
from threadline.domain.errors import Forbidden
from threadline.domain.tenancy import Principal, authenticate
from threadline.settings import Settings

# (method, route path) that a widget key may call: a browser chat and nothing else. Reading and following up a
# thread, and rating its answers, are further limited to the threads the same key started (the routes pass the
# key to the chat service).
WIDGET_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/query/v1/me/"),
        ("POST", "/query/v1/projects/{project_id}/chat/"),
        ("POST", "/query/v1/projects/{project_id}/chat/stream/"),
        ("POST", "/query/v1/threads/{thread_id}/chat/"),
        ("POST", "/query/v1/threads/{thread_id}/chat/stream/"),
        ("GET", "/query/v1/threads/{thread_id}/"),
        ("POST", "/query/v1/answers/{question_answer_id}/feedback/"),
    }
)


def route_path(request: Request) -> str:
    """The matched route's path template (`/query/v1/threads/{thread_id}/`), else the raw path."""
    path = getattr(request.scope.get("route"), "path", None)
    return path if isinstance(path, str) else request.url.path


def client_ip(request: Request, settings: Settings) -> str:
    """The caller's address, as the trusted proxy in front of the app reports it.

    - Under the Lambda Web Adapter (ChatFunction, `AWS_LWA_PORT` set): every connection comes from the adapter
      on 127.0.0.1; it copies the Function URL event's requestContext into `x-amzn-request-context` (replacing
      any header of that name the client sent), whose `http.sourceIp` is the address the Function URL saw.
    - Under Mangum (ApiFunction behind the HTTP API): Mangum sets the ASGI client to the event's
      `requestContext.http.sourceIp`, the address API Gateway saw.
    - Locally: the socket peer (the local servers do not read X-Forwarded-For).
    X-Forwarded-For is never read: its first entries are whatever the client wrote.
    """
    if settings.aws_lwa_port is not None and (context := request.headers.get("x-amzn-request-context")):
        try:
            source = json.loads(context)["http"]["sourceIp"]
            return str(ipaddress.ip_address(source))
        except (ValueError, KeyError, TypeError):
            pass
    return request.client.host if request.client else "unknown"


def authorize(container: Container, request: Request, key: str | None) -> Principal:
    """Authenticate the key, then hold a widget key to its routes, its origins and its rate (blocking: run it in
    the threadpool). Unauthorized, Forbidden or RateLimited otherwise."""
    principal = authenticate(container.tenancy, key)
    if not principal.is_widget:
        return principal
    if (request.method, route_path(request)) not in WIDGET_ROUTES:
        raise Forbidden(
            "widget keys may only chat, read their own threads and rate answers; use an admin key for this route",
            scope=principal.scope,
        )
    check_origin(principal, request.headers.get("origin"))
    settings = container.settings
    limits = widget_limits(
        principal, client_ip(request, settings), settings.widget_rate_per_key, settings.widget_rate_per_ip
    )
    enforce_rate(container.rate_counter, limits)
    return principal
