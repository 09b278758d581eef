#!/usr/bin/env python3
"""The serving images' HEALTHCHECK: exit 0 when the model server answers GET /ping with 200.

Standard library only, so the image needs no curl. SageMaker does its own health checks on
/ping; this one is for `docker ps`, docker compose's `service_healthy` and plain Docker hosts.
"""

from __future__ import annotations

import os
import urllib.request


def main() -> int:
    port = os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")
    url = f"http://127.0.0.1:{port}/ping"
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return 0 if response.status == 200 else 1
    except OSError:  # URLError and HTTPError (e.g. 503 while loading) are OSErrors
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
