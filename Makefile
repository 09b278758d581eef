# Two commands matter on a fresh clone: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS := serve,train,aws,client,loadtest,demo,dev

.PHONY: setup demo test lint format typecheck unit clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

# Trains on the committed sample through the SageMaker training contract, serves the model,
# and classifies headlines through the Lambda handler path. Offline, a few minutes on 2 CPUs.
demo: setup
	$(BIN)/python scripts/demo.py

# Lint, type-check and the whole test suite: exactly what .ci/run runs.
test: setup lint typecheck
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: setup
	$(BIN)/mypy app training model_artifact deploy client loadtest lambda scripts benchmarks docker

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
