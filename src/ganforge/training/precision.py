"""Mixed precision as one small object: an autocast context and, for fp16, grad scalers."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass
class Precision:
    """`amp` resolved for a device: autocast dtype (None: full fp32) and whether to scale."""

    device_type: str
    dtype: torch.dtype | None

    @property
    def name(self) -> str:
        return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def scaled(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range."""
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def make_scaler(self) -> torch.amp.GradScaler | None:
        return torch.amp.GradScaler(self.device_type) if self.scaled else None


def resolve_precision(amp: str, device: torch.device) -> Precision:
    """`auto`: bf16 on CUDA when supported, else fp16 (with a GradScaler); off on CPU."""
    if device.type != "cuda":
        if amp == "fp16":
            raise ValueError("amp: fp16 needs CUDA; use amp: auto, off or bf16 on this machine")
        return Precision(device.type, torch.bfloat16 if amp == "bf16" else None)
    if amp == "off":
        return Precision("cuda", None)
    if amp == "fp16":
        return Precision("cuda", torch.float16)
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return Precision("cuda", torch.bfloat16)
    return Precision("cuda", torch.float16)
