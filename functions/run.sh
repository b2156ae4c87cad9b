#!/bin/bash
# ChatFunction's handler under the Lambda Web Adapter: serve the FastAPI app with uvicorn on $PORT.
# The adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) waits for /health, then streams each Function URL
# request through it (AWS_LWA_INVOKE_MODE=response_stream), so Server-Sent Events reach the client as written.
set -euo pipefail
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT:-/var/task}${PYTHONPATH:+:$PYTHONPATH}"
# --http httptools: uvicorn's C parser and writer rather than h11 (named, so a layer without it fails the
# package check and the start, instead of falling back quietly to the slower one; see pyproject.toml).
exec python3 -m uvicorn --factory threadline.api.app:create_app --http httptools \
  --host 127.0.0.1 --port "${PORT:-8080}" --no-access-log --timeout-keep-alive 75 --no-proxy-headers
