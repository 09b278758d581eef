"""Send texts to the endpoint (sagemaker-runtime) or to the API (HTTPS), return predictions.

Both speak the project's HTTP API: ``{"inputs": [...], "parameters": {"top_k": k}}`` in, a
list with one element per input out (docs/architecture.md).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from deploy.errors import AwsError, ConfigError, DeployError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

JSON = "application/json"


def request_body(texts: Sequence[str], top_k: int) -> bytes:
    if not texts:
        raise ConfigError("no texts to classify: pass them as arguments or on stdin")
    # Without top_k the answer is one {"label", "score"} per text; an explicit top_k (even 1)
    # nests a list per text, as the Hugging Face pipeline does (docs/api.md).
    body: dict[str, object] = {"inputs": list(texts)}
    if top_k != 1:
        body["parameters"] = {"top_k": top_k}
    return json.dumps(body).encode()


def invoke_endpoint(
    runtime: SageMakerRuntimeClient, endpoint_name: str, texts: Sequence[str], *, top_k: int = 1
) -> Any:
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name,
            Body=request_body(texts, top_k),
            ContentType=JSON,
            Accept=JSON,
        )
    except ClientError as error:
        raise AwsError.from_client_error(error) from error
    return json.loads(response["Body"].read())


def classify_url(api_url: str) -> str:
    """``<api_url>/classify``; the API URL is the stage URL the template outputs."""
    scheme = urlsplit(api_url).scheme
    if scheme not in ("https", "http"):
        raise ConfigError(f"--api-url must be an https:// URL, got {api_url!r}")
    return api_url.rstrip("/") + "/classify"


def invoke_api(
    api_url: str,
    texts: Sequence[str],
    *,
    api_key: str | None = None,
    top_k: int = 1,
    timeout_s: float = 30.0,
) -> Any:
    headers = {"Content-Type": JSON, "Accept": JSON}
    if api_key:
        headers["x-api-key"] = api_key
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in classify_url
        classify_url(api_url), data=request_body(texts, top_k), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise DeployError(f"the API answered {error.code}: {_error_summary(error)}") from error
    except urllib.error.URLError as error:
        raise DeployError(f"cannot reach {api_url}: {error.reason}") from error


def _error_summary(error: urllib.error.HTTPError) -> str:
    """The project's error shape's code and message, else the HTTP reason."""
    try:
        body = json.loads(error.read())
        return f"{body['error']['code']}: {body['error']['message']}"
    except (ValueError, KeyError, TypeError):
        return str(error.reason)
