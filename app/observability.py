"""Structured JSON logs and Prometheus metrics.

Log lines are one JSON object each, with the fields passed in ``extra`` (request id, sizes,
timings); nothing logs a caller's text. Metrics live in a registry per app, so two apps in one
process (tests) do not collide.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.batching import BatchStats

# Attributes every LogRecord has; anything else came in through ``extra``.
# uvicorn adds ``color_message``, a copy of the message with terminal colours.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode("utf-8")


def configure_logging(level: str) -> None:
    """JSON lines on stdout for our loggers and uvicorn's; uvicorn's access log is replaced
    by our own request log line."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The server's Prometheus metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "serving_requests",
            "HTTP requests by path and status",
            ["path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "serving_request_duration_seconds",
            "Time from request to response for /invocations",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.texts = Counter("serving_texts", "Texts classified", registry=self.registry)
        self.queue_wait = Histogram(
            "serving_queue_wait_seconds",
            "Time a text waited in the queue before its batch ran",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_time = Histogram(
            "serving_model_duration_seconds",
            "Time of one model call (one batch)",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "serving_batch_size",
            "Texts per model call",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.padded_tokens = Counter(
            "serving_padded_tokens",
            "Tokens fed to the model, padding included",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "serving_queue_depth", "Texts waiting in the queue", registry=self.registry
        )

    def observe_batch(self, stats: BatchStats) -> None:
        self.batch_size.observe(stats.size)
        self.model_time.observe(stats.model_seconds)
        self.padded_tokens.inc(stats.padded_tokens)
        self.texts.inc(stats.size)
        for wait in stats.queue_waits:
            self.queue_wait.observe(wait)
