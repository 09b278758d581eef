"""A typed Python client for the classification API and SageMaker endpoints.

    from client import ApiClient

    with ApiClient("https://abc123.execute-api.eu-west-1.amazonaws.com/prod", api_key="...") as api:
        for prediction in api.classify(["Fed raises rates", "New Marvel trailer"]):
            print(prediction.label, prediction.score)

``ApiClient(url, path=SERVER_PATH)`` talks to a model server directly and
``EndpointClient("endpoint-name")`` to a SageMaker endpoint through boto3.

The modules:

- ``api``: ``ApiClient``, over HTTP: the API Gateway URL or a model server.
- ``endpoint``: ``EndpointClient``, ``InvokeEndpoint`` through boto3 (imported when built).
- ``base``: what both share: chunking, retries and response parsing around one ``_send``.
- ``chunking``: splitting many texts into requests under the count and payload limits.
- ``models``: the typed predictions and the parsing of the response body.
- ``errors``: the exception tree and the error code -> status table it is read by.
- ``retry``: ``RetryPolicy``: what is retried, and the backoff.
- ``cli`` (and ``__main__``): ``python -m client``, files or stdin to JSON Lines or CSV.
"""

from client.api import API_PATH, SERVER_PATH, ApiClient
from client.base import BaseClient
from client.endpoint import EndpointClient
from client.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ClassifierError,
    ConnectError,
    GatewayTimeoutError,
    InternalServerError,
    InvalidResponseError,
    NotAcceptableError,
    NotFoundError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    RequestTimeoutError,
    TransportError,
    UnsupportedMediaTypeError,
    UpstreamError,
)
from client.models import LabelScore, Prediction
from client.retry import NO_RETRIES, RetryPolicy

__all__ = [
    "API_PATH",
    "NO_RETRIES",
    "SERVER_PATH",
    "APIStatusError",
    "ApiClient",
    "AuthenticationError",
    "BadRequestError",
    "BaseClient",
    "ClassifierError",
    "ConnectError",
    "EndpointClient",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidResponseError",
    "LabelScore",
    "NotAcceptableError",
    "NotFoundError",
    "NotReadyError",
    "OverloadedError",
    "PayloadTooLargeError",
    "Prediction",
    "RequestTimeoutError",
    "RetryPolicy",
    "TransportError",
    "UnsupportedMediaTypeError",
    "UpstreamError",
]
