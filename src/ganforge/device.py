"""Device choice: `auto` means CUDA when there is one, else CPU."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device option (`auto`, `cpu`, `cuda`, `cuda:1`) into a `torch.device`.

    Raises ValueError when CUDA is asked for on a machine without it, naming the fix.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"device {name!r} is not a device: use auto, cpu or cuda[:N]") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} asked for CUDA but this machine has no usable GPU: "
            "set device: auto (or cpu)"
        )
    return device


def cpu_has_bf16_units() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX tiles) in oneDNN.

    Without those units oneDNN emulates bf16 with fp32 arithmetic plus conversions, which makes
    autocast slower, not faster. torch exposes the checks only as private `torch.cpu`
    functions; a torch without them reads as no bf16 units (fp32, the safe choice).
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
