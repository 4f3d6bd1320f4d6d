# The two set-up commands of the README: `make run` and `make test`.
# Each creates its own virtual environment in .venv on first use.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: run test check bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/homelab up $(ARGS)

test: $(BIN)/.installed
	hack/test.sh $(ARGS)

check: $(BIN)/.installed
	hack/check.sh

bench: $(BIN)/.installed
	$(BIN)/python hack/bench/plan_bench.py

clean:
	rm -rf $(VENV) build dist *.egg-info
