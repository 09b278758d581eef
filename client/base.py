"""What every client shares: chunking, retries and response parsing around one ``_send``."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Self

from client.chunking import chunk_texts
from client.errors import ClassifierError, PayloadTooLargeError
from client.models import Prediction, build_request_body, parse_predictions
from client.retry import RetryPolicy

# SageMaker real-time InvokeEndpoint and Lambda both cap a request at 6 MB; stay under it with
# room for the envelope and HTTP overhead.
DEFAULT_MAX_PAYLOAD_BYTES = 5 * 1024 * 1024
# Small enough to be one or two server-side batches, large enough to amortise the round trip.
DEFAULT_MAX_BATCH_SIZE = 64


class BaseClient(ABC):
    """Classify texts through one transport; subclasses implement ``_send`` only."""

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_payload_bytes < 1:
            raise ValueError("max_batch_size and max_payload_bytes must be positive")
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_batch_size = max_batch_size
        self.max_payload_bytes = max_payload_bytes
        # Injectable so tests check the backoff schedule without waiting for it.
        self._sleep = sleep if sleep is not None else time.sleep

    @abstractmethod
    def _send(self, body: bytes) -> tuple[bytes, str | None]:
        """POST one request body; return the response body and the request id.

        Raises a :class:`~client.errors.ClassifierError` for any failure.
        """

    def classify(self, texts: str | Sequence[str], *, top_k: int = 1) -> list[Prediction]:
        """Classify ``texts`` (one string or many), returning one prediction per text, in order.

        Large inputs are sent as several requests under ``max_batch_size`` texts and
        ``max_payload_bytes`` bytes each; a request the server still finds too large is split
        in two and retried.
        """
        return [
            prediction for chunk in self.iter_chunks(texts, top_k=top_k) for prediction in chunk
        ]

    def iter_chunks(
        self, texts: str | Sequence[str], *, top_k: int = 1
    ) -> Iterator[list[Prediction]]:
        """Like :meth:`classify`, but yield the predictions of each request as it completes."""
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        items: Sequence[str] = [texts] if isinstance(texts, str) else texts
        for chunk in chunk_texts(
            items, max_count=self.max_batch_size, max_bytes=self.max_payload_bytes
        ):
            yield self._classify_chunk(chunk, top_k)

    def _classify_chunk(self, texts: Sequence[str], top_k: int) -> list[Prediction]:
        try:
            return self._classify_with_retries(texts, top_k)
        except PayloadTooLargeError:
            # The server's limits are lower than ours: halve until they fit (or one text is
            # too large on its own, which only the caller can fix).
            if len(texts) < 2:
                raise
            middle = len(texts) // 2
            return self._classify_chunk(texts[:middle], top_k) + self._classify_chunk(
                texts[middle:], top_k
            )

    def _classify_with_retries(self, texts: Sequence[str], top_k: int) -> list[Prediction]:
        body = build_request_body(texts, top_k)
        attempt = 0
        while True:
            try:
                raw, request_id = self._send(body)
                return parse_predictions(raw, texts, request_id=request_id)
            except ClassifierError as error:
                delay = self.retry.delay_for(error, attempt)
                if delay is None:
                    raise
            self._sleep(delay)
            attempt += 1

    def close(self) -> None:
        """Release the transport's resources (connection pools)."""
        # Nothing by default: a boto3 client needs no closing; ApiClient closes its pool.
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
