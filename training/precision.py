"""Which number format the forward pass runs in, chosen once per job."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Precision:
    """``autocast_dtype`` None means plain fp32; fp16 needs loss scaling, bf16 does not."""

    name: Literal["bf16", "fp16", "fp32"]
    device_type: str

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def needs_scaler(self) -> bool:
        return self.name == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        import torch

        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        context: contextlib.AbstractContextManager[object] = torch.autocast(
            self.device_type, dtype=dtype
        )
        return context


def choose_precision(requested: str, device: torch.device) -> Precision:
    """auto: bf16 where the GPU supports it (Ampere and newer), fp16 on older GPUs, fp32 on CPU.

    CPU autocast is left out on purpose: bf16 on CPUs without AMX is slower than fp32, and
    fp32 keeps CPU runs bit-for-bit reproducible.
    """
    import torch

    if device.type != "cuda":
        return Precision("fp32", device.type)
    if requested == "auto":
        return Precision("bf16" if torch.cuda.is_bf16_supported() else "fp16", "cuda")
    if requested == "bf16":
        return Precision("bf16", "cuda")
    if requested == "fp16":
        return Precision("fp16", "cuda")
    return Precision("fp32", "cuda")
