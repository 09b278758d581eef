"""Checks on a classification request made before SageMaker is called.

Anything rejected here costs no endpoint time. The checks are the structural ones (size,
count, JSON shape, nesting, no NaN); model-level checks (``top_k`` range) stay with the model
server, whose 4xx answers the handler passes through unchanged. Texts longer than
``MAX_TEXT_CHARS`` are cut to it (truncated, never refused), as the model server does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from api_errors import ApiError
from api_settings import Settings

JSON = "application/json"


@dataclass(frozen=True)
class ClassifyRequest:
    # Forwarded to SageMaker as received, no surprises; re-encoded only to cut long texts.
    body: bytes
    n_inputs: int
    n_chars: int  # total characters of the texts, for logs (the texts themselves never are)
    n_truncated: int = 0  # texts cut to MAX_TEXT_CHARS


def check_media_types(headers: Mapping[str, str]) -> None:
    content_type = headers.get("content-type", "")
    # A missing Content-Type is accepted: the body is parsed as JSON either way.
    if content_type and _media_type(content_type) != JSON:
        raise ApiError("unsupported_media_type", f"Content-Type must be {JSON}")
    accept = headers.get("accept", "")
    if accept and not any(
        _media_type(item) in (JSON, "application/*", "*/*") for item in accept.split(",")
    ):
        raise ApiError("not_acceptable", f"responses are {JSON}; Accept must allow it")


def validate_body(body: bytes, settings: Settings) -> ClassifyRequest:
    if len(body) > settings.max_body_bytes:
        raise ApiError(
            "payload_too_large",
            f"the body is {len(body)} bytes; the limit is {settings.max_body_bytes}",
        )
    if not body:
        raise ApiError("bad_request", 'the body is empty; send {"inputs": ...}')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("bad_request", "the body is not valid UTF-8") from None
    try:
        payload = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:  # [[[[... thousands deep: Python's parser gives up, not a bug of ours
        raise ApiError("bad_request", "the body is nested too deeply") from None
    except ValueError:
        raise ApiError("bad_request", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ApiError("bad_request", "the body must be a JSON object")
    inputs = payload.get("inputs")
    if isinstance(inputs, str):
        texts = [inputs]
    elif isinstance(inputs, list) and all(isinstance(item, str) for item in inputs):
        texts = inputs
    else:
        raise ApiError("bad_request", '"inputs" must be a string or a list of strings')
    if not texts:
        raise ApiError("bad_request", '"inputs" must not be empty')
    if len(texts) > settings.max_inputs:
        raise ApiError(
            "payload_too_large",
            f"{len(texts)} inputs in one request; the limit is {settings.max_inputs}",
        )
    parameters = payload.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise ApiError("bad_request", '"parameters" must be a JSON object')
    n_chars = sum(len(text) for text in texts)
    cap = settings.max_text_chars
    n_truncated = sum(len(text) > cap for text in texts)
    if n_truncated:
        payload["inputs"] = inputs[:cap] if isinstance(inputs, str) else [t[:cap] for t in texts]
        # ASCII escapes: a lone surrogate (legal in JSON's \u escapes) encodes safely.
        body = json.dumps(payload).encode("ascii")
    return ClassifyRequest(body=body, n_inputs=len(texts), n_chars=n_chars, n_truncated=n_truncated)


def _refuse_constant(name: str) -> NoReturn:
    # json accepts NaN and Infinity, which are not JSON (RFC 8259) and the model server refuses.
    raise ApiError("bad_request", f"the body is not valid JSON ({name} is not a JSON number)")


def _media_type(header_value: str) -> str:
    return header_value.split(";", 1)[0].strip().lower()
