"""A local stand-in for API Gateway and the SageMaker runtime, around the real Lambda handler.

One HTTP server, two faces:

* ``POST /classify`` (and ``OPTIONS`` for CORS) plays API Gateway (``gateway``): it turns the
  HTTP request into a REST API proxy event (payload 1.0) and calls the Lambda handler with it.
* ``POST /endpoints/{name}/invocations`` plays the SageMaker runtime's InvokeEndpoint HTTP
  API (``runtime``): it forwards the body to the model server's ``/invocations`` and answers
  the way SageMaker does, errors included, so the handler's boto3 client sees what it would
  see on AWS.

``GET /ping`` answers 200 for health checks. ``server`` holds the HTTP server and
``start_local_api`` for in-process users (tests, the quick start); ``cli`` the command,
``python -m devtools.local_api --serve-url http://127.0.0.1:8080``, where the handler runs
exactly as in Lambda (``handler.handler``, settings from the environment) with
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` pointing at this server. docs/api.md documents both.

It needs only what the tools image has (the Lambda's modules, boto3): that image runs it.
"""

from devtools.local_api.cli import main
from devtools.local_api.server import (
    DEFAULT_ENDPOINT_NAME,
    LocalApi,
    LocalApiServer,
    start_local_api,
)

__all__ = ["DEFAULT_ENDPOINT_NAME", "LocalApi", "LocalApiServer", "main", "start_local_api"]
