"""`threadline invoke FUNCTION -e EVENT.json`: what `sam local invoke` does, without Docker.

The function runs once in a fresh worker process (local/runtime.py) with exactly its environment from
the template (resolved against the local endpoints) plus the endpoint, region and credentials; its Timeout
and MemorySize are enforced and the 6 MB request/response limits checked. Two code sources:

- the packaged artifact (`--package build/package`, the default when its manifest exists): the code and
  layers exactly as `make package` laid them out for Lambda, run by `python3.12`, /opt mapped to the
  unzipped layers;
- the source (`--source`): functions/ and the layers' folders, run by this virtual environment's Python
  (the same runtime the local cloud uses).

The response goes to stdout as JSON; the function's logs and Lambda's START/END/REPORT lines to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from threadline.local.cloud import REPO_ROOT, TEMPLATE
from threadline.local.deploy import deploy
from threadline.local.deployment import Deployment
from threadline.local.invoke import spec_for
from threadline.local.runtime import FunctionSpec, Invocation, LambdaRuntime, RequestTooLarge

DEFAULT_PACKAGE = REPO_ROOT / "build" / "package"


@dataclass(frozen=True)
class InvokeOptions:
    """Where the function comes from and where its AWS is."""

    function: str
    event_path: Path | None  # None: an empty event ({})
    endpoint: str
    database_url: str
    package: Path | None = None  # None: from source
    template: Path = TEMPLATE
    region: str = "us-east-1"
    stack_name: str = "threadline"


def default_package() -> Path | None:
    """build/package when `make package` has written its manifest, else None (run from source)."""
    return DEFAULT_PACKAGE if (DEFAULT_PACKAGE / "manifest.json").is_file() else None


def interpreter(version: str = "3.12") -> str:
    """An interpreter of Lambda's Python version: $LAMBDA_PYTHON, a working python3.12 on PATH, or a pyenv
    install (the same lookup as `make package`'s checks). A pyenv shim exists on PATH even when that version
    is not selected, so only an interpreter that really runs counts."""
    candidates = [os.environ.get("LAMBDA_PYTHON", ""), shutil.which(f"python{version}") or ""]
    pyenv = Path("~/.pyenv/versions").expanduser()
    candidates += sorted((str(p) for p in pyenv.glob(f"{version}*/bin/python{version}")), reverse=True)
    for candidate in filter(None, candidates):
        found = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, timeout=60
        )
        if found.returncode == 0:
            return found.stdout.strip()
    raise SystemExit(f"no python{version} found (set LAMBDA_PYTHON): the packaged artifact is built for it")


def packaged_spec(spec: FunctionSpec, package: Path, python: str = "") -> FunctionSpec:
    """The function as the artifact holds it: its code and layer folders from the manifest, run by `python`."""
    manifest = json.loads((package / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["functions"].get(spec.logical_id)
    if entry is None:
        raise SystemExit(f"{spec.logical_id} is not in {package / 'manifest.json'} (run `make package`)")
    return replace(
        spec,
        handler=entry["handler"],
        timeout_s=int(entry["timeout_s"]),
        memory_mb=int(entry["memory_mb"]),
        code_dir=package / entry["code"],
        layer_dirs=tuple(package / layer for layer in entry["layers"]),
        external_layers=tuple(entry.get("external_layers", ())),
        python=python or interpreter(),
    )


def resolve(options: InvokeOptions, deployment: Deployment | None = None) -> tuple[Deployment, FunctionSpec]:
    """The function's spec, its environment resolved against the endpoint's resources (deployed if not given)."""
    deployment = deployment or deploy(
        options.template,
        options.endpoint,
        parameters={"DatabaseUrl": options.database_url},
        region=options.region,
        stack_name=options.stack_name,
    )
    spec = spec_for(deployment.function(options.function), deployment.region)
    if options.package is not None:
        spec = packaged_spec(spec, options.package)
    return deployment, spec


def invoke_once(
    options: InvokeOptions, *, logs: TextIO = sys.stderr, deployment: Deployment | None = None
) -> Invocation:
    """Run the function once in a fresh worker and return its result (raises RequestTooLarge)."""
    deployment, spec = resolve(options, deployment)

    def log(_function: str, line: str) -> None:
        logs.write(line + "\n")
        logs.flush()

    runtime = LambdaRuntime(max_workers=1, log=log)
    runtime.register(spec)
    runtime.set_pinned(
        {
            "AWS_ENDPOINT_URL": deployment.endpoint,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "DATABASE_URL": options.database_url,
        }
    )
    event = options.event_path.read_bytes() if options.event_path else b"{}"
    try:
        return runtime.invoke(spec.arn, event)
    finally:
        runtime.close()


def run(
    options: InvokeOptions,
    *,
    out: TextIO = sys.stdout,
    logs: TextIO = sys.stderr,
    deployment: Deployment | None = None,
) -> int:
    """The command: the response on `out`, logs on `logs`; 1 on a function error or a refused event."""
    try:
        result = invoke_once(options, logs=logs, deployment=deployment)
    except RequestTooLarge as exc:
        logs.write(json.dumps({"errorType": "RequestEntityTooLargeException", "errorMessage": str(exc)}) + "\n")
        return 1
    out.write(json.dumps(result.payload) + "\n")
    out.flush()
    return 1 if result.errored else 0
