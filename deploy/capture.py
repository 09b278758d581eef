"""Data capture: a share of an endpoint's requests and responses, written by SageMaker to S3.

SageMaker writes JSON Lines files under
``<destination>/<endpoint>/<variant>/YYYY/MM/DD/HH/``, one record per request with the input
and output bodies. Listing our media types as JSON (``CaptureContentTypeHeader``) makes it
store the bodies as JSON text instead of base64; ``training.drift`` reads both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import DataCaptureConfigTypeDef

    from deploy.settings import DeploySettings

# What the model server answers and accepts as JSON (app/codecs.py).
JSON_CONTENT_TYPES = ["application/json", "application/jsonlines"]
CSV_CONTENT_TYPES = ["text/csv"]


def capture_destination(settings: DeploySettings) -> str:
    return settings.capture_destination or settings.s3_uri("capture")


def data_capture_config(settings: DeploySettings) -> DataCaptureConfigTypeDef | None:
    """The endpoint config's DataCaptureConfig, or None when capture is not asked for."""
    if settings.capture_percent is None:
        return None
    return {
        "EnableCapture": settings.capture_percent > 0,
        "InitialSamplingPercentage": settings.capture_percent,
        "DestinationS3Uri": capture_destination(settings),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {
            "JsonContentTypes": JSON_CONTENT_TYPES,
            "CsvContentTypes": CSV_CONTENT_TYPES,
        },
    }
