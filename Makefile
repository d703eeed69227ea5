# The two commands of the README. Both set up everything on a fresh machine: a virtual
# environment in .venv (re-installed when pyproject.toml changes), then Kafka and
# Elasticsearch from Maven Central (downloaded once, started on 127.0.0.1, no Docker).
#
#   make demo   run the whole pipeline on the built-in sample news sites
#   make test   lint, type check, unit and integration tests against real Kafka and Elasticsearch

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint stack-up stack-down bench clean

# pip runs quietly (its full output is hundreds of lines); these lines say what the
# minute of silence is.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating the virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing newsflow and its dependencies into $(VENV) (about a minute the first time)..."
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@echo "installed"
	@touch $@

demo: $(STAMP)
	$(BIN)/newsflow demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

stack-up: $(STAMP)
	$(BIN)/newsflow stack up

stack-down: $(STAMP)
	$(BIN)/newsflow stack down

clean:
	-$(BIN)/newsflow stack down
	rm -rf $(VENV) .stack .stack-test .stack-secure-test .mypy_cache .ruff_cache .pytest_cache
