"""TorchServe handler for the peer benchmark: a Hugging Face sequence classifier, batched.

TorchServe gathers up to ``batchSize`` requests within ``maxBatchDelay`` ms (the archive's
model-config.yaml) and calls :meth:`TextClassifier.handle` once with all of them; each gets
back what a ``transformers`` text-classification pipeline returns for its ``inputs``: one
``{"label", "score"}`` (the top class, softmax) per text. TorchServe's performance guide for
CPUs: ``torch.set_num_threads(1)`` in the handler, workers from physical cores / 2 upwards
(``handler.torch_threads`` in model-config.yaml overrides the thread count).

The archive carries this file alone: it imports only torch, transformers and the standard
library, and defines exactly one class (TorchServe's rule for a class entry point).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class TextClassifier:
    """TorchServe's custom-handler contract: ``initialize(context)`` once per worker, then
    ``handle(requests, context)`` per batch, returning one result per request."""

    def __init__(self) -> None:
        self.model: Any = None
        self.tokenizer: Any = None
        self.max_length = 512

    def initialize(self, context: Any) -> None:
        import torch

        config = getattr(context, "model_yaml_config", None) or {}
        torch.set_num_threads(int(config.get("handler", {}).get("torch_threads", 1)))
        self.load(Path(context.system_properties["model_dir"]))

    def load(self, model_dir: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        info = model_dir / "artifact.json"  # the project's artifact states its max length
        if info.is_file():
            self.max_length = int(json.loads(info.read_text(encoding="utf-8"))["max_length"])

    def handle(self, requests: list[dict[str, Any]], context: Any) -> list[Any]:
        texts, counts = self.preprocess(requests)
        return self.postprocess(self.inference(texts), counts)

    @staticmethod
    def preprocess(requests: list[dict[str, Any]]) -> tuple[list[str], list[int]]:
        """The texts of all requests in order (``{"inputs": "..."}`` or a list of texts), and
        how many each request holds."""
        texts: list[str] = []
        counts: list[int] = []
        for request in requests:
            body: Any = request.get("data") or request.get("body")
            if isinstance(body, bytes | bytearray):
                body = json.loads(body.decode("utf-8"))
            inputs = body["inputs"] if isinstance(body, dict) else body
            batch = [inputs] if isinstance(inputs, str) else [str(text) for text in inputs]
            texts.extend(batch)
            counts.append(len(batch))
        return texts, counts

    def inference(self, texts: list[str]) -> Any:
        """Class probabilities, texts x labels, from one padded batch."""
        import torch

        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        with torch.inference_mode():
            return self.model(**encoded).logits.float().softmax(dim=-1)

    def postprocess(self, probabilities: Any, counts: list[int]) -> list[Any]:
        """Per request, what the pipeline returns: the top ``{"label", "score"}`` per text."""
        id2label = self.model.config.id2label
        scores, indices = probabilities.max(dim=-1)
        top = [
            {"label": id2label[int(i)], "score": float(s)}
            for s, i in zip(scores.tolist(), indices.tolist(), strict=True)
        ]
        results: list[Any] = []
        start = 0
        for count in counts:
            results.append(top[start : start + count])
            start += count
        return results
