"""Per-device defaults for `amp`, `channels_last` and `compile`, chosen by measurement.

`choose_device_settings` is a pure function: the device type, the kind of model and the user's
three settings in, the resolved choices out, each with the reason it was made. The `auto`
choices encode what was measured, not what is usually true of other networks, with
bench/train_throughput.py (`--ablation` times channels_last on its own; `--device cuda
--channels 3` is the 64 px RGB DCGAN on a GPU, the case of issue #13):

* CUDA: channels_last was slower and autocast (bf16, fp16) no faster than fp32 with TF32, at
  small and large batches alike, so `auto` is fp32 with TF32 and NCHW there.
* CPU (oneDNN): channels_last makes the training step faster. On a CPU with bf16 units
  (AVX-512 BF16 or AMX) bf16 autocast makes the image step faster still (`--bf16`) and
  bench/quality.py's image rows keep their quality under it, so `auto` is bf16 for images
  there; fp32 on other CPUs (bf16 is emulated there and slower: `--bf16` with oneDNN held
  below AVX-512 BF16) and for point data (the toy rows were measured in fp32 only).

And one rule that keeps `compile: true` from crashing: inductor's convolution_backward meta
kernel predicts NCHW strides for channels_last ConvTranspose chains on CUDA
(pytorch/pytorch#171622), so on CUDA compile never runs with channels_last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger(__name__)

COMPILE_CHANNELS_LAST_BUG = "pytorch/pytorch#171622"

AmpChoice = Literal["off", "tf32", "bf16", "fp16"]
ModelKind = Literal["image", "points"]

# The bench that measured the `auto` choices on CUDA.
_CUDA_BENCH = "bench/train_throughput.py --device cuda --channels 3"
_CUDA_AMP_MEASURED = (
    f"autocast (bf16, fp16) was no faster than fp32 with TF32 for the DCGAN step "
    f"({_CUDA_BENCH}, issue #13)"
)
_CUDA_CL_MEASURED = f"channels_last was slower for the DCGAN step ({_CUDA_BENCH} --ablation)"
# On a CPU with bf16 units: the step's speed-up, and the image rows measured under it.
_CPU_BF16_MEASURED = (
    "a faster image step (bench/train_throughput.py --bf16) with the quality of fp32 "
    "(bench/quality.py image rows)"
)


@dataclass(frozen=True)
class DeviceChoices:
    """What `amp`, `channels_last` and `compile` resolve to on one device, and why.

    `amp`: `off` (fp32, TF32 left at torch's defaults), `tf32` (fp32 with TF32 tensor-core
    matmuls and convolutions), `bf16` or `fp16` (autocast). `warnings` lists the settings the
    user asked for explicitly that were overridden.
    """

    amp: AmpChoice
    channels_last: bool
    compile: bool
    reasons: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """The choices and their reasons as plain values (for logs and metrics files)."""
        return {
            "amp": self.amp,
            "channels_last": self.channels_last,
            "compile": self.compile,
            "reasons": dict(self.reasons),
            "warnings": list(self.warnings),
        }


def choose_device_settings(
    device_type: str,
    model_kind: ModelKind,
    *,
    amp: str = "auto",
    channels_last: bool | str = "auto",
    compile: bool = False,
    cpu_bf16: bool = False,
) -> DeviceChoices:
    """Resolve the user's `amp` / `channels_last` / `compile` for `device_type` and `model_kind`.

    `cpu_bf16`: whether the CPU has bf16 units (`ganforge.device.cpu_has_bf16_units`); only
    read on CPU. Pure: reads no hardware and mutates nothing. Raises ValueError (naming the
    fix) for a setting the device cannot run: `amp: fp16` off CUDA, or an unknown value.
    """
    if model_kind not in ("image", "points"):
        raise ValueError(f"model kind {model_kind!r}: expected 'image' or 'points'")
    amp_choice, amp_reason = _choose_amp(device_type, model_kind, amp, cpu_bf16)
    layout, layout_reason = _choose_channels_last(device_type, model_kind, channels_last)
    warnings: list[str] = []
    if compile and layout and device_type == "cuda":
        # Only an explicit `channels_last: true` gets here: `auto` is already off on CUDA.
        layout = False
        layout_reason = (
            f"off: compile: true with channels_last crashes on CUDA in inductor's "
            f"convolution_backward stride check ({COMPILE_CHANNELS_LAST_BUG})"
        )
        warnings.append(
            f"channels_last: true switched off because compile: true is set and torch.compile "
            f"with channels_last crashes on CUDA ({COMPILE_CHANNELS_LAST_BUG}); set "
            "channels_last: auto (or false) to silence this, or compile: false to keep it"
        )
    compile_reason = "as set" if compile else "off (as set)"
    return DeviceChoices(
        amp=amp_choice,
        channels_last=layout,
        compile=bool(compile),
        reasons={"amp": amp_reason, "channels_last": layout_reason, "compile": compile_reason},
        warnings=tuple(warnings),
    )


def _choose_amp(
    device_type: str, model_kind: ModelKind, amp: str, cpu_bf16: bool
) -> tuple[AmpChoice, str]:
    if amp not in ("auto", "off", "bf16", "fp16"):
        raise ValueError(f"amp {amp!r}: use auto, off, bf16 or fp16")
    if device_type == "cuda":
        if amp == "auto":
            return "tf32", f"auto on CUDA: fp32 with TF32, because {_CUDA_AMP_MEASURED}"
        return amp, "as set"  # type: ignore[return-value]  # off / bf16 / fp16 run on CUDA
    if amp == "fp16":
        raise ValueError(
            f"amp: fp16 needs CUDA (device is {device_type}); use amp: auto, off or bf16"
        )
    if amp == "auto":
        if device_type != "cpu":
            return "off", f"auto on {device_type}: fp32, no autocast (none was measured faster)"
        if model_kind == "points":
            return "off", "auto on cpu: fp32 for point data (the toy rows were measured in fp32)"
        if not cpu_bf16:
            return "off", "auto on cpu: fp32, as this CPU has no bf16 units (bf16 is emulated)"
        return "bf16", f"auto on a cpu with bf16 units: bf16 autocast, {_CPU_BF16_MEASURED}"
    return amp, "as set"  # type: ignore[return-value]


def _choose_channels_last(
    device_type: str, model_kind: ModelKind, channels_last: bool | str
) -> tuple[bool, str]:
    if channels_last != "auto" and not isinstance(channels_last, bool):
        raise ValueError(f"channels_last {channels_last!r}: use auto, true or false")
    if model_kind == "points":
        return False, "off: point data have no image layout"
    if isinstance(channels_last, bool):
        return channels_last, "as set"
    if device_type == "cuda":
        return False, f"auto on CUDA: off, because {_CUDA_CL_MEASURED}"
    if device_type == "cpu":
        return True, (
            "auto on CPU: on, a faster training step with oneDNN "
            "(bench/train_throughput.py --ablation)"
        )
    return False, f"auto on {device_type}: off (not measured there; NCHW is the safe layout)"


def log_choices(choices: DeviceChoices, device_type: str) -> None:
    """Warn about every overridden setting and record the choices at INFO level."""
    for message in choices.warnings:
        log.warning(message)
    log.info(
        "on %s: amp %s (%s); channels_last %s (%s); compile %s",
        device_type,
        choices.amp,
        choices.reasons["amp"],
        choices.channels_last,
        choices.reasons["channels_last"],
        choices.compile,
    )
