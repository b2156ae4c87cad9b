# Over 350 lines: the runtime, its workers and their limits (timeout, memory, payload) share the pool's state and lock.
"""The local Lambda runtime: each function runs in its own worker processes, with only its own environment.

A worker (local/worker.py) is one execution environment: started with exactly what Lambda would give the
function (its template environment, Lambda's reserved variables, the local cloud's endpoint and
credentials), it imports the Handler once and serves one invocation at a time; it stays warm for the next.
Overlapping invocations of one function get more workers, up to `max_workers` per function.

Enforced as AWS enforces them: the function's Timeout (the worker is killed and discarded:
`Sandbox.Timedout`), its MemorySize (the worker's resident memory is sampled; over it the worker is
killed: `Runtime.OutOfMemory`) and the payload limits (6 MB synchronous request and response, 256 KB
asynchronous event). Environment values under /opt/ are mapped to the function's layers; a path that no
layer holds fails the invocation with the function, the variable and the path, as the model load would
fail in AWS. Tracing as deployed: a function with `Tracing: Active` runs with X-Ray on (the SDK's patched
libraries included), its documents sent to the runtime's local daemon (local/xray.py).
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from threadline.local import worker as _worker_module
from threadline.local.worker import END_OF_LOGS, FRAME_HEADER, write_frame
from threadline.local.xray import XRayDaemon, trace_header

_LOG = logging.getLogger("threadline.local.runtime")
_FUNCTION_LOG = logging.getLogger("threadline.local.functions")

SYNC_PAYLOAD_LIMIT = 6_291_456  # bytes: RequestResponse request and response
ASYNC_PAYLOAD_LIMIT = 262_144  # bytes: an Event invocation's payload
# Lambda's message names one more than the limit (6291556); kept as AWS words it, so logs match.
_RESPONSE_TOO_LARGE = "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
# Lambda gives the init phase 10 s; an init that runs over is retried inside the invoke, under the Timeout.
INIT_LIMIT_S = 10.0
WORKER_SCRIPT = str(Path(_worker_module.__file__).resolve())
# Its sitecustomize gives each of a function's Python processes Lambda's read-only filesystem, from the folders
# these two variables name (its WRITABLE and READ_ONLY: not imported, importing it would run it here).
LAMBDA_SITE = Path(_worker_module.__file__).resolve().parent / "lambda_site"
_WRITABLE_FOLDERS, _READ_ONLY_FOLDERS = "_THREADLINE_LOCAL_WRITABLE", "_THREADLINE_LOCAL_READ_ONLY"
_SAMPLE_S = 0.05  # how often a busy worker's memory is sampled
_LAYER_ROOT = "/opt/"
# External layers the local cloud stands in for, and the /opt paths their emulation provides.
EMULATED_LAYERS = {"LambdaAdapterLayer": frozenset({"/opt/bootstrap"})}

LogSink = Callable[[str, str], None]  # (function name, log line)


def log_to_logging(function: str, line: str) -> None:
    """Forward a function's log line to this process's logging, tagged with the function's name."""
    _FUNCTION_LOG.info("[%s] %s", function, line)


class RequestTooLarge(Exception):
    """The invocation's payload exceeds Lambda's limit; Lambda refuses it before running anything (413)."""

    def __init__(self, function: str, size: int, limit: int) -> None:
        super().__init__(
            f"{function}: request payload of {size} bytes exceeds the maximum allowed payload size ({limit} bytes)"
        )
        self.size = size
        self.limit = limit


class LayerPathError(Exception):
    """An environment value under /opt/ names a file that none of the function's layers holds."""


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime needs to run one function as Lambda would."""

    logical_id: str
    name: str
    arn: str
    handler: str
    environment: Mapping[str, str]  # resolved template values, /opt paths as written
    timeout_s: int
    memory_mb: int
    code_dir: Path  # LAMBDA_TASK_ROOT
    layer_dirs: tuple[Path, ...] = ()  # each as Lambda unzips it into /opt, in the template's order
    external_layers: tuple[str, ...] = ()  # layer ARNs not built here
    python: str = ""  # the interpreter; empty: the one running this process
    region: str = "us-east-1"
    traced: bool = False  # X-Ray active: each invocation's trace header is sampled (local/xray.py)


def map_layer_paths(spec: FunctionSpec) -> dict[str, str]:
    """The function's environment with every /opt/ value mapped to the layer directory that holds it.

    Lambda unzips layers into /opt in order, later ones over earlier ones, so the last layer holding a path wins.
    """
    emulated = {path for arn in spec.external_layers for name, paths in EMULATED_LAYERS.items() if name in arn
                for path in paths}  # fmt: skip
    mapped: dict[str, str] = {}
    for key, value in spec.environment.items():
        if not value.startswith(_LAYER_ROOT) or value in emulated:
            mapped[key] = value
            continue
        relative = value[len(_LAYER_ROOT) :]
        holders = [layer / relative for layer in reversed(spec.layer_dirs) if (layer / relative).exists()]
        if not holders:
            layers = ", ".join(str(layer) for layer in spec.layer_dirs) or "no layers"
            raise LayerPathError(
                f"{spec.logical_id}: {key}={value} is in none of its layers ({layers}); "
                "in AWS the function would fail when it loads it"
            )
        mapped[key] = str(holders[0])
    return mapped


def python_path(spec: FunctionSpec) -> str:
    """sys.path as Lambda's Python runtime builds it: the code, then each layer's python folders (last first)."""
    entries = [str(spec.code_dir)]
    for layer in reversed(spec.layer_dirs):
        entries += [str(layer / "python" / "lib" / "python3.12" / "site-packages"), str(layer / "python")]
    return os.pathsep.join(entries)


def lambda_environment(spec: FunctionSpec, pinned: Mapping[str, str], xray_daemon: str = "") -> dict[str, str]:
    """Exactly the environment Lambda gives the function: its own values, the pinned ones, the reserved ones.

    Nothing else comes from this process: a value another function has, or the developer's shell has, is
    not there, as it would not be in AWS. `xray_daemon`: the local X-Ray daemon's address (local/xray.py).
    """
    python = spec.python or _current_python()
    reserved = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "LAMBDA_RUNTIME_DIR": str(Path(python).parent),
        "_HANDLER": spec.handler,
        "PYTHONPATH": python_path(spec),
        "TZ": ":UTC",
        # Lambda sets both for the X-Ray SDK; each invocation's _X_AMZN_TRACE_ID comes with its request.
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        **({"AWS_XRAY_DAEMON_ADDRESS": xray_daemon} if xray_daemon else {}),
        "LANG": "en_US.UTF-8",
        "PATH": os.pathsep.join([str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    return {**map_layer_paths(spec), **pinned, **reserved}


def read_only_filesystem_environment(spec: FunctionSpec, environment: Mapping[str, str]) -> dict[str, str]:
    """`environment` for starting one of the function's processes, with Lambda's read-only filesystem.

    Adds local/lambda_site last on PYTHONPATH and names the folders the function may write to (Lambda's /tmp
    and this machine's temporary folder) and those it may not even there (its code and layers). The
    sitecustomize there installs the check and takes all three out again before the function's code runs.
    """
    path = [entry for entry in environment.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return {
        **environment,
        "PYTHONPATH": os.pathsep.join([*path, str(LAMBDA_SITE)]),
        _WRITABLE_FOLDERS: os.pathsep.join(["/tmp", tempfile.gettempdir()]),
        _READ_ONLY_FOLDERS: os.pathsep.join(str(p) for p in (spec.code_dir, *spec.layer_dirs)),
    }


def _current_python() -> str:
    return sys.executable


@dataclass(frozen=True)
class Invocation:
    """What one invocation returned, and what Lambda's REPORT line says about it."""

    payload: Any
    errored: bool
    request_id: str = ""
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    init_ms: float | None = None  # set on a cold start

    @property
    def error_type(self) -> str | None:
        """The errorType of a failed invocation (the exception's class name, or Lambda's own)."""
        if self.errored and isinstance(self.payload, dict):
            return str(self.payload.get("errorType"))
        return None

    def report_line(self, memory_mb: int) -> str:
        """Lambda's REPORT log line for this invocation."""
        billed = max(1, int(-(-self.duration_ms // 1)))
        line = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {billed} ms\tMemory Size: {memory_mb} MB\tMax Memory Used: {self.max_memory_mb} MB"
        )
        return line + (f"\tInit Duration: {self.init_ms:.2f} ms" if self.init_ms is not None else "")


def _rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (a handler's subprocesses count against the limit)."""
    total = 0
    pending = [pid]
    while pending:
        current = Path("/proc") / str(pending.pop())
        try:
            for line in (current / "status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
            for task in (current / "task").iterdir():
                pending += [int(child) for child in (task / "children").read_text(encoding="ascii").split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


class _Killed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "timeout" | "memory" | "exited"


class Worker:
    """One execution environment of a function: a warm process serving one invocation at a time."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], log: LogSink) -> None:
        self.spec = spec
        self.environment = environment
        self.max_rss = 0
        request_read, self._request_write = os.pipe()
        self._response_read, response_write = os.pipe()
        started = time.monotonic()
        self.process = subprocess.Popen(
            # The worker runs as a file, like Lambda's runtime client, not as `-m threadline.local.worker`: the
            # packaged code (`threadline invoke --package`) leaves threadline.local out, so the module is not on
            # the function's path. It imports only the standard library; -P keeps its folder off sys.path.
            [spec.python or _current_python(), "-u", "-P", WORKER_SCRIPT, str(request_read), str(response_write)],
            env=read_only_filesystem_environment(spec, environment),
            cwd=spec.code_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(request_read, response_write),
            start_new_session=True,  # its own process group: a kill takes the handler's children too
        )  # fmt: skip
        os.close(request_read)
        os.close(response_write)
        self._buffer = b""
        self._closed = False
        self._logs_done = threading.Semaphore(0)
        self._log_threads = [
            threading.Thread(
                target=_forward, args=(stream, spec.name, log, self._logs_done), daemon=True, name=f"log-{spec.name}"
            )
            for stream in (self.process.stdout, self.process.stderr)
            if stream is not None
        ]
        for thread in self._log_threads:
            thread.start()
        self.init_error: Any = None
        try:
            ready = self._read(started + INIT_LIMIT_S + spec.timeout_s, spec.memory_mb)
        except _Killed:
            self.close()
            raise
        self.init_ms: float | None = (time.monotonic() - started) * 1000
        self.worker_init_ms = float(ready.get("init_ms", 0.0))

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None

    def _read(self, deadline: float, memory_mb: int) -> dict[str, Any]:
        limit = memory_mb * 1024 * 1024
        while True:
            self.max_rss = max(self.max_rss, _rss_bytes(self.process.pid))
            if self.max_rss > limit:
                raise _Killed("memory")
            if len(self._buffer) >= FRAME_HEADER.size:
                (size,) = FRAME_HEADER.unpack(self._buffer[: FRAME_HEADER.size])
                if len(self._buffer) >= FRAME_HEADER.size + size:
                    body = self._buffer[FRAME_HEADER.size : FRAME_HEADER.size + size]
                    self._buffer = self._buffer[FRAME_HEADER.size + size :]
                    message: dict[str, Any] = json.loads(body)
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Killed("timeout")
            readable, _, _ = select.select([self._response_read], [], [], min(_SAMPLE_S, remaining))
            if readable:
                chunk = os.read(self._response_read, 1 << 20)
                if not chunk:
                    raise _Killed("exited")
                self._buffer += chunk

    def invoke(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one invocation and wait for its result within the function's limits (raises _Killed)."""
        write_frame(self._request_write, request)
        deadline = time.monotonic() + self.spec.timeout_s
        response = self._read(deadline, self.spec.memory_mb)
        for _ in self._log_threads:  # the invocation's logs are forwarded before its END and REPORT lines
            self._logs_done.acquire(timeout=1.0)
        return response

    def close(self) -> None:
        """Discard the environment: kill the process group and release the pipes (once)."""
        if self._closed:
            return
        self._closed = True
        if self.alive:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for fd in (self._request_write, self._response_read):
            try:
                os.close(fd)
            except OSError:
                pass
        for thread in self._log_threads:
            thread.join(1.0)


def _forward(stream: IO[bytes], function: str, log: LogSink, done: threading.Semaphore) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line == END_OF_LOGS:
            done.release()
        else:
            log(function, line)
    stream.close()


class _Pool:
    """The warm workers of one function."""

    def __init__(self, max_workers: int) -> None:
        self.idle: list[Worker] = []
        self.count = 0
        self.max_workers = max_workers
        self.cond = threading.Condition()

    def take(self) -> Worker | None:
        """An idle worker, or None when the caller may start a new one (waits while the pool is full)."""
        with self.cond:
            while True:
                if self.idle:
                    return self.idle.pop()
                if self.count < self.max_workers:
                    self.count += 1
                    return None
                self.cond.wait()

    def give_back(self, worker: Worker | None) -> None:
        """Return a worker after an invocation; None when it was discarded (or never started)."""
        with self.cond:
            if worker is None:
                self.count -= 1
            else:
                self.idle.append(worker)
            self.cond.notify()

    def drain(self) -> list[Worker]:
        with self.cond:
            workers, self.idle = self.idle, []
            self.count -= len(workers)
            return workers


@dataclass
class ColdStart:
    """One worker start: how long until it could take its first invocation."""

    function: str
    total_ms: float
    init_ms: float


class LambdaRuntime:
    """Runs a deployment's functions in worker processes, with the local cloud's pinned values."""

    def __init__(self, *, max_workers: int = 4, log: LogSink = log_to_logging) -> None:
        self.max_workers = max_workers
        self.log = log
        self.specs: dict[str, FunctionSpec] = {}
        self.pinned: dict[str, str] = {}
        self.cold_starts: list[ColdStart] = []
        self._pools: dict[str, _Pool] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._no_new_workers = False
        # Where the functions' traces go, as Lambda's X-Ray daemon (local/xray.py).
        self.xray = XRayDaemon()

    def register(self, spec: FunctionSpec) -> None:
        """Make a function invocable (by logical id, name or ARN); a changed spec gets fresh workers."""
        with self._lock:
            previous = self.specs.get(spec.arn)
            self.specs[spec.arn] = spec
            pool = self._pools.get(spec.arn)
        if previous is not None and previous != spec and pool is not None:
            for worker in pool.drain():
                worker.close()

    def spec(self, function: str) -> FunctionSpec:
        """A registered function by logical id, name or ARN."""
        for spec in self.specs.values():
            if function in (spec.logical_id, spec.name, spec.arn):
                return spec
        raise KeyError(f"no function {function!r} in the local runtime")

    def set_pinned(self, values: Mapping[str, str]) -> None:
        """Values every function gets on top of its own (the endpoint, credentials, a test's DATABASE_URL).

        Warm workers take the new values with their next invocation and rebuild their settings and container.
        """
        self.pinned = dict(values)

    def invoke(self, function: str, payload: bytes | str, *, limit: int = SYNC_PAYLOAD_LIMIT) -> Invocation:
        """Invoke synchronously (RequestResponse): the payload as JSON text; raises RequestTooLarge."""
        spec = self.spec(function)
        data = payload.encode() if isinstance(payload, str) else payload
        if len(data) > limit:
            raise RequestTooLarge(spec.name, len(data), limit)
        request_id = str(uuid.uuid4())
        try:
            environment = lambda_environment(spec, self.pinned, self.xray.address)
        except LayerPathError as exc:
            return Invocation({"errorType": "Runtime.LayerPathNotFound", "errorMessage": str(exc)}, True, request_id)
        pool = self._pool(spec)
        worker = pool.take()
        keep: Worker | None = None
        try:
            cold_ms: float | None = None
            if worker is None and self._no_new_workers:
                error = {"errorType": "Runtime.Stopping", "errorMessage": f"{spec.name}: the local runtime is stopping"}
                return Invocation(error, True, request_id)
            if worker is None:
                started = time.monotonic()
                try:
                    worker = Worker(spec, environment, self.log)
                except _Killed as killed:
                    elapsed = (time.monotonic() - started) * 1000
                    return _killed_invocation(spec, request_id, killed.reason, 0, elapsed)
                cold_ms = worker.init_ms
                self.cold_starts.append(
                    ColdStart(spec.name, (time.monotonic() - started) * 1000, worker.worker_init_ms)
                )
            try:
                result = self._run(worker, spec, environment, data.decode(), request_id, cold_ms)
            except _Discarded as discarded:
                return discarded.invocation
            keep = worker if worker.alive else None
            return result
        finally:
            if keep is not None and self._closed:
                keep = None  # the runtime stopped while this invocation ran: the environment goes too
            if worker is not None and keep is None:
                worker.close()
            pool.give_back(keep)

    def _pool(self, spec: FunctionSpec) -> _Pool:
        with self._lock:
            return self._pools.setdefault(spec.arn, _Pool(self.max_workers))

    def _run(
        self,
        worker: Worker,
        spec: FunctionSpec,
        environment: dict[str, str],
        event: str,
        request_id: str,
        cold_ms: float | None,
    ) -> Invocation:
        # A changed environment (new pinned values) travels with the request; the worker then resets its
        # cached settings and container. The log stream name is the worker's own and stays.
        wanted = {**environment, "AWS_LAMBDA_LOG_STREAM_NAME": worker.environment["AWS_LAMBDA_LOG_STREAM_NAME"]}
        changed = wanted != worker.environment
        request = {
            "request_id": request_id,
            "event": event,
            "function_arn": spec.arn,
            "timeout_s": spec.timeout_s,
            "deadline_ms": int(time.time() * 1000) + spec.timeout_s * 1000,
            "environment": wanted if changed else None,
            "trace_header": trace_header(sampled=spec.traced),
        }
        worker.environment = wanted
        self.log(spec.name, f"START RequestId: {request_id} Version: $LATEST")
        started = time.monotonic()
        worker.max_rss = 0
        try:
            response = worker.invoke(request)
        except _Killed as killed:
            duration = (time.monotonic() - started) * 1000
            raise _Discarded(
                _killed_invocation(spec, request_id, killed.reason, worker.max_rss, duration, cold_ms)
            ) from None
        duration = (time.monotonic() - started) * 1000
        body: str = response["payload"]
        errored = bool(response["errored"])
        if not errored and len(body.encode()) > SYNC_PAYLOAD_LIMIT:
            body, errored = json.dumps({"errorType": "Function.ResponseSizeTooLarge", "errorMessage":
                                        _RESPONSE_TOO_LARGE}), True  # fmt: skip
        result = Invocation(
            payload=json.loads(body) if body else None,
            errored=errored,
            request_id=request_id,
            duration_ms=duration,
            max_memory_mb=-(-worker.max_rss // (1024 * 1024)),
            init_ms=cold_ms,
        )
        self.log(spec.name, f"END RequestId: {request_id}")
        self.log(spec.name, result.report_line(spec.memory_mb))
        return result

    def stop_starting(self) -> None:
        """Start no new worker from now on (the stack is stopping); warm ones still serve what is in flight."""
        self._no_new_workers = True

    def close(self) -> None:
        """Stop every idle worker; busy ones stop when their invocation returns.

        A worker also exits by itself when this process goes away: its request pipe reaches end of file.
        """
        self._closed = True
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            for worker in pool.drain():
                worker.close()
        self.xray.close()


class _Discarded(Exception):
    def __init__(self, invocation: Invocation) -> None:
        super().__init__(invocation.error_type)
        self.invocation = invocation


def _killed_invocation(
    spec: FunctionSpec, request_id: str, reason: str, rss: int, duration_ms: float, init_ms: float | None = None
) -> Invocation:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if reason == "timeout":
        payload = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"{stamp} {request_id} Task timed out after {spec.timeout_s:.2f} seconds",
        }
    elif reason == "memory":
        payload = {
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
        }
    else:
        payload = {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited without providing a reason",
        }
    _LOG.warning("%s: %s", spec.name, payload["errorMessage"])
    return Invocation(payload, True, request_id, duration_ms, -(-rss // (1024 * 1024)), init_ms)
