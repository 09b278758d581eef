"""The model's life in the server: loading in the background, ready, draining, stopped.

``/ping`` reads the state only, never waits on the model, so it answers in milliseconds while
the model is loading or saturated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import StrEnum

from app.batching import Batcher
from app.errors import NotReadyError
from app.inference import Inference, derive_limits
from app.model import Classifier
from app.observability import Metrics
from app.settings import Settings

logger = logging.getLogger(__name__)

Loader = Callable[[Settings], Classifier]


class State(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"


class Engine:
    """Owns the batcher and the inference façade over the classifier; ``on_fatal`` is called
    when the model cannot load (``main`` uses it to stop the server, so the container exits
    non-zero)."""

    def __init__(
        self,
        settings: Settings,
        loader: Loader,
        metrics: Metrics,
        on_fatal: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.state = State.LOADING
        self._loader = loader
        self._on_fatal = on_fatal
        self._batcher: Batcher | None = None
        self._inference: Inference | None = None
        self._load_task: asyncio.Task[None] | None = None

    async def start(self, *, wait: bool = False) -> None:
        """Load the model in the background (``/ping`` says 503 meanwhile), or, with ``wait``,
        before returning: uvicorn worker processes then accept no connection until ready."""
        if wait:
            await self._load()
        else:
            self._load_task = asyncio.get_running_loop().create_task(self._load(), name="load")

    async def _load(self) -> None:
        try:
            classifier = await asyncio.to_thread(self._loader, self.settings)
            limits = await asyncio.to_thread(derive_limits, self.settings, classifier)
        except Exception:
            logger.exception("the model could not be loaded; the server cannot serve")
            self.state = State.FAILED
            if self._on_fatal is not None:
                self._on_fatal()
            return
        settings = self.settings
        batcher = Batcher(
            classifier,
            max_batch_size=settings.max_batch_size,
            max_batch_tokens=settings.max_batch_tokens,
            call_overhead_tokens=classifier.call_overhead_tokens,
            max_wait_s=settings.max_wait_ms / 1000,
            capacity=limits.queue_size,
            retry_after_s=settings.retry_after_s,
            on_batch=self.metrics.observe_batch,
            model_threads=classifier.model_threads,
            model_thread_nice=settings.model_thread_nice,
        )
        batcher.start()
        self.metrics.queue_depth.set_function(lambda: batcher.depth)
        self._batcher = batcher
        self._inference = Inference(classifier, batcher, limits, settings.max_text_chars)
        logger.info(
            "serving limits",
            extra={
                "queue_size": limits.queue_size,
                "max_instances": limits.max_instances,
                "max_length_texts_per_s": (
                    None if limits.texts_per_s is None else round(limits.texts_per_s, 1)
                ),
                "max_text_chars": self._inference.max_text_chars,
            },
        )
        if self.state is State.LOADING:
            self.state = State.READY

    def require_ready(self) -> Inference:
        if self.state is State.READY and self._inference is not None:
            return self._inference
        if self.state is State.STOPPING:
            raise NotReadyError("the server is shutting down")
        raise NotReadyError("the model is not loaded yet; retry shortly")

    async def stop(self) -> None:
        """Refuse new requests, run everything already queued, stop the consumer."""
        self.state = State.STOPPING
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        if self._batcher is not None:
            await self._batcher.stop()
            logger.info("queue drained; model server stopped")
        if self._inference is not None:
            self._inference.close()
