"""The peer benchmark's TorchServe handler answers what a transformers pipeline answers.

The handler is called as TorchServe's Python worker calls a class entry point
(``initialize(context)`` once, then ``handle(requests, context)`` per batch, each request a
dict whose ``body`` is the raw bytes, or the decoded JSON for application/json); the oracle
is ``transformers.pipeline("text-classification")`` on the same tiny artifact.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import pipeline

from benchmarks.peers.torchserve_handler import TextClassifier
from devtools.artifacts import TINY_MAX_LENGTH

TEXTS = [
    "Fed holds rates as inflation cools",
    "New smartphone chip doubles battery life",
    "Star announces world tour after award win",
    "Measles cases rise in three states",
]


def test_a_batch_of_requests_gets_the_pipelines_answers(tiny_onnx_model_dir: Path) -> None:
    # This artifact's scores differ from text to text (its ONNX file is not used here).
    model_dir = tiny_onnx_model_dir
    handler = TextClassifier()
    context = SimpleNamespace(
        system_properties={"model_dir": str(model_dir)},
        # The test process's own thread count: initialize sets it process-wide.
        model_yaml_config={"handler": {"torch_threads": torch.get_num_threads()}},
    )
    handler.initialize(context)
    requests = [
        {"body": json.dumps({"inputs": TEXTS[0]}).encode()},  # raw bytes
        {"body": {"inputs": TEXTS[1:3]}},  # decoded application/json, a list of texts
        {"data": bytearray(json.dumps({"inputs": TEXTS[3]}).encode())},
    ]

    answers = handler.handle(requests, context)

    classify = pipeline("text-classification", model=str(model_dir), device="cpu")
    expected = [classify(TEXTS[0]), classify(TEXTS[1:3]), classify(TEXTS[3])]
    assert len(answers) == len(requests)
    for got, want in zip(answers, expected, strict=True):
        assert [a["label"] for a in got] == [w["label"] for w in want]
        assert [a["score"] for a in got] == pytest.approx([w["score"] for w in want], abs=1e-5)
    assert handler.max_length == TINY_MAX_LENGTH  # from the artifact, not the tokenizer


def test_the_module_has_one_class_as_torchserve_requires() -> None:
    import inspect

    import benchmarks.peers.torchserve_handler as module

    classes = [
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if obj.__module__ == module.__name__
    ]
    assert classes == [TextClassifier]
