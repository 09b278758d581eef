"""The Lambda's configuration: environment variables read and validated once per container.

A missing or malformed variable fails the cold start with a message naming the variable,
instead of surfacing later as a confusing error on some request. docs/api.md lists them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# API Gateway REST APIs give up on an integration after 29 s; the Lambda must answer first.
# The SageMaker call, retries included, gets all but a second of it (the rest builds and
# returns the answer); one attempt (connect + read timeout) must fit in that budget, and a
# retry starts only while a whole attempt still fits (sagemaker_invoke.py).
API_GATEWAY_TIMEOUT_S = 29.0
REQUEST_BUDGET_S = API_GATEWAY_TIMEOUT_S - 1.0
# The largest body InvokeEndpoint takes, which SageMaker enforces: its "6 MB" is 6 MiB. The
# service model botocore validates every call against (sagemaker-runtime 2017-05-13) says so
# for InvokeEndpoint's Body: shape BodyBlob, {"type": "blob", "max": 6291456}. The model
# server's default body limit is the same number (app/settings.py), and
# tests/contracts/test_body_limits.py ties both to botocore's. Lambda's own "6 MB" is 6 MiB
# too ("For synchronous invocations, the maximum payload size is 6 MB", Lambda API reference,
# Invoke; its payload fields: "Maximum length of 6291456"), but it counts the whole event,
# headers and all, so in practice it refuses a little before this cap.
HARD_MAX_BODY_BYTES = 6 * 1024 * 1024
# SageMaker's rule for endpoint names.
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# Every variable the Lambda reads (infra/template.yaml sets each; docs/api.md lists them).
ENVIRONMENT_VARIABLES = (
    "ENDPOINT_NAME",
    "MAX_BODY_BYTES",
    "MAX_INPUTS",
    "MAX_TEXT_CHARS",
    "CONNECT_TIMEOUT_S",
    "READ_TIMEOUT_S",
    "MAX_ATTEMPTS",
    "RETRY_AFTER_S",
    "CORS_ALLOW_ORIGIN",
    "LOG_LEVEL",
)


class SettingsError(ValueError):
    """An environment variable is missing or invalid; raised at cold start."""


@dataclass(frozen=True)
class Settings:
    endpoint_name: str
    max_body_bytes: int = 1024 * 1024
    max_inputs: int = 256
    # The model server's default cap for max_length 128 (32 characters a token): what the
    # model could see of a text is kept, the rest of a 1 MB text is not sent at all.
    max_text_chars: int = 4096
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 12.0
    max_attempts: int = 2
    retry_after_s: int = 1
    cors_allow_origin: str = "*"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not _ENDPOINT_NAME.match(self.endpoint_name):
            raise SettingsError(f"ENDPOINT_NAME {self.endpoint_name!r} is not an endpoint name")
        if not 1 <= self.max_body_bytes <= HARD_MAX_BODY_BYTES:
            raise SettingsError(f"MAX_BODY_BYTES must be between 1 and {HARD_MAX_BODY_BYTES}")
        if self.max_inputs < 1:
            raise SettingsError("MAX_INPUTS must be at least 1")
        if self.max_text_chars < 1:
            raise SettingsError("MAX_TEXT_CHARS must be at least 1")
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise SettingsError("CONNECT_TIMEOUT_S and READ_TIMEOUT_S must be positive")
        if not 1 <= self.max_attempts <= 5:
            raise SettingsError("MAX_ATTEMPTS must be between 1 and 5")
        one_attempt = self.connect_timeout_s + self.read_timeout_s
        if one_attempt > REQUEST_BUDGET_S:
            raise SettingsError(
                f"CONNECT_TIMEOUT_S + READ_TIMEOUT_S = {one_attempt:g} s must fit in "
                f"{REQUEST_BUDGET_S:g} s, API Gateway's {API_GATEWAY_TIMEOUT_S:g} s integration "
                "timeout less a second for the answer"
            )
        if self.retry_after_s < 1:
            raise SettingsError("RETRY_AFTER_S must be at least 1")
        if not self.cors_allow_origin:
            raise SettingsError("CORS_ALLOW_ORIGIN must not be empty")
        if self.log_level not in _LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        endpoint_name = environ.get("ENDPOINT_NAME", "")
        if not endpoint_name:
            raise SettingsError("ENDPOINT_NAME is required: the SageMaker endpoint to invoke")
        defaults = cls(endpoint_name=endpoint_name)
        return cls(
            endpoint_name=endpoint_name,
            max_body_bytes=_int(environ, "MAX_BODY_BYTES", defaults.max_body_bytes),
            max_inputs=_int(environ, "MAX_INPUTS", defaults.max_inputs),
            max_text_chars=_int(environ, "MAX_TEXT_CHARS", defaults.max_text_chars),
            connect_timeout_s=_float(environ, "CONNECT_TIMEOUT_S", defaults.connect_timeout_s),
            read_timeout_s=_float(environ, "READ_TIMEOUT_S", defaults.read_timeout_s),
            max_attempts=_int(environ, "MAX_ATTEMPTS", defaults.max_attempts),
            retry_after_s=_int(environ, "RETRY_AFTER_S", defaults.retry_after_s),
            cors_allow_origin=environ.get("CORS_ALLOW_ORIGIN", defaults.cors_allow_origin),
            log_level=environ.get("LOG_LEVEL", defaults.log_level).upper(),
        )


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
