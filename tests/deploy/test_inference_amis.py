"""docs/containers.md's InferenceAmiVersion table is botocore's list, not a copy that goes
stale: every GPU AMI botocore's SageMaker model accepts is a row, with the NVIDIA driver, CUDA
version and compat mounting that the model's own documentation of the field gives."""

from __future__ import annotations

import re

import botocore.session

from deploy.settings import DEFAULT_INFERENCE_AMI
from devtools.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "containers.md"


def _botocore_amis() -> dict[str, str]:
    """``name -> its description`` from the SageMaker service model botocore ships."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    names = model.shape_for("ProductionVariantInferenceAmiVersion").enum
    text = re.sub(r"<[^>]+>", " ", model.shape_for("ProductionVariant").members[
        "InferenceAmiVersion"
    ].documentation)  # fmt: skip
    positions = sorted((text.index(name), name) for name in names)
    ends = [start for start, _ in positions[1:]] + [len(text)]
    return {name: text[start:end] for (start, name), end in zip(positions, ends, strict=True)}


def _documented_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| `([a-z0-9-]+-ami-sagemaker-inference-[a-z0-9-]+)` \|(.*)\|$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_the_documented_inference_amis_are_botocores_gpu_amis() -> None:
    botocore_amis = _botocore_amis()
    gpu = {name for name, text in botocore_amis.items() if "Accelerator: GPU" in text}
    assert gpu, "botocore's model no longer documents the AMIs' accelerators"
    rows = _documented_rows()

    assert set(rows) == gpu
    for name in sorted(gpu):
        driver, cuda, compat = rows[name]
        text = botocore_amis[name]
        major = re.search(r"NVIDIA driver version: (\d+)", text)
        version = re.search(r"CUDA version: ([\d.]+)", text)
        assert major and driver.split()[0] == major.group(1), name
        assert version and cuda == version.group(1), name
        not_mounted = "disabled CUDA-compat mounting" in text
        assert compat.startswith("not mounted") is not_mounted, name


def test_the_default_inference_ami_is_one_botocore_accepts() -> None:
    assert DEFAULT_INFERENCE_AMI in _botocore_amis()
