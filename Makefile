# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint fake-upstream bench clean claude-code

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## run: set up the virtualenv if needed and serve on 127.0.0.1:8000
run: $(BIN)/.installed
	$(BIN)/bigthree serve

# the claude-code extra (Claude Agent SDK + the Claude Code CLI, ~180 MB): `make test` runs
# claude_code agents for real, so it installs it; `make run` does not need it
$(BIN)/.claude-code: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev,claude-code]'
	touch $@

## claude-code: install the claude-code extra into the virtualenv (for claude_code agents)
claude-code: $(BIN)/.claude-code

## test: the whole test suite (unit, integration, e2e), the claude-code extra included
test: $(BIN)/.installed $(BIN)/.claude-code
	$(BIN)/pytest

## lint: ruff and mypy --strict (which reads the claude-code extra's types)
lint: $(BIN)/.installed $(BIN)/.claude-code
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app

## fake-upstream: the scriptable fake provider server on 127.0.0.1:9100
fake-upstream: $(BIN)/.installed
	$(BIN)/bigthree fake-upstream --port 9100

## bench: the benchmark table (loopback only)
bench: $(BIN)/.installed
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
