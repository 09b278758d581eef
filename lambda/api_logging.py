"""Structured logs: one JSON object per line, with sizes and timings and never the texts.

Lambda sends stdout/stderr to CloudWatch Logs line by line, where JSON lines can be queried
with Logs Insights (``fields status, latency_ms | filter code = "timeout"``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER_NAME = "news_api"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> logging.Logger:
    """Give the API logger one JSON handler; idempotent across warm invocations."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    # The Lambda runtime puts its own text handler on the root logger: without this,
    # every line would be written twice, once not as JSON.
    logger.propagate = False
    return logger
