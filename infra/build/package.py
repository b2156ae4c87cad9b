"""`make package`: the Lambda artifact of template.yaml, built offline, then the template packaged to S3.

What `sam build` + `sam package` would do, without Docker and without Python 3.12 on the machine:

- the code (the functions' CodeUri, plus the SQL migrations) into build/package/code/;
- each local layer into build/package/layers/<LayerId>/: a `BuildMethod: python3.12` layer is its
  requirements.txt installed by uv for cp312 manylinux x86_64 wheels into python/, any other layer is
  its ContentUri folder as it is;
- deterministic zips of each, and manifest.json (docs/architecture.md, "The packaged artifact");
- with --bucket: the zips and the state machine definitions uploaded (content-addressed keys, an
  existing key is not uploaded again) and template.packaged.yaml with every local URI rewritten to S3.
  Without --bucket the upload goes to moto's S3 started in this process, so the step is exercised offline.

Run from the repository root: `python -m infra.build.package --uv .local/tools/bin/uv`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from infra.build import artifact, checks

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "python3.12"
ARCHITECTURE = "x86_64"
# python3.12 runs on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to 2_34 loads there.
WHEEL_PLATFORM = "x86_64-manylinux_2_34"
# Shipped beside the package (as /var/task/migrations) for the function that migrates inside the VPC;
# Settings.migrations_dir looks there first.
EXTRA_CODE = {"migrations": Path("infra/db/migrations")}
# Only the `threadline` command and the local cloud use these (the demo seeder is in local/): the code artifact
# leaves them out, and checks.dev_only_problems refuses a handler whose imports, lazy ones included, reach them.
DEV_ONLY = ("threadline/cli", "threadline/local")
_SKIPPED = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
LOCAL_BUCKET = "threadline-package-local"


def say(message: str) -> None:
    """Progress on stdout, as a build step reports it."""
    print(message, flush=True)  # noqa: T201 - the build's output is its report


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not _SKIPPED.intersection(path.relative_to(folder).parts) and path.suffix != ".pyc":
            yield path


def copy_tree(source: Path, dest: Path, left_out: tuple[str, ...] = ()) -> int:
    """Copy `source`'s files (caches and the `left_out` folders left out) under `dest`, keeping their modes
    (run.sh stays executable); returns the bytes of the files left out of `left_out`."""
    skipped = 0
    for path in _files(source):
        relative = path.relative_to(source)
        if any(relative.is_relative_to(folder) for folder in left_out):
            skipped += path.stat().st_size
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return skipped


def tree_bytes(folder: Path) -> int:
    """Bytes of every file under `folder`: what Lambda counts against the unzipped limit."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def zip_tree(folder: Path, target: Path) -> None:
    """A reproducible zip of `folder`: sorted entries, fixed timestamps, Unix modes (executables stay so)."""
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=_ZIP_TIME)
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
    partial.replace(target)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _uv_version(uv: Path) -> str:
    return subprocess.run([str(uv), "--version"], check=True, capture_output=True, text=True).stdout.strip()


def build_python_layer(requirements: Path, dest: Path, zip_path: Path, stamp: Path, uv: Path) -> bool:
    """Install `requirements` for python3.12 x86_64 into dest/python; skipped when the stamp's key is unchanged.

    Returns whether it built. The key covers the requirements, the target platform and uv's version, so a
    second `make package` with the same uv.lock neither downloads nor zips again.
    """
    key = hashlib.sha256(
        "\n".join([requirements.read_text(encoding="utf-8"), RUNTIME, WHEEL_PLATFORM, _uv_version(uv)]).encode()
    ).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == key and dest.is_dir() and zip_path.is_file():
        # uv installs without bytecode; any __pycache__ was written by an interpreter run on the folder since.
        for cache in [p for p in dest.rglob("__pycache__") if p.is_dir()]:
            shutil.rmtree(cache)
        return False
    shutil.rmtree(dest, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    command = [
        str(uv), "pip", "install", "--quiet", "--target", str(dest / "python"), "-r", str(requirements),
        "--python-platform", WHEEL_PLATFORM, "--python-version", RUNTIME.removeprefix("python"),
        # The export is the whole locked set: nothing to resolve, and only wheels (no compiler for the target).
        "--no-deps", "--only-binary", ":all:", "--no-compile",
    ]  # fmt: skip
    subprocess.run(command, check=True)
    # Console scripts carry this machine's interpreter in their shebang; Lambda never runs them.
    shutil.rmtree(dest / "python" / "bin", ignore_errors=True)
    zip_tree(dest, zip_path)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key + "\n")
    return True


def _replace_dir(dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)


def build_code(sam: dict[str, Any], root: Path, out: Path) -> str:
    """The functions' one CodeUri less DEV_ONLY (and the migrations) into out/code; returns the CodeUri."""
    code_uris = {props.get("CodeUri") for props in artifact.functions(sam).values()}
    if len(code_uris) != 1 or not isinstance(next(iter(code_uris)), str):
        raise ValueError(f"every function must share one local CodeUri to build one code artifact, got {code_uris}")
    code_uri = str(next(iter(code_uris)))
    dest = out / "code"
    _replace_dir(dest)
    left_out = copy_tree(root / code_uri, dest, DEV_ONLY)
    say(f"code: {', '.join(DEV_ONLY)} left out (dev only): {left_out:,} bytes saved")
    for name, source in EXTRA_CODE.items():
        copy_tree(root / source, dest / name)
    zip_tree(dest, out / "code.zip")
    return code_uri


def build_layers(sam: dict[str, Any], root: Path, out: Path, uv: Path) -> dict[str, str]:
    """Every local layer into out/layers/<id> and its zip; returns each layer's ContentUri."""
    sources: dict[str, str] = {}
    for logical_id, resource in artifact.local_layers(sam).items():
        content_uri = resource["Properties"]["ContentUri"]
        method = resource.get("Metadata", {}).get("BuildMethod")
        arch = resource.get("Metadata", {}).get("BuildArchitecture", ARCHITECTURE)
        dest, zip_path = out / "layers" / logical_id, out / "layers" / f"{logical_id}.zip"
        if method == RUNTIME and arch == ARCHITECTURE:
            built = build_python_layer(
                root / content_uri / "requirements.txt", dest, zip_path, out / ".stamps" / logical_id, uv
            )
            say(f"{logical_id}: {'built' if built else 'unchanged (same requirements), kept'}")
        elif method is None:
            _replace_dir(dest)
            copy_tree(root / content_uri, dest)
            zip_tree(dest, zip_path)
            say(f"{logical_id}: copied {content_uri}")
        else:
            raise ValueError(f"{logical_id}: BuildMethod {method} for {arch} is not one this packager builds")
        sources[logical_id] = content_uri
    return sources


def function_entries(sam: dict[str, Any], out: Path, layer_ids: list[str]) -> dict[str, Any]:
    """Each function's manifest entry: handler, code, layers in the template's order, limits, environment, size."""
    layer_bytes = {lid: tree_bytes(out / "layers" / lid) for lid in layer_ids}
    code_bytes = tree_bytes(out / "code")
    defaults = artifact.parameter_defaults(sam)
    entries: dict[str, Any] = {}
    for logical_id, props in artifact.functions(sam).items():
        refs = artifact.layer_refs(props, set(layer_ids))
        entries[logical_id] = {
            "handler": props["Handler"],
            "code": "code",
            "layers": [f"layers/{lid}" for lid in refs.local],
            "external_layers": refs.external,
            "timeout_s": int(props.get("Timeout", 3)),
            "memory_mb": int(props.get("MemorySize", 128)),
            "environment": artifact.resolve_environment(props, defaults),
            "unzipped_bytes": code_bytes + sum(layer_bytes[lid] for lid in refs.local),
        }
    return entries


def write_manifest(sam: dict[str, Any], out: Path, code_uri: str, layer_sources: dict[str, str]) -> dict[str, Any]:
    """manifest.json: the artifacts (source, zip, digest) and what each function loads."""
    artifacts: dict[str, dict[str, Any]] = {"code": {"source": code_uri, "zip": "code.zip", "left_out": list(DEV_ONLY)}}
    artifacts |= {
        f"layers/{lid}": {"source": source, "zip": f"layers/{lid}.zip"} for lid, source in layer_sources.items()
    }
    for entry in artifacts.values():
        entry["sha256"] = sha256_file(out / entry["zip"])
    manifest = {
        "runtime": RUNTIME,
        "architecture": ARCHITECTURE,
        "artifacts": artifacts,
        "functions": function_entries(sam, out, list(layer_sources)),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def build(template: Path, out: Path, uv: Path) -> dict[str, Any]:
    """Build code, layers, zips and manifest.json under `out`; returns the manifest."""
    sam = artifact.load_template(template)
    out.mkdir(parents=True, exist_ok=True)
    code_uri = build_code(sam, template.parent, out)
    layer_sources = build_layers(sam, template.parent, out, uv)
    return write_manifest(sam, out, code_uri, layer_sources)


def upload(template: Path, out: Path, s3: Any, bucket: str, prefix: str = "threadline") -> Path:
    """`sam package`: put the zips and state machine definitions in S3, write out/template.packaged.yaml.

    Keys are the content's SHA-256, so an unchanged artifact is neither uploaded again nor re-deployed.
    """
    sam = artifact.load_template(template)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    by_source = {entry["source"]: out / entry["zip"] for entry in manifest["artifacts"].values()}
    uploaded: dict[Path, str] = {}

    def put(path: Path) -> str:
        if path not in uploaded:
            key = f"{prefix}/{sha256_file(path)}{path.suffix}"
            try:
                s3.head_object(Bucket=bucket, Key=key)
            except s3.exceptions.ClientError:
                s3.upload_file(str(path), bucket, key)
            uploaded[path] = f"s3://{bucket}/{key}"
        return uploaded[path]

    sections = [props for props in sam.get("Globals", {}).values() if isinstance(props, dict)]
    sections += [res.get("Properties", {}) for res in sam.get("Resources", {}).values()]
    for props in sections:
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            value = props.get(key)
            if not isinstance(value, str) or value.startswith("s3://"):
                continue
            built = by_source.get(value)
            props[key] = put(built if built is not None else template.parent / value)
    packaged = out / "template.packaged.yaml"
    packaged.write_text(yaml.safe_dump(sam, sort_keys=False, width=120), encoding="utf-8")
    return packaged


@contextmanager
def local_s3() -> Iterator[Any]:
    """moto's S3 in server mode on a free port of this process, for packaging without AWS."""
    import boto3
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    # The server's request log would drown the build's report.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Build, report the checks that need no interpreter, and package the template."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "package")
    parser.add_argument("--uv", type=Path, default=ROOT / ".local" / "tools" / "bin" / "uv")
    parser.add_argument("--bucket", default=os.environ.get("PACKAGE_BUCKET", ""), help="S3 bucket (real AWS)")
    parser.add_argument("--prefix", default="threadline")
    args = parser.parse_args(argv)

    started = time.monotonic()
    manifest = build(args.template, args.out, args.uv)
    say(checks.size_report(manifest))
    problems = checks.opt_path_problems(manifest, args.out) + checks.size_problems(manifest)
    problems += checks.dev_only_problems(manifest, args.template.parent)
    if args.bucket:
        import boto3

        packaged = upload(args.template, args.out, boto3.client("s3"), args.bucket, args.prefix)
    else:
        with local_s3() as s3:
            s3.create_bucket(Bucket=LOCAL_BUCKET)
            packaged = upload(args.template, args.out, s3, LOCAL_BUCKET, args.prefix)
    say(f"wrote {packaged.relative_to(Path.cwd()) if packaged.is_relative_to(Path.cwd()) else packaged}")
    say(f"packaged in {time.monotonic() - started:.1f} s")
    for problem in problems:
        say(f"error: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
