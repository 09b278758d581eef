"""The largest request body is one number across the deployables: what SageMaker enforces for
InvokeEndpoint, 6 MiB. The model server refuses more by default (413), the Lambda's
``MAX_BODY_BYTES`` may not be set above it, the local InvokeEndpoint stand-in refuses more as
SageMaker does, and the client's default batches stay under it. The number is read from the
service model botocore validates every call against, not from a copy kept here
(lambda/api_settings.py quotes the passages behind it).
"""

from __future__ import annotations

import botocore.session
import pytest

from api_settings import HARD_MAX_BODY_BYTES, Settings, SettingsError
from app.settings import SAGEMAKER_MAX_BODY_BYTES
from client.base import DEFAULT_MAX_PAYLOAD_BYTES
from devtools.local_api.runtime import SAGEMAKER_MAX_BODY_BYTES as STAND_IN_MAX_BODY_BYTES


def invoke_endpoint_body_limit() -> int:
    service = botocore.session.get_session().get_service_model("sagemaker-runtime")
    body = service.operation_model("InvokeEndpoint").input_shape.members["Body"]
    limit: int = body.metadata["max"]
    return limit


def test_sagemakers_limit_is_six_mebibytes() -> None:
    assert invoke_endpoint_body_limit() == 6 * 1024 * 1024


def test_every_deployable_uses_sagemakers_limit() -> None:
    limits = {
        "the model server's default SERVE_MAX_BODY_BYTES": SAGEMAKER_MAX_BODY_BYTES,
        "the Lambda's cap on MAX_BODY_BYTES": HARD_MAX_BODY_BYTES,
        "the local InvokeEndpoint stand-in": STAND_IN_MAX_BODY_BYTES,
    }
    limit = invoke_endpoint_body_limit()
    assert limits == dict.fromkeys(limits, limit)
    # The client's default batches stay under it, with room for the JSON envelope.
    assert limit > DEFAULT_MAX_PAYLOAD_BYTES


def test_the_lambda_takes_up_to_sagemakers_limit_and_no_more() -> None:
    limit = invoke_endpoint_body_limit()
    assert Settings(endpoint_name="ep", max_body_bytes=limit).max_body_bytes == limit
    with pytest.raises(SettingsError, match="MAX_BODY_BYTES"):
        Settings(endpoint_name="ep", max_body_bytes=limit + 1)
