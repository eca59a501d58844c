"""Exact rewrites of a generator's transposed convolutions into what onnxruntime runs fastest.

Two exact identities let an eval-mode DCGAN generator be exported without ConvTranspose:

* The first ConvTranspose2d (kernel k, stride 1, padding 0) reads a 1×1 input: it is a matrix
  product z @ W.reshape(nz, C·k·k) followed by a reshape to [C, k, k]. onnxruntime runs the
  ConvTranspose as one matrix-vector product per sample; as one Gemm over the batch, with
  BatchNorm and ReLU folded in, the default generator runs faster (bench/onnx_latency.py,
  `ort` against `ort-traced`). This is the default, `rewrite="projection"`.
* A stride-2 ConvTranspose2d (kernel 4, padding 1) is a sub-pixel convolution (Shi et al.
  2016): a 3×3 Conv2d with 4× the output channels, one group per output phase, followed by
  PixelShuffle(2) (ONNX DepthToSpace, CRD mode). Output pixel (2m + r, 2n + s) reads input
  rows m + d for the two d with kernel row r + 1 − 2d in 0..3 (and likewise for columns);
  the other taps of the 3×3 kernel are zero. It does 2.25× the multiply-adds of
  onnxruntime's ConvTranspose (one GEMM plus col2im) and is slower on the CPU
  (bench/onnx_latency.py, `ort-subpx`); it is kept as `rewrite="subpixel"` for runtimes
  where that may differ.

Both are weight transforms of the PyTorch module, made before export on a copy, so the ONNX
file and the module compute the same function (checked by `check_parity` and the tests).
"""

from __future__ import annotations

import copy
from typing import get_args

import torch
from torch import nn

from ganforge.config import Rewrite

REWRITES: tuple[str, ...] = get_args(Rewrite)

_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid)


def _bn_affine(
    bn: nn.BatchNorm2d | None, channels: int, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm2d, per channel; (1, 0) when there is none."""
    if bn is None:
        return like.new_ones(channels), like.new_zeros(channels)
    mean = bn.running_mean if bn.running_mean is not None else like.new_zeros(channels)
    var = bn.running_var if bn.running_var is not None else like.new_ones(channels)
    scale = torch.rsqrt(var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


class _Projection(nn.Module):
    """A stride-1, padding-0 ConvTranspose2d on a 1×1 input (+ BatchNorm, activation) as a
    Linear, the activation, and a reshape to [C, k, k]."""

    def __init__(
        self,
        deconv: nn.ConvTranspose2d,
        bn: nn.BatchNorm2d | None = None,
        act: nn.Module | None = None,
    ) -> None:
        super().__init__()
        c_in, c_out, kh, kw = deconv.weight.shape
        self.shape = (c_out, kh, kw)
        weight = deconv.weight.detach().double()
        bias = deconv.bias.detach().double() if deconv.bias is not None else weight.new_zeros(c_out)
        scale, shift = _bn_affine(bn, c_out, weight)
        weight = weight * scale[None, :, None, None]
        bias = bias * scale + shift
        self.linear = nn.Linear(c_in, c_out * kh * kw)
        with torch.no_grad():
            self.linear.weight.copy_(weight.reshape(c_in, -1).t())
            self.linear.bias.copy_(bias.repeat_interleave(kh * kw))
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x.flatten(1))).reshape(-1, *self.shape)


def subpixel_conv(
    deconv: nn.ConvTranspose2d,
    bn: nn.BatchNorm2d | None = None,
    act: nn.Module | None = None,
) -> nn.Sequential:
    """Conv2d(3×3, 4·C_out) [+ activation] + PixelShuffle(2) equal to `deconv` [+ bn + act].

    `deconv` must have kernel 4, stride 2, padding 1. An eval-mode BatchNorm2d after it is
    folded into the conv's weights and bias; an elementwise activation moves before the
    shuffle (a permutation, so the order does not matter), where onnxruntime fuses it into
    the Conv.
    """
    if not is_stride2_deconv(deconv):
        raise ValueError(f"not a kernel-4, stride-2, padding-1 ConvTranspose2d: {deconv}")
    weight = deconv.weight.detach().double()  # [C_in, C_out, 4, 4]
    c_in, c_out = weight.shape[:2]
    kernel = weight.new_zeros(c_out, 2, 2, c_in, 3, 3)  # (c_out, r, s) is PixelShuffle's order
    for r in (0, 1):
        for d in (-1, 0, 1):
            ky = r + 1 - 2 * d
            if not 0 <= ky < 4:
                continue
            for s in (0, 1):
                for e in (-1, 0, 1):
                    kx = s + 1 - 2 * e
                    if 0 <= kx < 4:
                        kernel[:, r, s, :, d + 1, e + 1] = weight[:, :, ky, kx].t()
    bias = deconv.bias.detach().double() if deconv.bias is not None else weight.new_zeros(c_out)
    scale, shift = _bn_affine(bn, c_out, weight)
    kernel = kernel * scale[:, None, None, None, None, None]
    bias = bias * scale + shift
    conv = nn.Conv2d(c_in, 4 * c_out, 3, 1, 1, bias=True)
    assert conv.bias is not None  # made with bias=True
    with torch.no_grad():
        conv.weight.copy_(kernel.reshape(4 * c_out, c_in, 3, 3))
        conv.bias.copy_(bias.repeat_interleave(4))
    layers = [conv] + ([act] if act is not None else []) + [nn.PixelShuffle(2)]
    return nn.Sequential(*layers)


def _plain_deconv(module: nn.Module, stride: int, padding: int) -> bool:
    """A 2-D transposed conv with this stride and padding, and nothing else unusual."""
    return (
        isinstance(module, nn.ConvTranspose2d)
        and module.stride == (stride, stride)
        and module.padding == (padding, padding)
        and module.output_padding == (0, 0)
        and module.dilation == (1, 1)
        and module.groups == 1
    )


def is_stride2_deconv(module: nn.Module) -> bool:
    """A plain 2-D transposed conv that doubles the size: kernel 4, stride 2, padding 1."""
    return _plain_deconv(module, 2, 1) and module.kernel_size == (4, 4)


def _is_projection(module: nn.Module) -> bool:
    return _plain_deconv(module, 1, 0)


def _rewrite_sequential(
    seq: nn.Sequential, first_is_1x1: bool, subpixel: bool
) -> tuple[nn.Sequential, int]:
    layers, out, count, i = list(seq), [], 0, 0
    while i < len(layers):
        layer = layers[i]
        projection = i == 0 and first_is_1x1 and _is_projection(layer)
        # both tests imply a ConvTranspose2d; the isinstance says so to the type checker
        if not isinstance(layer, nn.ConvTranspose2d) or not (
            projection or (subpixel and is_stride2_deconv(layer))
        ):
            out.append(layer)
            i += 1
            continue
        j = i + 1
        after = layers[j] if j < len(layers) else None
        bn = after if isinstance(after, nn.BatchNorm2d) else None
        j += bn is not None
        after = layers[j] if j < len(layers) else None
        act = after if isinstance(after, _ELEMENTWISE) else None
        j += act is not None
        # of the elementwise activations, ReLU and LeakyReLU are the ones with `inplace`
        if isinstance(act, nn.ReLU | nn.LeakyReLU) and act.inplace:
            act = copy.deepcopy(act)
            act.inplace = False  # its input is now a fresh tensor of the conv; keep it simple
        out.append(_Projection(layer, bn, act) if projection else subpixel_conv(layer, bn, act))
        count += 1
        i = j
    return nn.Sequential(*out), count


def rewrite_for_onnx(
    generator: nn.Module, rewrite: Rewrite = "projection"
) -> tuple[nn.Module, int]:
    """A copy of `generator` (eval mode) with its transposed convs rewritten; (copy, count).

    `rewrite="projection"`: a DCGAN generator's first layer (the stride-1 ConvTranspose2d on
    the 1×1 latent, `net[0]` of a module with `nz`), with the eval-mode BatchNorm2d and
    elementwise activation after it, becomes one Linear. `"subpixel"`: that, and in every
    nn.Sequential each kernel-4 stride-2 ConvTranspose2d (with its BatchNorm2d and
    activation) becomes one sub-pixel convolution. `"none"`: a plain copy. Other modules
    are kept; a generator with no such layers (the MLP) comes back unchanged with count 0.
    The copy computes the same function up to float rounding; it is meant for inference
    only (BatchNorm is folded away).
    """
    if rewrite not in REWRITES:
        raise ValueError(f"rewrite {rewrite!r}: expected one of {', '.join(REWRITES)}")
    model = copy.deepcopy(generator).eval()
    if rewrite == "none":
        return model, 0
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Sequential):
                # DCGANGenerator.net, bare or inside a latent-class or DDP wrapper, is fed
                # z[:, :, None, None]: its first layer sees a 1×1 input.
                first_is_1x1 = name == "net" and hasattr(parent, "nz")
                new, n = _rewrite_sequential(child, first_is_1x1, rewrite == "subpixel")
                if n:
                    setattr(parent, name, new)
                    count += n
    return model, count
