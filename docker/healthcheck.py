#!/usr/bin/env python3
"""The images' HEALTHCHECK: exit 0 when the server answers GET /ping with 200.

    healthcheck        the model server: http://127.0.0.1:$SAGEMAKER_BIND_TO_PORT/ping (8080)
    healthcheck URL    any other (docker-compose.yml's API front)

Standard library only, so the image needs no curl. SageMaker does its own health checks on
/ping; this one is for `docker ps`, docker compose's `service_healthy` and plain Docker hosts.
It takes a URL argument rather than leaving compose an inline `python -c "..."`: podman's
Docker API (4.3) splits a healthcheck's arguments at spaces, which breaks such a command.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    port = os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")
    url = arguments[0] if arguments else f"http://127.0.0.1:{port}/ping"
    if not url.startswith(("http://", "https://")):
        sys.stderr.write(f"healthcheck: not an http(s) URL: {url}\n")
        return 2
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 (checked above)
            return 0 if response.status == 200 else 1
    except OSError:  # URLError and HTTPError (e.g. 503 while loading) are OSErrors
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
