"""When to retry a failed call, and for how long to wait first."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from client.errors import APIStatusError, ClassifierError, ConnectError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, honouring the server's ``Retry-After``.

    Only answers that mean "nothing was done, try again later" are retried: 429 (queue full or
    throttled) and 503 (model not ready), plus connections that could not be opened. Errors that
    would fail again (400, 413, ...) and timeouts (the request may still be running, and retrying
    it adds load exactly when the server is slow) are raised at once.
    """

    max_retries: int = 4
    backoff_base: float = 0.25  # seconds; attempt n waits up to base * 2**n
    backoff_max: float = 10.0  # cap on one computed wait
    # A Retry-After longer than this is a maintenance window, not backpressure: give up.
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = frozenset({429, 503})
    retry_connect_errors: bool = True

    def delay_for(self, error: ClassifierError, attempt: int) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to raise ``error``."""
        if attempt >= self.max_retries or not self._is_retryable(error):
            return None
        # Full jitter spreads clients that failed together over the whole window, so they do
        # not come back together (AWS architecture blog, "Exponential Backoff And Jitter").
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        jitter = random.uniform(0.0, ceiling)
        retry_after = error.retry_after if isinstance(error, APIStatusError) else None
        if retry_after is None:
            return jitter
        if retry_after > self.max_retry_after:
            return None
        # The server's wait is a floor; the jitter on top keeps the retries spread out.
        return retry_after + jitter

    def _is_retryable(self, error: ClassifierError) -> bool:
        if isinstance(error, APIStatusError):
            return error.status_code in self.retry_statuses
        return isinstance(error, ConnectError) and self.retry_connect_errors


NO_RETRIES = RetryPolicy(max_retries=0)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
