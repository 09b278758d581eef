"""The SageMaker hosting contract, serving side, in one place.

SageMaker forwards only ``Content-Type``, ``Accept`` and ``X-Amzn-SageMaker-Custom-Attributes``
to the container. The custom attributes are an opaque string; this server reads
``key=value`` pairs separated by ``;`` or ``,`` and ignores keys it does not know:

- ``request_id=<id>``: the request id to log and echo (letters, digits, ``._:/-``, <= 128);
- ``timeout_ms=<int>``: a deadline shorter than ``SERVE_REQUEST_TIMEOUT_S`` for this request;
- ``top_k=<int>|all``: labels per input, for bodies that cannot say it (CSV, JSON lines);
  a JSON body's ``parameters.top_k`` wins.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from app.errors import BadRequestError
from app.schemas import ExecutionParameters
from app.settings import TRANSFORM_MAX_PAYLOAD_MB, Settings

if TYPE_CHECKING:
    from app.inference import Limits

CUSTOM_ATTRIBUTES = "x-amzn-sagemaker-custom-attributes"
REQUEST_ID = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
_MIB = 1024 * 1024

# Nothing is downloaded at serve time: the artifact is all the model there is.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def set_offline_env() -> None:
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)


@dataclass(frozen=True)
class CustomAttributes:
    request_id: str | None = None
    timeout_s: float | None = None
    # As the header says it: a count, "all", or None where it does not set top_k.
    top_k: int | Literal["all"] | None = None


def valid_request_id(value: str | None) -> str | None:
    return value if value is not None and _REQUEST_ID.fullmatch(value) else None


def parse_custom_attributes(header: str | None) -> CustomAttributes:
    if not header:
        return CustomAttributes()
    pairs: dict[str, str] = {}
    for part in re.split(r"[;,]", header):
        key, sep, value = part.partition("=")
        if sep:
            pairs[key.strip().lower()] = value.strip()
    timeout_s: float | None = None
    if "timeout_ms" in pairs:
        timeout_s = _positive_int(pairs["timeout_ms"], "timeout_ms") / 1000
    top_k: int | Literal["all"] | None = None
    if "top_k" in pairs:
        top_k = "all" if pairs["top_k"].lower() == "all" else _positive_int(pairs["top_k"], "top_k")
    return CustomAttributes(
        request_id=valid_request_id(pairs.get("request_id")),
        timeout_s=timeout_s,
        top_k=top_k,
    )


def _positive_int(value: str, name: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1 or len(value) > 9:
        raise BadRequestError(f"custom attribute {name} must be a positive integer")
    return int(value)


def execution_parameters(settings: Settings, limits: Limits) -> ExecutionParameters:
    """What this server takes in a Batch Transform job: the job's own values where it set
    them (``SAGEMAKER_*``), else as many requests at once as the queue holds at the request
    limit (1 to 4), MULTI_RECORD (long bodies are classified in chunks), and payloads as large
    as the body limit, within SageMaker's MaxConcurrentTransforms x MaxPayloadInMB <= 100."""
    concurrent = settings.max_concurrent_transforms or max(
        1, min(4, limits.queue_size // limits.max_instances)
    )
    payload_mb = max(
        1, min(settings.max_body_bytes // _MIB, TRANSFORM_MAX_PAYLOAD_MB // concurrent)
    )
    return ExecutionParameters(
        MaxConcurrentTransforms=concurrent,
        BatchStrategy=settings.batch_strategy or "MULTI_RECORD",
        MaxPayloadInMB=settings.max_payload_in_mb or payload_mb,
    )
