"""``python -m devtools.local_api``: the local API front as a process, its handler run exactly
as Lambda runs it (``handler.handler``, settings from the environment)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

from devtools.local_api.runtime import SAGEMAKER_INVOCATION_TIMEOUT_S
from devtools.local_api.server import (
    DEFAULT_ENDPOINT_NAME,
    DUMMY_CREDENTIAL,
    LocalApiServer,
    import_lambda_modules,
)
from devtools.local_api.wire import LOCAL_REGION


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.local_api",
        description="Local API Gateway + SageMaker runtime stand-in around the Lambda handler.",
    )
    parser.add_argument(
        "--serve-url", required=True, help="the model server, e.g. http://127.0.0.1:8080"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (0: any free)")
    parser.add_argument(
        "--endpoint-name",
        default=DEFAULT_ENDPOINT_NAME,
        help="the endpoint name the InvokeEndpoint stand-in answers to",
    )
    parser.add_argument(
        "--invocation-timeout",
        type=float,
        default=SAGEMAKER_INVOCATION_TIMEOUT_S,
        help="seconds the model server gets per invocation, as on SageMaker",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted, running the handler exactly as Lambda does."""
    args = _parse_args(argv)
    import_lambda_modules()
    from api_settings import Settings, SettingsError

    # This process is the Lambda's stand-in: its environment is the function's configuration,
    # checked before anything starts (in Lambda, at cold start).
    try:
        Settings.from_environ({**os.environ, "ENDPOINT_NAME": args.endpoint_name})
    except SettingsError as exc:
        sys.stderr.write(f"invalid Lambda settings: {exc}\n")
        return 2
    try:
        server = LocalApiServer(
            (args.host, args.port),
            serve_url=args.serve_url,
            endpoint_name=args.endpoint_name,
            invocation_timeout_s=args.invocation_timeout,
        )
    except OSError as exc:
        sys.stderr.write(f"cannot listen on {args.host}:{args.port}: {exc}\n")
        return 2
    # Credentials and region are dummies (nothing here checks them); the handler's client finds
    # this server through botocore's standard endpoint variable, as it would find AWS's.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIAL)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIAL)
    os.environ.setdefault("AWS_DEFAULT_REGION", LOCAL_REGION)
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = server.url
    os.environ["ENDPOINT_NAME"] = args.endpoint_name
    import handler

    server.lambda_handler = handler.handler
    sys.stderr.write(
        f"local API on {server.url}: POST /classify (through the Lambda handler), "
        f"POST /endpoints/{args.endpoint_name}/invocations -> {args.serve_url}/invocations\n"
    )
    # As a container's PID 1 the process would ignore SIGTERM unless it handles it, and
    # `docker compose stop` would wait for its kill timeout.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
