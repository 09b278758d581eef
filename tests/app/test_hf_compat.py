"""The Hugging Face format answered as the transformers pipeline answers it.

A client of a Hugging Face text-classification endpoint sends ``{"inputs", "parameters"}``,
and the endpoint calls ``pipeline(inputs, **parameters)``: the installed transformers'
``TextClassificationPipeline`` on the same tiny model is the oracle for every shape below.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devtools.artifacts import build_tiny_artifact
from tests.app.support import started_client, tiny_settings

TRANSFORMERS_5 = pytest.mark.skipif(
    int(version("transformers").split(".")[0]) < 5, reason="transformers 5's pipeline semantics"
)
TEXT = "Fed raises interest rates for the third time this year"
TEXTS = [TEXT, "Ebola outbreak spreads to Nigeria", "Apple unveils a bigger iPhone"]

# (inputs, parameters): the body is {"inputs": inputs, "parameters": parameters}.
CASES: list[Any] = [
    (TEXT, {}),
    (TEXT, {"top_k": 1}),
    (TEXT, {"top_k": 2}),
    (TEXT, {"top_k": None}),
    (TEXT, {"top_k": 99}),
    (TEXTS, {}),
    (TEXTS, {"top_k": 1}),
    (TEXTS, {"top_k": 3}),
    ([TEXT], {}),
    ([TEXT], {"top_k": None}),
    (TEXT, {"function_to_apply": "sigmoid"}),
    (TEXT, {"function_to_apply": "none", "top_k": 2}),
    (TEXT, {"function_to_apply": "softmax", "top_k": None}),
    (TEXTS, {"function_to_apply": "NONE"}),
    (TEXTS, {"function_to_apply": "Sigmoid", "top_k": None}),
    (TEXTS, {"function_to_apply": None, "top_k": 2}),
    # transformers 5 dropped return_all_scores (4.x answered every label, nested): ignored.
    pytest.param(TEXT, {"return_all_scores": True}, marks=TRANSFORMERS_5),
    pytest.param(TEXTS, {"return_all_scores": False, "top_k": 2}, marks=TRANSFORMERS_5),
    (TEXT, {"truncation": True}),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Scores that differ clearly between labels, so the order of the answers is checked too.
    return build_tiny_artifact(tmp_path_factory.mktemp("hf") / "model", initializer_range=0.5)


@pytest.fixture(scope="module")
def pipeline(model_dir: Path) -> Any:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TextClassificationPipeline,
    )

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    return TextClassificationPipeline(model=model.eval(), tokenizer=tokenizer)


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[TestClient]:
    client = started_client(tiny_settings(model_dir, runtime="torch"))
    yield client
    client.__exit__(None, None, None)


def assert_same(ours: Any, theirs: Any, where: str = "body") -> None:
    """The same nesting, labels and order; scores within float32 rounding."""
    if isinstance(theirs, list):
        assert isinstance(ours, list), f"{where}: {ours!r} is not a list like {theirs!r}"
        assert len(ours) == len(theirs), f"{where}: {ours!r} vs {theirs!r}"
        for index, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(mine, reference, f"{where}[{index}]")
    else:
        assert isinstance(ours, dict), f"{where}: {ours!r} is not a dict like {theirs!r}"
        assert set(ours) == {"label", "score"}, where
        assert ours["label"] == theirs["label"], f"{where}: {ours!r} vs {theirs!r}"
        assert ours["score"] == pytest.approx(theirs["score"], rel=1e-5, abs=1e-6), where


def case_id(case: Any) -> str:
    inputs, parameters = case.values if hasattr(case, "values") else case
    return f"{'str' if isinstance(inputs, str) else f'list{len(inputs)}'}-{parameters}"


@pytest.mark.parametrize(("inputs", "parameters"), CASES, ids=[case_id(c) for c in CASES])
def test_every_shape_matches_the_transformers_pipeline(
    server: TestClient, pipeline: Any, inputs: str | list[str], parameters: dict[str, Any]
) -> None:
    expected = pipeline(inputs, **parameters)
    response = server.post("/invocations", json={"inputs": inputs, "parameters": parameters})
    assert response.status_code == 200, response.text
    assert_same(response.json(), expected)


def test_a_body_without_parameters_is_the_pipeline_without_arguments(
    server: TestClient, pipeline: Any
) -> None:
    for inputs in (TEXT, TEXTS):
        assert_same(server.post("/invocations", json={"inputs": inputs}).json(), pipeline(inputs))


def test_the_documented_default_function_is_softmax(server: TestClient) -> None:
    # transformers documents "default" but its pipeline raises KeyError on it; we honour the
    # documentation (softmax for a model with several labels).
    def answer(function: str) -> Any:
        body = {"inputs": TEXTS, "parameters": {"function_to_apply": function, "top_k": None}}
        return server.post("/invocations", json=body).json()

    assert answer("default") == answer("softmax")


@pytest.mark.parametrize(
    "parameters",
    [
        {"function_to_apply": "tanh"},
        {"function_to_apply": 1},
        {"return_all_scores": "yes"},
        {"top_k": 0},
        {"top_k": "2"},
    ],
    ids=repr,
)
def test_invalid_parameters_are_400(server: TestClient, parameters: dict[str, Any]) -> None:
    response = server.post("/invocations", json={"inputs": TEXT, "parameters": parameters})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"
