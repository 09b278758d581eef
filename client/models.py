"""Typed predictions and the parsing of the service's response body."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from client.errors import InvalidResponseError


@dataclass(frozen=True, slots=True)
class LabelScore:
    """One class and its probability."""

    label: str
    score: float


@dataclass(frozen=True, slots=True)
class Prediction:
    """The classification of one input text: its ``top_k`` labels, best first."""

    text: str
    labels: tuple[LabelScore, ...]

    @property
    def label(self) -> str:
        """The most likely label."""
        return self.labels[0].label

    @property
    def score(self) -> float:
        """The probability of the most likely label."""
        return self.labels[0].score

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: the text, the best label and score, and all ``top_k`` labels."""
        return {
            "text": self.text,
            "label": self.label,
            "score": self.score,
            "labels": [{"label": item.label, "score": item.score} for item in self.labels],
        }


def build_request_body(texts: Sequence[str], top_k: int) -> bytes:
    """The request body of the HTTP API (the Hugging Face inference format)."""
    payload = {"inputs": list(texts), "parameters": {"top_k": top_k}}
    # ensure_ascii=False keeps non-ASCII headlines at their UTF-8 size, which the payload limit
    # is measured in, instead of inflating them to \\uXXXX escapes.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_predictions(
    body: bytes, texts: Sequence[str], *, request_id: str | None = None
) -> list[Prediction]:
    """Parse a response body: one element per input, a dict or a best-first list of dicts."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise InvalidResponseError("response is not JSON", request_id=request_id) from exc
    if not isinstance(payload, list) or len(payload) != len(texts):
        raise InvalidResponseError(
            f"expected a list of {len(texts)} predictions", request_id=request_id
        )
    return [
        Prediction(text=text, labels=_parse_element(element, request_id))
        for text, element in zip(texts, payload, strict=True)
    ]


def _parse_element(element: Any, request_id: str | None) -> tuple[LabelScore, ...]:
    items = element if isinstance(element, list) else [element]
    labels = tuple(_parse_label_score(item, request_id) for item in items)
    if not labels:
        raise InvalidResponseError("a prediction has no labels", request_id=request_id)
    return labels


def _parse_label_score(item: Any, request_id: str | None) -> LabelScore:
    if isinstance(item, dict):
        label, score = item.get("label"), item.get("score")
        if (
            isinstance(label, str)
            and isinstance(score, int | float)
            and not isinstance(score, bool)
        ):
            return LabelScore(label=label, score=float(score))
    raise InvalidResponseError(
        'a prediction is not {"label": str, "score": number}', request_id=request_id
    )
