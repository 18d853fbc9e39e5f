# editq: `make run` runs the whole stack locally, `make test` runs every test.
# Both install what is missing first (a virtualenv in .venv; redis-server and docker-compose
# through apt when absent and running as root; `make test` adds chromium for the browser test).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint typecheck unit integration bench system-deps deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

deps: $(STAMP) system-deps

system-deps:
	@./ops/install-system-deps.sh

run: deps
	$(BIN)/editq run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not integration" -q

integration: deps
	$(BIN)/pytest -m integration -q

# Two pytest processes (pytest-xdist), each test file on one of them with its own private
# Redis, S3 endpoint and simulator: most tests wait on real processes, so two share 2 cores well.
TEST_WORKERS ?= 2

test: deps lint typecheck
	@./ops/install-system-deps.sh --tests
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: deps
	$(BIN)/python -m editq.ops.bench

clean:
	rm -rf $(VENV) .editq .pytest_cache .mypy_cache .ruff_cache
