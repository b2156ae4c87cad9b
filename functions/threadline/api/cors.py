"""CORS for the widget and the console, answered by the app itself on every entry point.

Neither the Function URL nor the HTTP API configures CORS (template.yaml): their static lists cannot know the
origins that customers put on their widget keys, and with CORS configured they would answer preflights
themselves. So every OPTIONS request reaches the app, and this middleware decides:

- an Origin is allowed when it is one of CONSOLE_ORIGINS or listed on an active widget key (a preflight
  carries no key, so any widget key's origin is enough for the browser to send the real request, which
  `api/access.py` then checks against the key it carries);
- an allowed preflight gets 204 with the origin echoed back (never `*`), the methods, the headers the widget
  and console send, and a Max-Age; a refused one gets 403 with no CORS headers, so the browser stops;
- a real request from an allowed origin gets the origin echoed and `Retry-After` exposed.
No `Access-Control-Allow-Credentials`: keys travel in a header, never in cookies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline.api.errors import error_body
from threadline.bootstrap import Container
from threadline.domain.errors import InvalidInput
from threadline.domain.tenancy import normalise_origin

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "x-api-key, content-type, last-event-id"
EXPOSE_HEADERS = "retry-after"
# How long a browser may reuse a preflight's answer, and how long this process trusts its own lookup of an
# origin: a revoked widget key's origin stops passing preflights within a minute (its requests stop at once:
# they carry the key).
MAX_AGE_S = 600
ORIGIN_CACHE_S = 60.0
_CACHE_ENTRIES = 1024


def parse_origins(setting: str) -> frozenset[str]:
    """CONSOLE_ORIGINS (comma-separated) as normalised origins; a malformed entry is a configuration error."""
    return frozenset(normalise_origin(o) for o in setting.split(",") if o.strip())


class OriginPolicy:
    """Which origins may call the API from a browser: fixed console origins, and widget keys' origins looked
    up in the database and remembered for ORIGIN_CACHE_S per process."""

    def __init__(
        self,
        console: frozenset[str],
        listed_on_widget_key: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self._listed = listed_on_widget_key
        self._clock = clock
        self._cache: dict[str, tuple[bool, float]] = {}

    def allows(self, origin: str) -> bool:
        """True for a console origin or an active widget key's origin (blocking: one indexed lookup a minute)."""
        try:
            normalised = normalise_origin(origin)
        except InvalidInput:
            return False
        if normalised != origin.lower():
            return False  # browsers send the origin already normalised; anything else is not a browser's Origin
        if normalised in self.console:
            return True
        now = self._clock()
        cached = self._cache.get(normalised)
        if cached is not None and cached[1] > now:
            return cached[0]
        listed = self._listed(normalised)
        if len(self._cache) >= _CACHE_ENTRIES:
            self._cache.clear()  # bounded: the cache holds recent origins, not every Origin anyone sent
        self._cache[normalised] = (listed, now + ORIGIN_CACHE_S)
        return listed


class CorsMiddleware:
    """Pure ASGI (streamed answers pass through untouched): preflights answered here, origins echoed on the rest."""

    def __init__(self, app: ASGIApp, container: Container) -> None:
        self.app = app
        self._container = container
        self._policy: OriginPolicy | None = None

    @property
    def policy(self) -> OriginPolicy:
        """Built on the first request, so that building the app reads no settings and opens no connection."""
        if self._policy is None:
            container = self._container
            self._policy = OriginPolicy(
                parse_origins(container.settings.console_origins), container.tenancy.origin_on_widget_key
            )
        return self._policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = await run_in_threadpool(self.policy.allows, origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, allowed, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers["Access-Control-Allow-Origin"] = origin
                response_headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                response_headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(origin: str, allowed: bool, send: Send) -> None:
        if allowed:
            status, body = 204, b""
            raw = {
                "access-control-allow-origin": origin,
                "access-control-allow-methods": ALLOW_METHODS,
                "access-control-allow-headers": ALLOW_HEADERS,
                "access-control-expose-headers": EXPOSE_HEADERS,
                "access-control-max-age": str(MAX_AGE_S),
                "vary": "Origin",
            }
        else:
            status = 403
            body = json.dumps(
                error_body("forbidden", "this origin may not call the API from a browser", {"origin": origin})
            ).encode()
            raw = {"content-type": "application/json", "content-length": str(len(body)), "vary": "Origin"}
        encoded = [(k.encode(), v.encode()) for k, v in raw.items()]
        await send({"type": "http.response.start", "status": status, "headers": encoded})
        await send({"type": "http.response.body", "body": body})
