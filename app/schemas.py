"""The wire schemas: the Hugging Face inference request and the text-classification answer."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class Parameters(BaseModel):
    """Inference parameters of the Hugging Face format; unknown ones are refused."""

    model_config = ConfigDict(extra="forbid")

    top_k: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        default=1,
        description="Labels per input, best first; null means all labels. More than there "
        "are labels gives all of them.",
    )
    truncation: StrictBool = Field(
        default=True, description="Accepted for compatibility; long texts are always truncated."
    )


class PredictRequest(BaseModel):
    """``{"inputs": "text" | ["text", ...], "parameters": {"top_k": 1}}``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"inputs": "Fed raises interest rates again", "parameters": {"top_k": 1}},
                {"inputs": ["Apple unveils new iPhone", "Ebola outbreak spreads"]},
            ]
        },
    )

    inputs: StrictStr | list[StrictStr] = Field(description="One text or a list of texts.")
    parameters: Parameters = Field(default_factory=Parameters)


class Prediction(BaseModel):
    """One label with its probability."""

    label: str = Field(examples=["business"])
    score: float = Field(ge=0.0, le=1.0, examples=[0.97])


# One element per input: a Prediction (top_k 1) or a best-first list of them (top_k > 1).
PredictResponse = list[Prediction | list[Prediction]]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["payload_too_large"])
    message: str
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class ExecutionParameters(BaseModel):
    """What SageMaker Batch Transform asks the container for before a transform job."""

    model_config = ConfigDict(populate_by_name=True)

    max_concurrent_transforms: int = Field(alias="MaxConcurrentTransforms")
    batch_strategy: str = Field(alias="BatchStrategy")
    max_payload_in_mb: int = Field(alias="MaxPayloadInMB")
