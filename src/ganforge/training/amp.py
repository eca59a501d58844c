"""Mixed precision as one small object: an autocast context and, for fp16, grad scalers."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

from ganforge.training.device_policy import AmpChoice

log = logging.getLogger(__name__)

_DTYPES: dict[str, torch.dtype | None] = {
    "off": None,
    "tf32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


@dataclass
class Precision:
    """`amp` resolved for a device: autocast dtype (None: full fp32) and whether to scale.

    `tf32`: fp32 matmuls and convolutions may use TF32 tensor cores (CUDA only).
    """

    device_type: str
    dtype: torch.dtype | None
    tf32: bool = False

    @property
    def name(self) -> str:
        if self.dtype is None:
            return "tf32" if self.tf32 else "off"
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

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

    def configure_backends(self) -> None:
        """Allow TF32 in fp32 matmuls and cuDNN convolutions when this precision asks for it.

        Process-wide torch settings (like cudnn.benchmark); nothing is changed otherwise, so
        `amp: off` keeps torch's own defaults. Harmless on GPUs without TF32 (pre-Ampere).
        """
        if self.tf32 and self.device_type == "cuda":
            # The matmul switch goes through the legacy setter on purpose: setting only
            # `torch.backends.cuda.matmul.fp32_precision` makes torch.get_float32_matmul_precision
            # (which inductor reads) raise on "mixed legacy and new APIs" in torch 2.14.
            torch.set_float32_matmul_precision("high")
            # torch types the cudnn module's attributes one by one and leaves `conv` out
            torch.backends.cudnn.conv.fp32_precision = "tf32"  # type: ignore[attr-defined]


def precision_for(amp: AmpChoice, device: torch.device) -> Precision:
    """The `Precision` of an already resolved amp choice (see `choose_device_settings`)."""
    return Precision(device.type, _DTYPES[amp], tf32=amp == "tf32")
