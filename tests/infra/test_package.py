"""The packaged artifact (build/package, `make package`) as Lambda would load it, and its checks' messages."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.build import artifact, checks, package
from tests.infra.conftest import PACKAGE_DIR, REPO_ROOT, SIZE_REPORT, TEMPLATE
from threadline.api.web import WEB_DIR

# Needs the packaged artifact: `make test` packages first (about 15 s when the layers are unchanged), so the
# artifact that deploys is checked on every run, not only in CI's slow tier.
pytestmark = pytest.mark.infra


def _entries(sam: dict[str, Any], out: Path = PACKAGE_DIR) -> dict[str, Any]:
    return package.function_entries(sam, out, ["DependenciesLayer", "ModelLayer"])


def test_every_opt_path_of_every_function_is_in_one_of_its_layers(package_manifest: dict[str, Any]) -> None:
    # Given the packaged functions, every one of which embeds or may embed (EMBEDDING_TOKENIZER_PATH)
    functions = package_manifest["functions"]
    assert {entry["environment"]["EMBEDDING_TOKENIZER_PATH"] for entry in functions.values()} == {"/opt/tokenizer.json"}
    assert {entry["environment"]["EMBEDDING_MODEL_PATH"] for entry in functions.values()} == {
        "/opt/all-MiniLM-L6-v2.int8.onnx"
    }

    # When the /opt paths of their environments are looked up in their layers
    problems = checks.opt_path_problems(package_manifest, PACKAGE_DIR)

    # Then each one is there: the tokenizer and the built model in ModelLayer as Lambda unzips it, the exec
    # wrapper in the Web Adapter
    assert problems == []
    assert (PACKAGE_DIR / "layers" / "ModelLayer" / "tokenizer.json").stat().st_size > 400_000
    assert (PACKAGE_DIR / "layers" / "ModelLayer" / "all-MiniLM-L6-v2.int8.onnx").stat().st_size > 20_000_000
    assert functions["ChatFunction"]["environment"]["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"


def test_every_handler_imports_from_the_code_and_layers_alone(
    package_manifest: dict[str, Any], lambda_python: Path
) -> None:
    # Given the artifact and a python3.12 that sees nothing of the dev virtualenv (nor its own site-packages)
    assert len(package_manifest["functions"]) >= 10

    # When each function's Handler (ChatFunction: run.sh and the app it serves) is imported as Lambda would
    problems = checks.handler_problems(package_manifest, PACKAGE_DIR, lambda_python)

    # Then every import succeeds from /var/task and /opt only, and the artifact is left as built (no bytecode in it)
    assert problems == []
    assert [p for folder in ("code", "layers") for p in (PACKAGE_DIR / folder).rglob("__pycache__")] == []


def test_the_code_leaves_the_dev_only_packages_out_and_no_handler_reaches_them(
    package_manifest: dict[str, Any],
) -> None:
    # Given the artifact's code folder, built without the CLI, the local cloud and the demo seeder
    code = PACKAGE_DIR / "code" / "threadline"
    assert (code / "handlers").is_dir()
    assert [folder for folder in package.DEV_ONLY if (PACKAGE_DIR / "code" / folder).exists()] == []
    assert not (code / "adapters" / "postgres" / "seed.py").exists()

    # When every handler's imports, those inside functions included, are followed through the source
    problems = checks.dev_only_problems(package_manifest, REPO_ROOT)

    # Then none reaches a module the code artifact leaves out (and the handlers import: the test above)
    assert package_manifest["artifacts"]["code"]["left_out"] == list(package.DEV_ONLY)
    assert problems == []


def test_a_handler_reaching_a_dev_only_package_names_the_function_and_the_import_chain(tmp_path: Path) -> None:
    # Given a copy of the source whose sweeper imports the seeder, inside a function (a lazy import)
    shutil.copytree(REPO_ROOT / "functions", tmp_path / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    sweeper = tmp_path / "functions" / "threadline" / "domain" / "sweeper.py"
    sweeper.write_text(sweeper.read_text() + "\n\ndef _reseed() -> None:\n    from threadline.local import seed\n")
    manifest = {
        "artifacts": {"code": {"source": "functions", "left_out": list(package.DEV_ONLY)}},
        "functions": {
            "SweeperFunction": {"handler": "threadline.handlers.sweeper.lambda_handler"},
            "ChatFunction": {"handler": "run.sh"},
            "MigrateFunction": {"handler": "threadline.handlers.migrate.lambda_handler"},
        },
    }

    # When the handlers' imports are followed
    problems = checks.dev_only_problems(manifest, tmp_path)

    # Then each function that reaches it is named with the chain from its handler (the chat through run.sh's app
    # and the container), and the migrator, which never loads the sweeper, is not
    assert problems == [
        "ChatFunction: threadline.api.app -> threadline.bootstrap -> threadline.domain.sweeper -> "
        "threadline.local.seed, left out of the code artifact",
        "SweeperFunction: threadline.handlers.sweeper -> threadline.domain.sweeper -> threadline.local.seed, "
        "left out of the code artifact",
    ]


def test_the_artifact_ships_the_migrations_where_settings_find_them(
    package_manifest: dict[str, Any], lambda_python: Path
) -> None:
    # Given the artifact's code folder, laid out as /var/task
    entry = package_manifest["functions"]["ApiFunction"]
    code = PACKAGE_DIR / "code"
    view = checks.opt_view([PACKAGE_DIR / p for p in entry["layers"]], PACKAGE_DIR / ".opt" / "migrations-test")
    env = checks.lambda_environment(entry, code, view, package_manifest["runtime"], PACKAGE_DIR / ".pycache")

    # When Settings resolves its migrations folder there
    probe = "from threadline.settings import Settings; print(Settings().migrations_dir)"
    run = subprocess.run([str(lambda_python), "-S", "-c", probe], env=env, capture_output=True, text=True, check=True)

    # Then it is the shipped copy, holding every migration of the repository
    shipped = Path(run.stdout.strip())
    assert shipped == code / "migrations"
    repo = TEMPLATE.parent / "infra" / "db" / "migrations"
    assert sorted(p.name for p in shipped.glob("*.sql")) == sorted(p.name for p in repo.glob("*.sql")) != []


def test_the_embedding_model_runs_from_the_layers_at_the_functions_model_paths(
    package_manifest: dict[str, Any], lambda_python: Path
) -> None:
    # Given ClassifierFunction's environment, /opt mapped to its layers as Lambda unzips them
    entry = package_manifest["functions"]["ClassifierFunction"]
    view = checks.opt_view([PACKAGE_DIR / p for p in entry["layers"]], PACKAGE_DIR / ".opt" / "embed-test")
    env = checks.lambda_environment(
        entry, PACKAGE_DIR / "code", view, package_manifest["runtime"], PACKAGE_DIR / ".pycache"
    )

    # When the embedder is built from the settings and embeds a sentence
    probe = (
        "from threadline.adapters.embeddings import OnnxMiniLM; from threadline.settings import Settings;"
        "s = Settings(); v = OnnxMiniLM(s.embedding_tokenizer_path, s.embedding_model_path).embed(['refund policy']);"
        "print(s.embedding_tokenizer_path, s.embedding_model_path, v.shape, round(float((v * v).sum()), 3))"
    )
    run = subprocess.run([str(lambda_python), "-S", "-c", probe], env=env, capture_output=True, text=True, timeout=300)

    # Then the tokenizer and the built model both came from ModelLayer: one unit vector of 384
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [
        str(view / "tokenizer.json"),
        str(view / "all-MiniLM-L6-v2.int8.onnx"),
        "(1,",
        "384)",
        "1.0",
    ]


def test_every_function_stays_under_lambdas_unzipped_limit(
    package_manifest: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    # Given each function's code and local layers, unzipped
    report = checks.size_report(package_manifest)
    request.config.stash[SIZE_REPORT] = report

    # When they are measured against Lambda's 250 MiB
    problems = checks.size_problems(package_manifest)

    # Then none is over, and the figures are reported (terminal summary)
    assert problems == [], report
    sizes = {entry["unzipped_bytes"] for entry in package_manifest["functions"].values()}
    assert all(100_000_000 < size <= artifact.UNZIPPED_LIMIT_BYTES for size in sizes), report


def test_a_wrong_opt_path_names_the_function_the_variable_and_the_path(package_manifest: dict[str, Any]) -> None:
    # Given the template with ClassifierFunction's tokenizer where the model layer does not put it (the old bug)
    sam = artifact.load_template(TEMPLATE)
    env = sam["Resources"]["ClassifierFunction"]["Properties"]["Environment"]["Variables"]
    env["EMBEDDING_TOKENIZER_PATH"] = "/opt/model/tokenizer.json"

    # When the packaged functions are checked
    problems = checks.opt_path_problems({"functions": _entries(sam)}, PACKAGE_DIR)

    # Then exactly that function fails, naming the variable, the path and where the file really is
    assert problems == [
        "ClassifierFunction: EMBEDDING_TOKENIZER_PATH=/opt/model/tokenizer.json is in none of its layers "
        "(DependenciesLayer, ModelLayer); the layers have /opt/tokenizer.json"
    ]


def test_a_handler_that_does_not_exist_names_the_function_and_the_module(
    package_manifest: dict[str, Any], lambda_python: Path
) -> None:
    # Given the template with ImportFunction's handler in a module the code does not have
    sam = copy.deepcopy(artifact.load_template(TEMPLATE))
    sam["Resources"]["ImportFunction"]["Properties"]["Handler"] = "threadline.handlers.nope.lambda_handler"
    entries = _entries(sam)

    # When that function's handler is imported as Lambda would
    only = {"runtime": "python3.12", "functions": {"ImportFunction": entries["ImportFunction"]}}
    problems = checks.handler_problems(only, PACKAGE_DIR, lambda_python)

    # Then the failure names the function, the handler and the missing module
    assert len(problems) == 1
    assert problems[0].startswith("ImportFunction: handler threadline.handlers.nope.lambda_handler")
    assert "No module named 'threadline.handlers.nope'" in problems[0]


def test_a_dependency_missing_from_the_layers_is_not_hidden_by_the_dev_environment(
    package_manifest: dict[str, Any], lambda_python: Path
) -> None:
    # Given MetricsFunction with its model layer only (powertools, pydantic and the rest are in the dev venv)
    entry = dict(package_manifest["functions"]["MetricsFunction"], layers=["layers/ModelLayer"])

    # When its handler is imported
    problems = checks.handler_problems(
        {"runtime": "python3.12", "functions": {"MetricsFunction": entry}}, PACKAGE_DIR, lambda_python
    )

    # Then it fails as it would in Lambda
    assert len(problems) == 1
    assert problems[0].startswith("MetricsFunction: handler threadline.handlers.metrics.lambda_handler")
    assert "ModuleNotFoundError" in problems[0]


def test_a_run_sh_that_is_not_executable_names_the_function(
    package_manifest: dict[str, Any], lambda_python: Path, tmp_path: Path
) -> None:
    # Given a copy of the code whose run.sh lost its executable bit (in the folder and in the zip)
    shutil.copytree(PACKAGE_DIR / "code", tmp_path / "code")
    (tmp_path / "code" / "run.sh").chmod(0o644)
    package.zip_tree(tmp_path / "code", tmp_path / "code.zip")
    (tmp_path / "layers").symlink_to(PACKAGE_DIR / "layers")
    entry = package_manifest["functions"]["ChatFunction"]

    # When ChatFunction's handler is checked
    only = {"runtime": "python3.12", "functions": {"ChatFunction": entry}}
    problems = checks.handler_problems(only, tmp_path, lambda_python)

    # Then both places are named, and the app run.sh serves still imports
    assert problems == [
        "ChatFunction: handler script run.sh is not executable",
        "ChatFunction: run.sh is not executable in code.zip",
    ]


def test_a_module_the_api_imports_on_demand_is_checked_with_its_handler(
    package_manifest: dict[str, Any], lambda_python: Path, tmp_path: Path
) -> None:
    # Given a copy of the code whose feedback router, which the app imports on the first request for it
    # (api/routing.py), needs a package no layer has
    shutil.copytree(PACKAGE_DIR / "code", tmp_path / "code")
    router = tmp_path / "code" / "threadline" / "api" / "routers" / "feedback.py"
    router.write_text(router.read_text() + "\nimport not_in_any_layer  # noqa: E402, F401\n")
    package.zip_tree(tmp_path / "code", tmp_path / "code.zip")
    (tmp_path / "layers").symlink_to(PACKAGE_DIR / "layers")
    functions = {
        name: package_manifest["functions"][name] for name in ("ApiFunction", "ChatFunction", "SweeperFunction")
    }

    # When the handlers are checked
    problems = checks.handler_problems({"runtime": "python3.12", "functions": functions}, tmp_path, lambda_python)

    # Then both functions that serve the API fail on that module, though importing their handlers never loads it,
    # and the sweeper, which has no such module, passes
    assert len(problems) == 2, problems
    for name, problem in zip(("ApiFunction", "ChatFunction"), problems, strict=True):
        assert problem.startswith(f"{name}: handler "), problem
        assert problem.endswith(
            "threadline.api.routers.feedback, imported on demand, does not import: "
            "ModuleNotFoundError: No module named 'not_in_any_layer'"
        ), problem


def test_run_shs_http_implementation_is_imported_and_an_unknown_one_named(tmp_path: Path) -> None:
    # Given run.sh scripts that name uvicorn's httptools implementation, and one that names no such thing
    def script(http: str) -> Path:
        (tmp_path / "code").mkdir(exist_ok=True)
        path = tmp_path / "code" / "run.sh"
        path.write_text(f"#!/bin/bash\nexec python3 -m uvicorn --factory threadline.api.app:create_app --http {http}\n")
        path.chmod(0o755)
        package.zip_tree(tmp_path / "code", tmp_path / "code.zip")
        return path

    # When their targets are read
    problems, targets = checks._script_targets("ChatFunction", script("httptools"), tmp_path / "code.zip")
    unknown, _ = checks._script_targets("ChatFunction", script("fast"), tmp_path / "code.zip")

    # Then the implementation's module is among what must import from the layers, and the unknown one is named
    assert problems == [] and targets[-1] == "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol"
    assert unknown == ["ChatFunction: run.sh asks uvicorn for an unknown --http fast"]
    # And the shipped run.sh asks for httptools, so the package check imports it as Lambda would
    assert "--http httptools" in (REPO_ROOT / "functions" / "run.sh").read_text()


def test_a_function_over_the_limit_names_the_function_and_its_size(tmp_path: Path) -> None:
    # Given code of exactly Lambda's limit (a sparse file) and empty layers
    (tmp_path / "code").mkdir()
    with (tmp_path / "code" / "big.bin").open("wb") as big:
        big.truncate(artifact.UNZIPPED_LIMIT_BYTES)
    for layer in ("DependenciesLayer", "ModelLayer"):
        (tmp_path / "layers" / layer).mkdir(parents=True)
    (tmp_path / "layers" / "ModelLayer" / "tokenizer.json").write_text("{}")

    # When the functions are measured
    problems = checks.size_problems({"functions": _entries(artifact.load_template(TEMPLATE), tmp_path)})

    # Then every function is over by the tokenizer's two bytes, each named with its size
    assert f"ApiFunction: {artifact.UNZIPPED_LIMIT_BYTES + 2:,} bytes unzipped" in problems[0]
    assert len(problems) == len(artifact.functions(artifact.load_template(TEMPLATE)))


def test_the_packaged_template_points_at_the_uploaded_artifacts(packaged_template: Path, aws_endpoint: str) -> None:
    # Given template.packaged.yaml, written after uploading to the local cloud's S3
    import boto3

    packaged = artifact.load_template(packaged_template)
    manifest = json.loads((PACKAGE_DIR / "manifest.json").read_text())
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")

    # When each of its local URIs is followed
    uris = {
        (owner, key): props[key]
        for owner, props in [("Globals", packaged["Globals"]["Function"])]
        + [(lid, res.get("Properties", {})) for lid, res in packaged["Resources"].items()]
        for key in ("CodeUri", "ContentUri", "DefinitionUri")
        if key in props
    }
    digests = {}
    for where, uri in uris.items():
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        digests[where] = hashlib.sha256(body).hexdigest()

    # Then they name the code, both layers and the state machine, each object being the built file
    by_zip = {entry["zip"]: entry["sha256"] for entry in manifest["artifacts"].values()}
    assert digests[("Globals", "CodeUri")] == by_zip["code.zip"]
    assert digests[("DependenciesLayer", "ContentUri")] == by_zip["layers/DependenciesLayer.zip"]
    assert digests[("ModelLayer", "ContentUri")] == by_zip["layers/ModelLayer.zip"]
    asl = TEMPLATE.parent / "infra" / "statemachines" / "backfill.asl.json"
    assert digests[("BackfillStateMachine", "DefinitionUri")] == package.sha256_file(asl)


def test_the_artifact_ships_the_widget_the_console_and_the_docs_assets_as_built(
    package_manifest: dict[str, Any],
) -> None:
    # Given what `make web` built and the artifact's code folder (laid out as /var/task)
    built = WEB_DIR
    shipped = PACKAGE_DIR / "code" / "threadline" / "web_static"
    files = sorted(p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file())

    # Then the artifact holds the same files, byte for byte, where the API serves them from
    assert {"widget.js", "console/index.html", "console/app.js", "console/app.css"} <= set(files)
    assert {"docs/swagger-ui-bundle.js", "docs/swagger-ui.css", "docs/favicon-32x32.png"} <= set(files)
    assert [(f, (shipped / f).read_bytes()) for f in files] == [(f, (built / f).read_bytes()) for f in files]
    # and they stay small (the artifact's headroom under Lambda's limit is a few MB): our own widget and console
    # under 300 KB, and of Swagger UI only the three files /docs loads, no source maps (~2 MB, not ~10)
    ours = [f for f in files if not f.startswith("docs/")]
    assert sum((built / f).stat().st_size for f in ours) < 300 * 1024
    assert sum((built / f).stat().st_size for f in files) - sum((built / f).stat().st_size for f in ours) < 2.5e6
