"""What the OpenAI-compatible API and the MCP server add to a request, against the plain /query/v1 routes.

One app on uvicorn (its own process) over a fresh database with a few documents, and the OpenAI-protocol stub
as its model (another process). Requests alternate, one at a time:
  - time to the first answer text: `/query/v1/.../chat/stream/` (first `token` event) against
    `/v1/chat/completions` with `stream: true` (first chunk with content), each a new thread;
  - a round trip that only authenticates and reads: `GET /query/v1/me/` against an MCP `tools/list`
    (authentication, the project's MCP settings, an SDK server built for the request) and an MCP
    `search_documents` call (one embedding and one retrieval).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable

import httpx
from httpx_sse import connect_sse

from bench.chat import _serve_llm, _wait
from bench.labelling_support import REPO_ROOT, bench_database, bench_settings, percentile
from threadline.bootstrap import Container
from threadline.domain import documents, tenancy
from threadline.settings import Settings

QUESTIONS = [
    "How long do refunds take?",
    "When are invoices sent?",
    "Where do orders ship from?",
    "How fast is express delivery?",
]
DOCUMENTS = {
    "Billing": "# Billing\n\n## Refunds\n\nRefunds are paid within five business days.\n\n"
    "## Invoices\n\nInvoices are emailed on the first day of every month.\n",
    "Shipping": "# Shipping\n\nOrders ship from Rotterdam. Express delivery to Germany takes one day.\n",
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _serve_app(url: str, llm_url: str, port: int) -> None:
    import uvicorn

    from threadline.api.app import create_app

    settings = Settings(
        database_url=url,
        openai_base_url=llm_url,
        openai_api_key="bench",
        llm_model="bench",
        embedding_tokenizer_path=REPO_ROOT / "layers" / "model" / "tokenizer.json",
    )
    container = Container(settings)
    container.query_embedder.embed(["warm up"])
    uvicorn.run(create_app(container), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _first_token(client: httpx.Client, path: str, body: dict[str, object], headers: dict[str, str]) -> float:
    started = time.perf_counter()
    # A copy: connect_sse sets Accept on the dict it is given.
    with connect_sse(client, "POST", path, json=body, headers=dict(headers)) as source:
        first: float | None = None
        for event in source.iter_sse():
            if first is not None or event.data == "[DONE]":
                continue
            data = json.loads(event.data)
            if "error" in data:
                raise RuntimeError(event.data)
            text = data.get("text") if event.event == "token" else None
            choices = data.get("choices") or [{}]
            if text or choices[0].get("delta", {}).get("content"):
                first = (time.perf_counter() - started) * 1000
    if first is None:
        raise RuntimeError(f"no answer text from {path}")
    return first


def _round_trip(call: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200 or '"error"' in response.text[:200]:
        raise RuntimeError(response.text[:300])
    return elapsed


def _rpc(method: str, params: dict[str, object]) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def main(argv: list[str] | None = None) -> None:
    """Print p50/p95 of each measure and the ratios against the plain routes."""
    parser = argparse.ArgumentParser(prog="python -m bench.reach", description=__doc__)
    parser.add_argument("--requests", type=int, default=100, help="timed requests per measure")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    from threadline.local.moto_server import free_port

    context = multiprocessing.get_context("spawn")
    times: dict[str, list[float]] = {}
    with bench_database() as url:
        container = Container(bench_settings(url))
        team = tenancy.create_team(container.tenancy, "bench")
        project = tenancy.create_project(container.tenancy, team.id, "reach")
        key = tenancy.issue_api_key(container.tenancy, project.id).key
        for title, text in DOCUMENTS.items():
            upload = documents.Upload(text.encode(), f"{title}.md", title=title)
            documents.ingest(container.documents, container.embedder, project.id, upload)
        llm_port, app_port = free_port(), free_port()
        processes = [
            context.Process(target=_serve_llm, args=(llm_port,), daemon=True),
            context.Process(target=_serve_app, args=(url, f"http://127.0.0.1:{llm_port}/v1", app_port), daemon=True),
        ]
        for process in processes:
            process.start()
        try:
            _wait(f"http://127.0.0.1:{app_port}/health")
            with httpx.Client(base_url=f"http://127.0.0.1:{app_port}", timeout=30) as client:
                key_header = {"X-API-KEY": key}
                bearer = {"Authorization": f"Bearer {key}", **MCP_HEADERS}
                search = _rpc("tools/call", {"name": "search_documents", "arguments": {"query": "refunds"}})
                measures: dict[str, Callable[[int], float]] = {
                    "chat stream, first token": lambda i: _first_token(
                        client, f"/query/v1/projects/{project.id}/chat/stream/", {"query": QUESTIONS[i % 4]}, key_header
                    ),
                    "openai stream, first token": lambda i: _first_token(
                        client,
                        "/v1/chat/completions",
                        {
                            "model": "threadline",
                            "stream": True,
                            "messages": [{"role": "user", "content": QUESTIONS[i % 4]}],
                        },
                        bearer,
                    ),
                    "GET /query/v1/me/": lambda _: _round_trip(lambda: client.get("/query/v1/me/", headers=key_header)),
                    "MCP tools/list": lambda _: _round_trip(
                        lambda: client.post("/mcp", json=_rpc("tools/list", {}), headers=bearer)
                    ),
                    "MCP search_documents": lambda _: _round_trip(
                        lambda: client.post("/mcp", json=search, headers=bearer)
                    ),
                }
                for i in range(args.warmup + args.requests):
                    for name, measure in measures.items():
                        value = measure(i)
                        if i >= args.warmup:
                            times.setdefault(name, []).append(value)
        finally:
            for process in processes:
                process.terminate()
                process.join(10)
            container.close()
    print(f"{args.requests} requests per measure, alternating, one at a time (ms):")
    for name, values in times.items():
        print(
            f"  {name:28s} p50 {percentile(values, 50):6.1f}  p95 {percentile(values, 95):6.1f}"
            f"  mean {statistics.fmean(values):6.1f}"
        )
    ratio = percentile(times["openai stream, first token"], 50) / percentile(times["chat stream, first token"], 50)
    overhead = percentile(times["MCP tools/list"], 50) - percentile(times["GET /query/v1/me/"], 50)
    print(f"  openai/chat first-token ratio (p50): {ratio:.3f}")
    print(f"  MCP tools/list minus GET /me/ (p50): {overhead:.1f} ms   (settings read + SDK server per request)")


if __name__ == "__main__":
    main()
