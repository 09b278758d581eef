"""The wire schemas: the Hugging Face inference request and the text-classification answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

# What turns a text's logits into its scores, as the transformers pipeline names them; the
# pipeline's "default" is softmax for a single-label model with several labels (ours).
ScoreFunction = Literal["softmax", "sigmoid", "none"]


class Parameters(BaseModel):
    """Inference parameters of the Hugging Face format (the transformers text-classification
    pipeline's keyword arguments); unknown ones are refused."""

    model_config = ConfigDict(extra="forbid")

    top_k: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        default=1,
        description="Labels per input, best first; null means all labels. More than there "
        "are labels gives all of them. Setting it (even to 1) answers a list per input, as "
        "the pipeline does.",
    )
    function_to_apply: ScoreFunction | Literal["default"] | None = Field(
        default=None,
        description="softmax (the default), sigmoid, or none (raw logits); any case.",
    )
    return_all_scores: StrictBool | None = Field(
        default=None,
        description="Accepted and ignored, as by transformers 5's pipeline; top_k: null "
        "gives every label.",
    )
    truncation: StrictBool = Field(
        default=True, description="Accepted for compatibility; long texts are always truncated."
    )

    @field_validator("function_to_apply", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        # The pipeline looks the name up in upper case: "SIGMOID" and "Sigmoid" work there too.
        return value.lower() if isinstance(value, str) else value

    @property
    def score_function(self) -> ScoreFunction:
        function = self.function_to_apply
        if function is None or function == "default":
            return "softmax"
        return function


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
    """One label with its score: a probability, or the raw logit with function_to_apply none."""

    label: str = Field(examples=["business"])
    score: float = Field(examples=[0.97])


# The transformers pipeline's shapes: one Prediction per input when the request leaves top_k
# out, a best-first list per input when it sets it; one string with top_k set answers that
# string's list alone (docs/api.md has the table).
PredictResponse = list[Prediction] | list[list[Prediction]]


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
