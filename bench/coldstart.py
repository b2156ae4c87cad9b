"""Cold start of every function in template.yaml, beside an empty Powertools handler, in one run.

Each function runs in a fresh Python process, as a new Lambda execution environment does:
  import  the handler module (for ChatFunction, whose Handler is run.sh: the app module and the
          `create_app()` factory uvicorn calls before its first request);
  model   the embedding model, for the functions that embed, loaded once per environment outside the
          handler (it is the same `Container.embedder` every invocation then reuses);
  first   the first invocation with the sample event of events/ (ids that exist nowhere, so it runs
          the real path to the database and the AWS endpoint and ends with "not found" or a reported
          batch failure: the outcome column says which); for ChatFunction, the web adapter's readiness
          check and a streamed follow-up to the API's sample thread with its key (refused: no such key).
The baseline is an empty handler with Powertools' Logger, Tracer, Metrics and BatchProcessor as Powertools'
documentation writes it (`Tracer()`, which patches every library X-Ray can trace when it is created); the
ratio columns divide by its import time and by its whole cold start (import + first invocation; a function's
total adds its model load). A second row shows the same handler with `Tracer(auto_patch=False)`, the floor
under a function that patches nothing up front (threadline/observability.py). A database (embedded Postgres,
or BENCH_DATABASE_URL's server) and an in-process moto server stand in for RDS and AWS.

Each child runs in Lambda's environment as the template deploys it: LAMBDA_TASK_ROOT and the other reserved
variables, and tracing on (`Tracing: Active`). Both decide what the imports cost: Powertools enables the
Tracer only where LAMBDA_TASK_ROOT is set, and the X-Ray SDK outside Lambda builds a botocore client for its
sampler at import (~0.3 s here), which Lambda never does. The X-Ray daemon is a UDP socket of this process;
each child gets a sampled trace header (`_X_AMZN_TRACE_ID`, which the SDK reads when an invocation starts),
and the documents the daemon received are counted. Target: every import <= 300 ms on a free machine. With
--no-bytecode every process compiles what it imports, as a Lambda environment does (the layers and the code
ship no .pyc: docs/architecture.md, "The layer ships no bytecode").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS = REPO_ROOT / "events"
# The sample event each function's first invocation gets.
EVENT_OF = {
    "ApiFunction": "apigw/get_thread.json",
    "IngestFunction": "sqs/document_uploaded.json",
    "BackfillPlanFunction": "stepfunctions/backfill_plan.json",
    "BackfillClassifyRangeFunction": "stepfunctions/backfill_classify_range.json",
    "BackfillSummarizeFunction": "stepfunctions/backfill_summarize_caught.json",
    "ClassifierFunction": "sqs/classify_thread.json",
    "MetricsFunction": "sqs/measure_interaction.json",
    "ImportFunction": "sqs/import_chunk.json",
    "ReportFunction": "schedule/report_tick.json",
    "SweeperFunction": "schedule/sweep_tick.json",
    # Migrations already applied to the bench's database; the answer to CloudFormation is refused (port 9).
    "MigrateFunction": "cloudformation/migrate_update.json",
}
# Functions whose work embeds text: their model load is timed on its own.
EMBEDS = {"ApiFunction", "ChatFunction", "IngestFunction", "BackfillClassifyRangeFunction", "ClassifierFunction"}
BASELINE = "(empty Powertools handler)"
FLOOR = "(same, Tracer patching nothing)"

_BASELINE_MODULE = """
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

logger = Logger(service="baseline")
tracer = Tracer(service="baseline", auto_patch=AUTO_PATCH)
metrics = Metrics(namespace="Baseline", service="baseline")
processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event, context):
    return {"batchItemFailures": []}
"""


class _Context:
    """The Lambda context attributes Powertools reads (the local cloud's own class imports moto)."""

    function_name = "coldstart"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:coldstart"
    memory_limit_in_mb = 1024
    function_version = "$LATEST"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/coldstart"
    log_stream_name = "coldstart"

    def get_remaining_time_in_millis(self) -> int:
        """Plenty: the benchmark never runs into a timeout."""
        return 30_000


def child(function: str, handler: str) -> dict[str, Any]:
    """In a fresh process: import, model load and first invocation of one function, in milliseconds."""
    figures: dict[str, Any] = {}
    started = time.perf_counter()
    if function in (BASELINE, FLOOR):
        namespace: dict[str, Any] = {"AUTO_PATCH": function == BASELINE}
        exec(compile(_BASELINE_MODULE, "baseline_handler", "exec"), namespace)
        entry = namespace["lambda_handler"]
    elif handler == "run.sh":
        from threadline.api.app import create_app

        app = create_app()
    else:
        import importlib

        module_name, _, attribute = handler.rpartition(".")
        entry = getattr(importlib.import_module(module_name), attribute)
    figures["import_ms"] = (time.perf_counter() - started) * 1000
    if function in EMBEDS:
        from threadline.bootstrap import get_container

        started = time.perf_counter()
        get_container().embedder.embed(["warm up"])
        figures["model_ms"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    try:
        if handler == "run.sh":
            from starlette.testclient import TestClient

            # What the web adapter sends a new environment: its readiness check, then the invocation (a follow-up
            # with the sample thread, streamed: it loads the chat routes, api/routing.py, and ends at the key).
            client = TestClient(app)
            started = time.perf_counter()
            client.get("/health").raise_for_status()
            event = json.loads((EVENTS / EVENT_OF["ApiFunction"]).read_text())
            client.post(f"{event['rawPath']}chat/stream/", headers=event["headers"], json={"question": "Hello?"})
        elif function in (BASELINE, FLOOR):
            entry(json.loads((EVENTS / "sqs/measure_interaction.json").read_text()), _Context())
        else:
            entry(json.loads((EVENTS / EVENT_OF[function]).read_text()), _Context())
        figures["outcome"] = "ok"
    except Exception as exc:  # the outcome is reported, not raised: timing is what is measured
        figures["outcome"] = type(exc).__name__
    figures["first_ms"] = (time.perf_counter() - started) * 1000
    return figures


def functions() -> tuple[dict[str, str], set[str]]:
    """Logical id -> Handler of every function in template.yaml, and those it deploys with X-Ray tracing on
    (their own Tracing, else the Globals')."""
    from threadline.local.template import load_sam

    template = load_sam(REPO_ROOT / "template.yaml")
    default = template.get("Globals", {}).get("Function", {}).get("Tracing", "PassThrough")
    deployed = {
        n: r["Properties"] for n, r in template["Resources"].items() if r.get("Type") == "AWS::Serverless::Function"
    }
    return (
        {name: str(props["Handler"]) for name, props in deployed.items()},
        {name for name, props in deployed.items() if props.get("Tracing", default) == "Active"},
    )


def _run_child(function: str, handler: str, env: dict[str, str], no_bytecode: Path | None = None) -> dict[str, Any]:
    # `no_bytecode`: an empty directory as the bytecode cache, never written (-B), so the child compiles every
    # module it imports, as a Lambda environment compiles our layer and code (they ship no .pyc).
    python = [sys.executable] if no_bytecode is None else [sys.executable, "-B", "-X", f"pycache_prefix={no_bytecode}"]
    out = subprocess.run(
        [*python, "-m", "bench.coldstart", "--child", function, handler],
        # As Lambda names each environment's function (threadline/startup.py reads it).
        env=env | {"AWS_LAMBDA_FUNCTION_NAME": function},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> None:
    """Print import, model and first-invocation times of every function against the baseline."""
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per function (median)")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="every process compiles what it imports, as Lambda does with our bytecode-free layer (here the "
        "standard library too, so absolute times are an upper bound; the ratios compare like with like)",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="FUNCTION", help="these functions of template.yaml only (beside the baseline)"
    )
    parser.add_argument("--child", nargs=2, metavar=("FUNCTION", "HANDLER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    targets, traced_functions = functions()
    if unknown := sorted(set(args.only or ()) - set(targets)):
        parser.error(f"--only: not functions of template.yaml: {unknown}")
    chosen = {name: handler for name, handler in targets.items() if not args.only or name in args.only}
    # Here, not at the top: a child runs this module too, and must start with nothing imported but the standard
    # library, as a Lambda environment does (labelling_support brought pydantic, psycopg and threadline's
    # bootstrap into every child before its clock started, and out of the import it timed).
    from moto.server import ThreadedMotoServer

    from bench.labelling_support import bench_database
    from threadline.local.xray import XRayDaemon

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    daemon = XRayDaemon()
    traced = traced_functions | {BASELINE, FLOOR}
    try:
        with bench_database() as url:
            env = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"} | {
                # Lambda's reserved variables that change what a function does at import (see the docstring).
                "LAMBDA_TASK_ROOT": str(REPO_ROOT / "functions"),
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
                "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                "DATABASE_URL": url,
                "AWS_ENDPOINT_URL": f"http://{host}:{port}",
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
                "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT)]),
                "POWERTOOLS_METRICS_NAMESPACE": "Threadline",
                "POWERTOOLS_LOG_LEVEL": "ERROR",
            }
            with tempfile.TemporaryDirectory(prefix="coldstart-pycache-") as empty:
                no_bytecode = Path(empty) if args.no_bytecode else None
                _report({BASELINE: "-", FLOOR: "-"} | chosen, env, traced, args.rounds, no_bytecode)
    finally:
        moto.stop()
        daemon.close()
    documents = daemon.documents()
    print(f"X-Ray daemon: {len(documents)} documents received, {len({d.get('trace_id') for d in documents})} traces")


def _report(
    targets: dict[str, str], env: dict[str, str], traced: set[str], rounds: int, no_bytecode: Path | None
) -> None:
    from threadline.local.xray import trace_header

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for _ in range(rounds):  # rounds alternate between functions, so a busy moment hits all of them
        for name, handler in targets.items():
            # The invocation's trace header, as Lambda's runtime sets it (read when the invocation starts).
            tracing = (
                {"_X_AMZN_TRACE_ID": trace_header(sampled=True)}
                if name in traced
                else {"POWERTOOLS_TRACE_DISABLED": "true"}
            )
            runs[name].append(_run_child(name, handler, env | tracing, no_bytecode))

    def median(name: str, key: str) -> float | None:
        values = sorted(r[key] for r in runs[name] if key in r)
        return values[len(values) // 2] if values else None

    base_import, base_first = median(BASELINE, "import_ms"), median(BASELINE, "first_ms")
    assert base_import is not None and base_first is not None
    base_total = base_import + base_first
    compiled = ", every module compiled on import (no bytecode)" if no_bytecode else ""
    print(
        f"median of {rounds} fresh processes each{compiled}, in Lambda's environment with tracing as the template"
        " sets it; x = times the empty Powertools handler's figure"
    )
    print(
        f"{'function':<32} {'import ms':>9} {'x':>5} {'model ms':>9} {'first ms':>9} {'total ms':>9} {'x':>5}  outcome"
    )
    for name in targets:
        imp, first, model = median(name, "import_ms"), median(name, "first_ms"), median(name, "model_ms")
        assert imp is not None and first is not None
        total = imp + first + (model or 0.0)
        model_text = f"{model:>9.0f}" if model is not None else f"{'-':>9}"
        print(
            f"{name:<32} {imp:>9.0f} {imp / base_import:>5.1f} {model_text} {first:>9.0f} {total:>9.0f}"
            f" {total / base_total:>5.1f}  {runs[name][-1]['outcome']}",
            flush=True,
        )
    print("target: every import <= 300 ms on a free machine (the baseline's ratio is what a busy one keeps)")


if __name__ == "__main__":
    main()
