"""Every operator knob of the model server, read once from the environment at start-up.

SageMaker's own variables keep their names (``SAGEMAKER_BASE_DIR``, ``SAGEMAKER_BIND_TO_PORT``);
everything else is ``SERVE_<FIELD>``. ``docs/serving.md`` lists them all with their defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# InvokeEndpoint's body limit, 6 MiB (botocore's BodyBlob max; lambda/api_settings.py quotes it).
SAGEMAKER_MAX_BODY_BYTES = 6 * 1024 * 1024
# SageMaker sends SIGTERM, then SIGKILL 30 s later, to the containers it stops (Custom
# Inference Code with Hosting Services: UpdateEndpoint, UpdateEndpointWeightsAndCapacities).
SAGEMAKER_SIGKILL_AFTER_S = 30
# Batch Transform: MaxPayloadInMB is at most 100; InvocationsTimeoutInSeconds defaults to 600
# (ModelClientConfig). Asynchronous Inference: payloads up to 1 GB, InvocationTimeoutSeconds
# defaults to 900 (InvokeEndpointAsync).
TRANSFORM_MAX_PAYLOAD_MB = 100
TRANSFORM_TIMEOUT_S = 600.0
ASYNC_MAX_BODY_BYTES = 1024 * 1024 * 1024
# The async default stays well under that: the server holds a body's texts and answers in
# memory, and a 6 MB JSON Lines body peaked at +300-400 MiB (docs/benchmarks.md).
ASYNC_DEFAULT_BODY_BYTES = 100 * 1024 * 1024
ASYNC_TIMEOUT_S = 900.0
_MIB = 1024 * 1024
# A small cap narrows the window of texts sorted together and lowers throughput on a CPU
# (docs/serving.md, SERVE_MAX_BATCH_SIZE).
DEFAULT_MAX_BATCH_SIZE = 64


class Settings(BaseSettings):
    """The model server's configuration; built once in ``main`` and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="SERVE_", frozen=True, extra="ignore", populate_by_name=True
    )

    base_dir: Path = Field(
        default=Path("/opt/ml"),
        validation_alias="SAGEMAKER_BASE_DIR",
        description="SageMaker root; the model artifact is read from <base_dir>/model.",
    )
    port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        validation_alias="SAGEMAKER_BIND_TO_PORT",
        description="TCP port (SageMaker sets SAGEMAKER_BIND_TO_PORT when it picks one).",
    )
    host: str = Field(default="0.0.0.0", description="Interface to bind; 0.0.0.0 is the contract.")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes, each with its own model (CPU only).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where the model runs; auto picks cuda when available."
    )
    runtime: Literal["auto", "torch", "onnx"] = Field(
        default="auto",
        description="What runs the model: auto is ONNX Runtime on a CPU when the artifact has "
        "model.onnx (and onnxruntime is installed), PyTorch otherwise.",
    )
    onnx_variant: Literal["auto", "fp32", "optimized", "int8"] = Field(
        default="auto",
        description="Which of the artifact's ONNX files runs on the CPU: auto is the fastest "
        "whose recorded accuracy check passes SERVE_ONNX_MAX_F1_LOSS and "
        "SERVE_ONNX_MAX_CHANGED_LABELS (int8, then optimized, then fp32); any other value "
        "forces that file (start-up fails if it is missing).",
    )
    onnx_max_f1_loss: float = Field(
        default=0.3,
        ge=0,
        le=100,
        description="Most macro-F1 (percentage points) a variant may lose against fp32 on the "
        "artifact's evaluation texts and still be picked by SERVE_ONNX_VARIANT=auto.",
    )
    onnx_max_changed_labels: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Largest share of evaluation texts whose label may differ from fp32's for "
        "SERVE_ONNX_VARIANT=auto to pick a variant.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Model precision; auto is bf16 (or fp16) on GPU, fp32 on CPU."
    )
    model_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Batches the model runs at once, each on its own thread (ONNX Runtime "
        "releases the GIL for a whole call, so they run in parallel). 0: on a CPU with ONNX "
        "Runtime, the worker's share of the usable CPUs (affinity and cgroup quota), at most "
        "4; otherwise 1 (PyTorch holds the GIL between ops; a GPU runs one batch at a time).",
    )
    model_thread_nice: int = Field(
        default=0,
        ge=0,
        le=19,
        description="Nice value of the model threads (Linux; 0 leaves them as they are): above "
        "0 the event loop (HTTP, /ping, forming batches) runs first whenever it has work and "
        "the model threads take the rest of the CPU.",
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Intra-op CPU threads of each model thread; 0: with ONNX Runtime, the "
        "worker's CPUs / model threads; with PyTorch, its CPUs - 1 (a core left to the event "
        "loop).",
    )
    max_batch_size: int = Field(
        default=DEFAULT_MAX_BATCH_SIZE,
        ge=0,
        le=4096,
        description="Most texts per model call (0 is read as the default). The batcher cuts "
        "what is queued into the cheapest batches under this cap, so it only bounds memory "
        "and the window of texts sorted together.",
    )
    max_batch_tokens: int = Field(
        default=16384,
        ge=2,
        description="Padded tokens per model call (batch size x longest sequence).",
    )
    call_overhead_tokens: float | None = Field(
        default=None,
        ge=0,
        description=(
            "What one model call costs beyond its tokens, in tokens; the batcher weighs it "
            "against padding when it cuts batches. Unset: measured at start-up."
        ),
    )
    max_wait_ms: float = Field(
        default=5.0,
        ge=0.0,
        le=1000.0,
        description="How long the oldest queued text may wait for company before a batch "
        "runs; only matters when the model is idle.",
    )
    queue_size: int = Field(
        default=0,
        ge=0,
        description="Texts queued at once; beyond it requests get 429. 0: derived at start-up "
        "from the model's measured throughput on texts of max_length tokens, so that a full "
        "queue runs in half the request deadline (between 64 and 4096).",
    )
    max_instances: int = Field(
        default=0,
        ge=0,
        description="Texts per request; beyond it the request gets 413. 0: half the queue "
        "size (at most 2048), so a request at the limit finishes inside its deadline.",
    )
    max_body_bytes: int = Field(
        default=SAGEMAKER_MAX_BODY_BYTES,
        ge=1024,
        le=ASYNC_MAX_BODY_BYTES,
        description="Request body limit in bytes (413). Unset: 6 MiB; in a Batch Transform "
        "job SAGEMAKER_MAX_PAYLOAD_IN_MB MiB; with SERVE_ASYNC_INFERENCE 100 MiB. At most 1 GiB "
        "(Asynchronous Inference's limit).",
    )
    request_timeout_s: float = Field(
        default=50.0,
        gt=0.0,
        le=3600.0,
        description="Deadline of a request: answered 504 when it passes before its texts "
        "ran. Keep it under 60 s (SageMaker's limit) on real-time endpoints; Batch "
        "Transform allows up to 3600 s (InvocationsTimeoutInSeconds).",
    )
    shutdown_timeout_s: int = Field(
        default=SAGEMAKER_SIGKILL_AFTER_S - 10,  # 10 s to finish the running batch and exit
        ge=1,
        le=3600,
        description="After SIGTERM, how long requests already in the server may take; those "
        "still unanswered then get 503. SageMaker sends SIGKILL 30 s after SIGTERM (endpoint "
        "updates, scale-in): keep it under that there.",
    )
    retry_after_s: int = Field(default=1, ge=1, le=600, description="Retry-After sent with 429.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Level of the JSON logs on stdout."
    )
    # -- abuse resistance: the cost of a request is bounded before work starts --------------
    max_text_chars: int = Field(
        default=0,
        ge=0,
        description="Characters of each text kept before tokenizing; the rest is cut off "
        "(truncated, never refused). 0: 32 x the artifact's max_length (4096 for 128 tokens): "
        "natural text averages 4-6 characters per token, so the cut never changes the "
        "max_length tokens the model sees, while a 1 MB text costs what 4 KB cost.",
    )
    body_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        le=600.0,
        description="Time a client gets to send a request's body; a slower one gets 408.",
    )
    max_concurrency: int = Field(
        default=1024,
        ge=1,
        description="Connections and requests uvicorn serves at once; beyond it it answers "
        "503 itself, before the app sees them (a flood of idle connections cannot exhaust "
        "memory or file descriptors). Keep it well above the clients you expect, /ping "
        "included.",
    )
    docs: bool = Field(
        default=False,
        description="Serve /docs (Swagger UI, loaded from a CDN by the browser) and "
        "/openapi.json; off in production.",
    )

    # -- SageMaker Batch Transform (the job sets these three) and Asynchronous Inference ----
    batch_transform: bool = Field(
        default=False,
        validation_alias="SAGEMAKER_BATCH",
        description="SageMaker sets it (true) in every Batch Transform container: "
        "line-oriented bodies of any length are classified in chunks, and the request "
        "deadline defaults to 600 s (the job's InvocationsTimeoutInSeconds default; set "
        "SERVE_REQUEST_TIMEOUT_S to the job's value).",
    )
    batch_strategy: Literal["MULTI_RECORD", "SINGLE_RECORD"] | None = Field(
        default=None,
        validation_alias="SAGEMAKER_BATCH_STRATEGY",
        description="Set by a Batch Transform job: MULTI_RECORD bodies hold as many lines as "
        "fit in MaxPayloadInMB; SINGLE_RECORD one line each. Advertised by "
        "/execution-parameters; set, it implies SAGEMAKER_BATCH.",
    )
    max_payload_in_mb: int | None = Field(
        default=None,
        ge=0,
        le=TRANSFORM_MAX_PAYLOAD_MB,
        validation_alias="SAGEMAKER_MAX_PAYLOAD_IN_MB",
        description="Set by a Batch Transform job: the body limit becomes this many MiB "
        "(unless SERVE_MAX_BODY_BYTES is set); 0 (no limit, streamed) keeps the body limit.",
    )
    max_concurrent_transforms: int | None = Field(
        default=None,
        ge=0,
        le=1024,
        validation_alias="SAGEMAKER_MAX_CONCURRENT_TRANSFORMS",
        description="Set by a Batch Transform job: the requests it sends at once; each "
        "request's chunks are sized so that all of them fit in the queue together.",
    )
    async_inference: bool = Field(
        default=False,
        description="The endpoint serves Asynchronous Inference: the body limit defaults to "
        "100 MiB (SERVE_MAX_BODY_BYTES goes up to 1 GiB), the request deadline to 900 s, "
        "and bodies (JSON Lines, CSV) of "
        "any length are classified in chunks.",
    )

    @model_validator(mode="after")
    def _apply_hosting_mode(self) -> Settings:
        """Defaults a Batch Transform job or an async endpoint needs; explicit settings win.
        (The model is frozen: the defaults are written once, here, while it is built.)"""
        given = self.model_fields_set
        defaults: dict[str, object] = {}
        if self.async_inference:
            defaults = {
                "max_body_bytes": ASYNC_DEFAULT_BODY_BYTES,
                "request_timeout_s": ASYNC_TIMEOUT_S,
            }
        if self.batch_transform or self.batch_strategy is not None:
            defaults["request_timeout_s"] = TRANSFORM_TIMEOUT_S
        if self.max_payload_in_mb:
            defaults["max_body_bytes"] = max(1024, self.max_payload_in_mb * _MIB)
        for name, value in defaults.items():
            if name not in given:
                object.__setattr__(self, name, value)
        return self

    @property
    def records_in_chunks(self) -> bool:
        """Line-oriented bodies beyond SERVE_MAX_INSTANCES are classified in chunks rather
        than refused (413): in a Batch Transform job and on an async endpoint, where the
        deadline is minutes and the caller cannot split the payload itself."""
        return self.batch_transform or self.batch_strategy is not None or self.async_inference

    @field_validator("max_batch_size")
    @classmethod
    def _zero_is_the_default(cls, value: int) -> int:
        return value or DEFAULT_MAX_BATCH_SIZE  # 0 meant "the default" before it had a value

    @model_validator(mode="after")
    def _check_limits(self) -> Settings:
        if self.queue_size and self.max_instances > self.queue_size:
            raise ValueError(
                f"SERVE_MAX_INSTANCES ({self.max_instances}) must not exceed "
                f"SERVE_QUEUE_SIZE ({self.queue_size}): such a request could never be queued"
            )
        if self.runtime == "onnx" and (
            self.device == "cuda" or self.dtype not in ("auto", "float32")
        ):
            raise ValueError(
                "SERVE_RUNTIME=onnx runs the artifact's fp32 model.onnx on the CPU; it cannot "
                f"be combined with SERVE_DEVICE={self.device} SERVE_DTYPE={self.dtype}"
            )
        if self.onnx_variant != "auto" and self.runtime == "torch":
            raise ValueError(
                f"SERVE_ONNX_VARIANT={self.onnx_variant} picks an ONNX file, but "
                "SERVE_RUNTIME=torch runs PyTorch; set SERVE_RUNTIME=onnx (or auto)"
            )
        return self

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"
