"""The client address behind each entry point, and the console origins of the local stack."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from threadline.api.access import client_ip
from threadline.local.dev import console_origins
from threadline.settings import Settings

pytestmark = pytest.mark.unit


def _request(headers: dict[str, str], peer: str = "127.0.0.1") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "client": (peer, 5000)})


def _context(source_ip: str) -> str:
    return json.dumps({"http": {"method": "GET", "sourceIp": source_ip}})


def test_under_the_web_adapter_the_address_is_the_function_urls_source_ip() -> None:
    # Given ChatFunction's settings (AWS_LWA_PORT set) and a request the adapter forwarded from 127.0.0.1
    settings = Settings(aws_lwa_port=8080)
    forwarded = _request({"x-amzn-request-context": _context("203.0.113.7"), "x-forwarded-for": "10.0.0.1"})
    # Then the address is the request context's sourceIp, never X-Forwarded-For's first entry
    assert client_ip(forwarded, settings) == "203.0.113.7"
    # And a context that is not JSON or not an address falls back to the socket peer
    assert client_ip(_request({"x-amzn-request-context": "{"}), settings) == "127.0.0.1"
    assert client_ip(_request({"x-amzn-request-context": _context("me; DROP")}), settings) == "127.0.0.1"


def test_elsewhere_the_address_is_the_asgi_client_and_the_context_header_is_ignored() -> None:
    # Given ApiFunction's settings (Mangum puts the HTTP API's sourceIp in the ASGI client) or the local stack
    settings = Settings()
    spoofed = _request({"x-amzn-request-context": _context("198.51.100.1")}, peer="192.0.2.4")
    # Then a header a client wrote changes nothing
    assert client_ip(spoofed, settings) == "192.0.2.4"


def test_the_local_stack_adds_its_own_console_origin_to_the_configured_ones() -> None:
    # When the stack serves on port 8000 with one configured origin (and a duplicate of its own)
    origins = console_origins("http://127.0.0.1:8000", "https://console.example.com, http://localhost:8000")
    # Then both names of its own origin are added once, after the configured ones
    assert origins.split(",") == ["https://console.example.com", "http://localhost:8000", "http://127.0.0.1:8000"]
