"""The local Lambda runtime's costs: each function's cold start, and the per-invocation overhead of a warm worker.

    python -m bench.local_runtime              # every function of template.yaml, 300 warm invocations
    python -m bench.local_runtime --invocations 1000

Deploys template.yaml into an in-process moto (no database is touched: a cold start only imports the
Handler), starts one worker per function and prints how long it took until the worker could take its
first invocation (the process start plus the Handler's import). Then it invokes a function whose Handler
is `operator.is_` (it returns at once) through a warm worker and prints the round trip, which is the
runtime's whole overhead per invocation, next to calling the same Handler in this process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import operator
import statistics
import time

from threadline.local.cloud import LocalCloud
from threadline.local.moto_server import start_moto
from threadline.local.runtime import LambdaRuntime, Worker, lambda_environment


def _quiet(_function: str, _line: str) -> None:
    return None


def main(argv: list[str] | None = None) -> None:
    """Print the cold start of every function and the warm per-invocation overhead."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invocations", type=int, default=300)
    args = parser.parse_args(argv)
    server, endpoint = start_moto()
    cloud = LocalCloud.start(endpoint, parameters={"DatabaseUrl": "postgresql://bench@127.0.0.1:9/unused"})
    try:
        print("cold start (process start + Handler import), ms")
        for spec in sorted(cloud.runtime.specs.values(), key=lambda s: s.logical_id):
            if spec.handler.endswith(".sh"):  # ChatFunction: the Web Adapter starts it (local/web_adapter.py)
                continue
            started = time.perf_counter()
            worker = Worker(spec, lambda_environment(spec, cloud.runtime.pinned), _quiet)
            total = (time.perf_counter() - started) * 1000
            print(f"  {spec.logical_id:32s} {total:8.0f}  (import {worker.worker_init_ms:.0f})")
            worker.close()

        probe = dataclasses.replace(next(iter(cloud.runtime.specs.values())), handler="operator.is_")
        runtime = LambdaRuntime(max_workers=1, log=_quiet)
        runtime.register(probe)
        runtime.set_pinned(cloud.runtime.pinned)
        runtime.invoke(probe.arn, b"{}")  # the cold start
        event = json.dumps({"Records": [{"body": "x" * 200}]})
        rounds = []
        for _ in range(args.invocations):
            started = time.perf_counter()
            runtime.invoke(probe.arn, event)
            rounds.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        for _ in range(args.invocations):
            operator.is_(json.loads(event), None)
        in_process = (time.perf_counter() - started) * 1000 / args.invocations
        runtime.close()
        rounds.sort()
        print(
            f"warm invocation through a worker: p50 {statistics.median(rounds):.2f} ms, "
            f"p95 {rounds[int(len(rounds) * 0.95)]:.2f} ms; in process: {in_process:.4f} ms"
        )
    finally:
        cloud.close()
        server.stop()


if __name__ == "__main__":
    main()
