"""The names this tool gives AWS resources, and the test that a name is one of them.

Training jobs, models and endpoint configs are named ``<base>-YYYYmmdd-HHMMSS``. Anything
that lists resources to pick one (the newest training job) or to delete them (``teardown``)
matches this exact shape: a prefix test would also take ``<base>-staging-...`` or
``<base>-v2-...``, another deployment's resources.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

STAMP_FORMAT = "%Y%m%d-%H%M%S"
_STAMP_LENGTH = len("20260101-000000")
# SageMaker's limit on job, model and endpoint-config names.
MAX_NAME_LENGTH = 63
# The one production variant of every endpoint config this tool creates.
VARIANT_NAME = "AllTraffic"


def timestamped_name(base: str, now: datetime | None = None) -> str:
    """``<base>-YYYYmmdd-HHMMSS``: unique per second, sortable, within 63 characters."""
    stamp = (now or datetime.now(UTC)).strftime(STAMP_FORMAT)
    return f"{base[: MAX_NAME_LENGTH - _STAMP_LENGTH - 1]}-{stamp}"


def is_timestamped_name(base: str, name: str) -> bool:
    """Whether ``name`` is exactly what :func:`timestamped_name` makes from ``base``."""
    stem = re.escape(base[: MAX_NAME_LENGTH - _STAMP_LENGTH - 1])
    return re.fullmatch(rf"{stem}-\d{{8}}-\d{{6}}", name) is not None
