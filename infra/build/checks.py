"""Checks of the packaged artifact (build/package), each problem naming the function and the path.

Used by `make package` (the checks that need no interpreter) and by tests/infra/test_package.py (all).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from infra.build import artifact, imports

OPT = "/opt/"
# run.sh execs `python3 -m uvicorn --factory MODULE:ATTR`; the app factory is what must import.
_UVICORN_APP = re.compile(r"uvicorn\b.*?\s([A-Za-z_][\w.]*:[A-Za-z_]\w*)")
# ... and its `--http` implementation, whose module must import too (httptools is a C extension: a cp312 wheel).
_UVICORN_HTTP = re.compile(r"--http[= ](\w+)")
_HTTP_PROTOCOLS = {
    "httptools": "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol",
    "h11": "uvicorn.protocols.http.h11_impl:H11Protocol",
}
# Runs inside the artifact's interpreter: import each `module:attr` (or `module.attr`) and refuse any
# module loaded from outside the code, the layers and the interpreter's own standard library.
_IMPORT_PROBE = """
import importlib, os, sys
roots = tuple(os.path.realpath(p) + os.sep for p in sys.argv[1].split(os.pathsep))
for target in sys.argv[2:]:
    module, _, attr = target.rpartition(":") if ":" in target else target.rpartition(".")
    if not callable(getattr(importlib.import_module(module), attr)):
        raise SystemExit(f"{target} is not callable")
# What the handler's process imports on demand later (threadline/startup.py: LATER), from the artifact too.
for module in sorted(getattr(sys.modules.get("threadline.startup"), "LATER", ())):
    try:
        importlib.import_module(module)
    except Exception as exc:
        raise SystemExit(f"{module}, imported on demand, does not import: {type(exc).__name__}: {exc}") from None
stray = sorted({m.__name__ for m in list(sys.modules.values())
                if getattr(m, "__file__", None) and not os.path.realpath(m.__file__).startswith(roots)})
if stray:
    raise SystemExit(f"imported from outside the artifact: {stray[:10]}")
"""


def _layer_dirs(entry: dict[str, Any], package_dir: Path) -> list[Path]:
    return [package_dir / layer for layer in entry["layers"]]


def opt_path_problems(manifest: dict[str, Any], package_dir: Path) -> list[str]:
    """Every environment value under /opt/ must be a file or folder of one of the function's layers."""
    problems: list[str] = []
    for name, entry in manifest["functions"].items():
        layers = _layer_dirs(entry, package_dir)
        external = [f for arn in entry["external_layers"] for f in artifact.external_layer_files(arn)]
        for variable, value in entry["environment"].items():
            if not isinstance(value, str) or not value.startswith(OPT):
                continue
            relative = value.removeprefix(OPT).rstrip("/")
            if relative in external or any((layer / relative).exists() for layer in layers):
                continue
            basename = Path(relative).name
            near = [f"{OPT}{p.relative_to(layer).as_posix()}" for layer in layers for p in layer.rglob(basename)]
            hint = f"; the layers have {', '.join(near[:3])}" if near else ""
            names = ", ".join(Path(layer).name for layer in entry["layers"]) or "none"
            problems.append(f"{name}: {variable}={value} is in none of its layers ({names}){hint}")
    return problems


def size_report(manifest: dict[str, Any]) -> str:
    """One line per function: code + local layers unzipped, against Lambda's 250 MiB."""
    limit = artifact.UNZIPPED_LIMIT_BYTES
    lines = [f"unzipped size (code + local layers) of each function, Lambda's limit {limit:,} bytes:"]
    for name, entry in sorted(manifest["functions"].items()):
        size = entry["unzipped_bytes"]
        external = f" + {len(entry['external_layers'])} external layer(s)" if entry["external_layers"] else ""
        lines.append(
            f"  {name}: {size:,} bytes ({size / artifact.UNZIPPED_LIMIT_BYTES:.1%}, "
            f"{artifact.UNZIPPED_LIMIT_BYTES - size:,} left){external}"
        )
    return "\n".join(lines)


def size_problems(manifest: dict[str, Any]) -> list[str]:
    """Functions whose code + local layers exceed Lambda's unzipped limit."""
    return [
        f"{name}: {entry['unzipped_bytes']:,} bytes unzipped (code + {', '.join(entry['layers'])}) exceeds "
        f"Lambda's {artifact.UNZIPPED_LIMIT_BYTES:,}"
        for name, entry in manifest["functions"].items()
        if entry["unzipped_bytes"] > artifact.UNZIPPED_LIMIT_BYTES
    ]


def _entry_module(handler: str, source: Path) -> str:
    """The module a Handler loads: `module.function`, or a script's uvicorn app (`MODULE:ATTR`)."""
    script = source / handler
    if script.is_file() and (app := _UVICORN_APP.search(script.read_text(encoding="utf-8"))):
        return app.group(1).partition(":")[0]
    return handler.rpartition(".")[0]


def dev_only_problems(manifest: dict[str, Any], root: Path) -> list[str]:
    """Functions whose handler's imports (those inside functions included) reach a package the code artifact
    leaves out (manifest `artifacts.code.left_out`): read from the source, so an import that only runs on
    some request is caught too, which importing the handler (handler_problems) cannot see."""
    code = manifest["artifacts"]["code"]
    source = root / code["source"]
    left_out = tuple(folder.replace("/", ".") for folder in code.get("left_out", ()))
    graph = imports.import_graph(imports.module_files(source, "threadline"), lazy=True)
    problems: list[str] = []
    for name, entry in sorted(manifest["functions"].items()):
        reached = imports.reachable(graph, [_entry_module(entry["handler"], source)])
        for module, chain in sorted(reached.items()):
            if any(module == p or module.startswith(f"{p}.") for p in left_out):
                problems.append(f"{name}: {' -> '.join(chain)}, left out of the code artifact")
                break
    return problems


def find_python(version: str = "3.12") -> Path:
    """An interpreter of Lambda's Python version: $LAMBDA_PYTHON, python3.12 on PATH, or a pyenv install."""
    candidates = [os.environ.get("LAMBDA_PYTHON", ""), shutil.which(f"python{version}") or ""]
    pyenv = Path("~/.pyenv/versions").expanduser()
    candidates += sorted((str(p) for p in pyenv.glob(f"{version}*/bin/python{version}")), reverse=True)
    for candidate in filter(None, candidates):
        # A pyenv shim exists on PATH even when the version is not selected; only a working one counts.
        command = [candidate, "-c", "import sys; print(sys.version_info[:2])"]
        probe = subprocess.run(command, capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(map(int, version.split(".")))):
            return Path(candidate)
    raise FileNotFoundError(f"no Python {version} interpreter found; set LAMBDA_PYTHON to one")


def _overlay(source: Path, target: Path) -> None:
    for entry in sorted(source.iterdir()):
        link = target / entry.name
        if entry.is_dir() and link.is_dir():
            if link.is_symlink():
                # Both layers have this folder: make it real, with links to what the earlier layer had.
                earlier = link.resolve()
                link.unlink()
                link.mkdir()
                for child in earlier.iterdir():
                    (link / child.name).symlink_to(child)
            _overlay(entry, link)
        else:
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.exists():
                shutil.rmtree(link)
            link.symlink_to(entry.resolve())


def opt_view(layer_dirs: list[Path], target: Path) -> Path:
    """/opt as Lambda assembles it at `target`: the layers in order, a later layer's file replacing an earlier one's.

    Symlinks into the layers, a folder made real only where two layers share it; rebuilt on every call at a
    stable path, so the interpreter's bytecode cache (PYTHONPYCACHEPREFIX) stays valid between runs.
    """
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for layer in layer_dirs:
        _overlay(layer, target)
    return target


def lambda_environment(entry: dict[str, Any], code: Path, opt: Path, runtime: str, pycache: Path) -> dict[str, str]:
    """The process environment Lambda gives the function, /opt and /var/task mapped to local folders.

    Nothing of this machine's environment comes through (no virtualenv, no PYTHONPATH of the dev tools).
    Bytecode goes to `pycache` (PYTHONPYCACHEPREFIX): in Lambda the code and /opt are read-only, and here
    the artifact must stay as built (a __pycache__ in a layer would count against its size).
    """
    env = {
        name: (str(opt / value.removeprefix(OPT)) if value.startswith(OPT) else value)
        for name, value in entry["environment"].items()
        if isinstance(value, str)
    }
    version = runtime.removeprefix("python")
    env |= {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LAMBDA_TASK_ROOT": str(code),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Lambda's sys.path order: the code, then the layers' site-packages and python/ folders.
        "PYTHONPATH": os.pathsep.join([str(code), f"{opt}/python/lib/python{version}/site-packages", f"{opt}/python"]),
        "PYTHONPYCACHEPREFIX": str(pycache),
    }
    return env


def _script_targets(name: str, script: Path, zip_path: Path) -> tuple[list[str], list[str]]:
    """For a script handler (run.sh): problems with the file itself, and what it makes Python import."""
    problems: list[str] = []
    if not script.is_file():
        return [f"{name}: handler script {script.name} is not in the code"], []
    if not script.stat().st_mode & stat.S_IXUSR:
        problems.append(f"{name}: handler script {script.name} is not executable")
    with zipfile.ZipFile(zip_path) as archive:
        mode = archive.getinfo(script.name).external_attr >> 16
    if not mode & stat.S_IXUSR:
        problems.append(f"{name}: {script.name} is not executable in {zip_path.name}")
    app = _UVICORN_APP.search(script.read_text(encoding="utf-8"))
    if app is None:
        problems.append(f"{name}: {script.name} names no uvicorn app (MODULE:ATTR)")
        return problems, []
    targets = ["uvicorn.main:main", app.group(1)]
    http = _UVICORN_HTTP.search(script.read_text(encoding="utf-8"))
    if http is not None:
        if http.group(1) not in _HTTP_PROTOCOLS:
            problems.append(f"{name}: {script.name} asks uvicorn for an unknown --http {http.group(1)}")
        else:
            targets.append(_HTTP_PROTOCOLS[http.group(1)])
    return problems, targets


def handler_problems(manifest: dict[str, Any], package_dir: Path, python: Path) -> list[str]:
    """Import every function's Handler in a fresh interpreter laid out as Lambda lays out the artifact, and then
    the modules its process imports on demand (the API's router modules and MCP server: threadline/startup.py).

    Bytecode goes to package_dir/.pycache, so a second run does not compile the layers' 38 MB of Python again.
    """
    package_dir = package_dir.resolve()
    problems: list[str] = []
    views: dict[tuple[str, ...], Path] = {}
    stdlib = _stdlib(python)
    probes: list[tuple[str, list[str], list[str], dict[str, str], Path]] = []
    for name, entry in manifest["functions"].items():
        code = package_dir / entry["code"]
        targets = [entry["handler"]]
        if "." not in entry["handler"] or (code / entry["handler"]).exists():
            found, targets = _script_targets(name, code / entry["handler"], package_dir / f"{entry['code']}.zip")
            problems += found
        if not targets:
            continue
        layers = _layer_dirs(entry, package_dir)
        key = tuple(entry["layers"])
        if key not in views:
            views[key] = opt_view(layers, package_dir / ".opt" / "+".join(Path(layer).name for layer in key))
        env = lambda_environment(entry, code, views[key], manifest["runtime"], package_dir / ".pycache")
        roots = [str(code), *(str(p) for p in layers), stdlib]
        probes.append((name, targets, roots, env, code))

    def probe(name: str, targets: list[str], roots: list[str], env: dict[str, str], code: Path) -> str | None:
        # -S: no site-packages of the interpreter (Lambda's own boto3 must not mask a missing dependency).
        run = subprocess.run(
            [str(python), "-S", "-c", _IMPORT_PROBE, os.pathsep.join(roots), *targets],
            env=env, cwd=code, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if run.returncode == 0:
            return None
        last = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
        handler = manifest["functions"][name]["handler"]
        return f"{name}: handler {handler} ({', '.join(targets)}) does not import: {last}"

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outcomes = list(pool.map(lambda args: probe(*args), probes))
    return problems + [outcome for outcome in outcomes if outcome]


def _stdlib(python: Path) -> str:
    return subprocess.run(
        [str(python), "-S", "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True, check=True
    ).stdout.strip()
