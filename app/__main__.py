"""``python -m app`` (the image's ``serve``): the model server on ``0.0.0.0:8080``.

Configuration comes from the environment only (``docs/serving.md``); SIGTERM stops accepting
connections, lets queued requests finish for up to ``SERVE_SHUTDOWN_TIMEOUT_S`` (answering the
rest 503), then exits 0. Exit 1: the model cannot be loaded; exit 2: invalid settings.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from pydantic import ValidationError

from app.sagemaker import set_offline_env
from app.settings import Settings

logger = logging.getLogger("app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Serve the model artifact in $SAGEMAKER_BASE_DIR/model over HTTP "
        "(SageMaker hosting contract). Settings: SERVE_* environment variables, see "
        "docs/serving.md.",
    )
    parser.add_argument("command", nargs="?", choices=["serve"], help="accepted and ignored")
    parser.parse_args(argv)

    set_offline_env()
    from app.observability import configure_logging

    try:
        settings = Settings()
    except ValidationError as exc:
        configure_logging("INFO")
        logger.error("invalid settings", extra={"errors": _setting_errors(exc)})
        return 2
    configure_logging(settings.log_level)

    from model_artifact import ArtifactError, read_info

    try:
        read_info(settings.model_dir)  # fail fast, before the slow part
    except ArtifactError as exc:
        logger.error("no model to serve", extra={"reason": str(exc)})
        return 1

    import uvicorn

    # uvicorn drains on SIGTERM, then raises the signal again so the process "dies of it".
    # By then every queued request has been answered: acknowledge it and exit 0 instead.
    signal.signal(signal.SIGTERM, _acknowledge)
    if settings.workers > 1:
        # Each worker process builds its own settings from the same environment.
        uvicorn.run(
            "app.__main__:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_timeout_s,
            limit_concurrency=settings.max_concurrency,
        )
        return 0

    from app.api import create_app

    failed = threading.Event()

    def stop_on_fatal() -> None:
        failed.set()
        server.should_exit = True

    app = create_app(settings, on_fatal=stop_on_fatal)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # Beyond it uvicorn answers 503 itself: a connection flood cannot exhaust the process.
        limit_concurrency=settings.max_concurrency,
        # After SIGTERM, requests in the server get this long before they are answered 503:
        # SageMaker's SIGKILL follows 30 s after its SIGTERM, whatever their deadlines.
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    server = uvicorn.Server(config)
    server.run()
    return 1 if failed.is_set() else 0


def app_from_env() -> object:
    """The app factory uvicorn's worker processes call when ``SERVE_WORKERS`` > 1."""
    from app.api import create_app
    from app.observability import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    # Workers share one socket: one that is still loading must not take connections, or
    # /ping could say 200 (from a ready worker) while invocations reach a loading one.
    return create_app(settings, load_before_serving=True)


def _acknowledge(signum: int, frame: object) -> None:
    logger.info("stopped on signal", extra={"signal": signal.Signals(signum).name})


def _setting_errors(exc: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    ]


if __name__ == "__main__":
    sys.exit(main())
