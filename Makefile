# The two commands of the quick start: `make run` and `make test`.
# `make run` installs only what the service needs; `make test` adds the test tools (the `test`
# extra); `make lint` adds ruff and mypy (the `dev` extra).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint fake-upstream bench clean claude-code

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed-run

## run: set up the virtualenv if needed and serve on 127.0.0.1:8000 (console at /ui)
run: $(VENV)/.installed-run
	$(BIN)/bigthree serve

## claude-code: add the claude-code extra (Claude Agent SDK + the Claude Code CLI, ~180 MB) for
## claude_code agents; `make test` installs it too (the tests run the real CLI)
claude-code: $(VENV)/.installed-claude-code

$(VENV)/.installed-claude-code: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[claude-code]'
	touch $@ $(VENV)/.installed-run

## test: the whole test suite (unit, integration, e2e; browser tests need /usr/bin/chromium)
test: $(VENV)/.installed-test
	$(BIN)/pytest

## lint: ruff (lint and format) and mypy --strict, as CI runs them
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy --strict app

## fake-upstream: the scriptable fake provider server on 127.0.0.1:9100
fake-upstream: $(VENV)/.installed-run
	$(BIN)/bigthree fake-upstream --port 9100

## bench: the benchmark table (loopback only)
bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache test-artifacts
