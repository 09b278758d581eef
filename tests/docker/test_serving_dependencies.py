"""The serving images install the `serve` extra only: no training-only package gets in.

The dependency set is resolved from the `serve` extra's requirement lines (the inputs of
docker/locks/serve.txt, which the Dockerfile installs) through the installed distributions'
metadata, the same closure
`pip install --dry-run --report` gives (50 distributions with torch on 2026-11-23; 53 with
onnxruntime, see docs/containers.md). That the set still serves is shown by
test_entrypoint.py::test_serve_answers_ping_and_invocations, which runs the server in a
virtual environment holding exactly this set.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.docker.support import TRAINING_ONLY, dependency_closure, image_requirements


def test_the_serving_closure_has_no_training_only_package() -> None:
    closure = dependency_closure([*image_requirements("serve"), "torch"])
    assert {"torch", "transformers", "fastapi", "uvicorn", "tokenizers"} <= set(closure)
    assert not set(closure) & {canonicalize_name(name) for name in TRAINING_ONLY}


def test_the_training_closure_is_where_they_are() -> None:
    # The same resolution finds them where they belong, so the check above can fail.
    closure = dependency_closure([*image_requirements("train"), "torch"])
    assert {"scikit-learn", "matplotlib", "pyarrow"} <= set(closure)


def test_training_only_modules_cannot_be_imported_in_the_serving_environment(
    serve_venv: Path,
) -> None:
    probe = (
        "import importlib.util, sys\n"
        "missing = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]\n"
        "print(' '.join(missing))\n"
    )
    modules = ["sklearn", "matplotlib", "pyarrow", "sagemaker", "boto3", "locust", "training"]
    result = subprocess.run(
        [str(serve_venv / "bin" / "python"), "-I", "-c", probe, *modules],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.split() == modules
