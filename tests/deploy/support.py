"""Helpers for the deploy tests: recorders of AWS calls, settings, CLI flags."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy.aws import AwsClients
from deploy.settings import DeploySettings

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/NewsClassifierSageMaker"
BUCKET = "newsclf-test-bucket"
IMAGE_TAG = "0.1.0-abc123"


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]


@dataclass
class CallLog:
    """Every API call the clients made, in order, with the parameters botocore validated."""

    calls: list[Call] = field(default_factory=list)

    def record(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        self.calls.append(Call(service, model.name, dict(params)))

    def operations(self, service: str | None = None) -> list[str]:
        return [c.operation for c in self.calls if service in (None, c.service)]

    def params(self, operation: str) -> dict[str, Any]:
        matching = [c.params for c in self.calls if c.operation == operation]
        assert len(matching) == 1, f"{operation} called {len(matching)} times"
        return matching[0]


@dataclass
class SentRequests:
    """The JSON bodies that went over the wire to the server, by ``X-Amz-Target`` operation."""

    bodies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def record(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target")
        if target and request.body:
            operation = (target.decode() if isinstance(target, bytes) else target).split(".")[-1]
            self.bodies.setdefault(operation, []).append(json.loads(request.body))


@dataclass
class Recorded:
    aws: AwsClients
    calls: CallLog
    sent: SentRequests


def make_settings(**overrides: Any) -> DeploySettings:
    values: dict[str, Any] = {
        "region": REGION,
        "account_id": ACCOUNT,
        "role_arn": ROLE_ARN,
        "bucket": BUCKET,
        "image_tag": IMAGE_TAG,
    }
    values.update(overrides)
    return DeploySettings(**values)


def common_flags(moto_url: str, *extra: str) -> list[str]:
    """The flags every CLI call in these tests passes (no config file, no environment)."""
    return [
        "--region", REGION,
        "--endpoint-url", moto_url,
        "--account-id", ACCOUNT,
        "--role-arn", ROLE_ARN,
        "--bucket", BUCKET,
        "--image-tag", IMAGE_TAG,
        *extra,
    ]  # fmt: skip


def factory(aws: AwsClients) -> Any:
    """An AWS client factory for ``cli.main`` that returns the recorded clients."""
    return lambda _settings: aws


def names(items: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    return sorted(str(item[key]) for item in items)
