"""The sub-pixel rewrite of transposed convs: exact, in PyTorch and in the exported ONNX file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from ganforge.export import build_metadata, check_parity, export_generator
from ganforge.export.subpixel import rewrite_for_onnx, subpixel_conv
from ganforge.models import GeneratorSpec, build_generator

ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-5


def _varied(G: nn.Module, seed: int = 0) -> nn.Module:
    """Weights and BatchNorm statistics away from their init, so that folding them shows."""
    gen = torch.Generator().manual_seed(seed)
    for module in G.modules():
        if isinstance(module, nn.ConvTranspose2d):
            std = (2.0 / (module.in_channels * 4)) ** 0.5
            module.weight.data = torch.randn(module.weight.shape, generator=gen) * std
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean = torch.randn(n, generator=gen) * 0.3
            module.running_var = torch.rand(n, generator=gen) + 0.5
            module.weight.data = 1 + 0.2 * torch.randn(n, generator=gen)
            module.bias.data = 0.2 * torch.randn(n, generator=gen)
    return G.eval()


SPECS = [
    GeneratorSpec(arch="dcgan", nz=16, sample_shape=(1, 16, 16), ngf=8, ndf=8),
    GeneratorSpec(arch="dcgan", nz=32, sample_shape=(3, 32, 32), ngf=8, ndf=8),
    GeneratorSpec(arch="dcgan", nz=24, sample_shape=(1, 64, 64), ngf=4, ndf=4),
    GeneratorSpec(arch="dcgan", nz=8, sample_shape=(3, 32, 32), ngf=8, ndf=8, num_classes=5),
]


@pytest.mark.parametrize(
    ("c_in", "c_out", "h", "w", "bias"),
    [(3, 5, 4, 4, False), (8, 1, 7, 5, True), (16, 3, 1, 1, True), (2, 2, 16, 9, False)],
)
def test_one_layer_equals_the_transposed_conv(c_in, c_out, h, w, bias):
    torch.manual_seed(c_in * 31 + h)
    deconv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)
    bn = nn.BatchNorm2d(c_out).eval()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, c_in, h, w)
    with torch.no_grad():
        torch.testing.assert_close(subpixel_conv(deconv)(x), deconv(x), atol=ATOL, rtol=0)
        folded = subpixel_conv(deconv, bn, nn.ReLU())(x)
        torch.testing.assert_close(folded, torch.relu(bn(deconv(x))), atol=ATOL, rtol=0)


def test_other_transposed_convs_are_refused():
    with pytest.raises(ValueError, match="stride-2"):
        subpixel_conv(nn.ConvTranspose2d(4, 4, 3, 2, 1))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.sample_shape}-c{s.num_classes}")
def test_rewritten_generator_equals_the_original(spec):
    G = _varied(build_generator(spec))
    before = {k: v.clone() for k, v in G.state_dict().items()}
    R, count = rewrite_for_onnx(G)
    assert count == sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules())
    assert not any(isinstance(m, nn.ConvTranspose2d | nn.BatchNorm2d) for m in R.modules())
    z = torch.randn(6, spec.nz, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(6) % spec.num_classes if spec.conditional else None
    with torch.no_grad():
        expected = G(z, labels)
        assert expected.std() > 0.05  # not a flat image, where a wrong tap would hide
        torch.testing.assert_close(R(z, labels), expected, atol=ATOL, rtol=0)
    # the caller's module is untouched
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())


@pytest.mark.parametrize("spec", [SPECS[1], SPECS[3]], ids=["rgb32", "cond32"])
def test_exported_subpixel_graph_has_no_convtranspose_and_keeps_parity(spec, tmp_path):
    G = _varied(build_generator(spec))
    path = export_generator(
        G, spec, tmp_path / "g.onnx", metadata=build_metadata(spec), subpixel=True
    )
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "ConvTranspose" not in ops and "DepthToSpace" in ops and "Conv" in ops
    report = check_parity(G, spec, path, batches=[1, 7, 64], atol=ATOL)
    assert report.passed, report.as_dict()


def test_mlp_generator_is_left_alone():
    spec = GeneratorSpec(arch="mlp", nz=8, sample_shape=(1, 8, 8))
    R, count = rewrite_for_onnx(build_generator(spec))
    assert count == 0


def test_latency_bench_prints_both_runtimes_per_batch():
    args = ["--image-size", "16", "--ngf", "4", "--repeats", "2", "--batches", "1", "4"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "onnx_latency.py"), *args],
        capture_output=True, text=True, timeout=300, check=True,
        env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    rows = [line.split() for line in out.splitlines() if line[:5].strip() in {"1", "4"}]
    assert len(rows) == 4, out  # batches 1 and 4, wall and CPU tables
    for row in rows:
        assert len(row) == 1 + 1 + 2 * 3  # batch, eager, then (ms, ratio, [best]) per ORT file
    assert "parity max" in out


def test_resize_generator_keeps_its_resize_stages_and_parity(tmp_path):
    # A resize-convolution G (train.g_upsample: resize) has only its 4x4 projection to rewrite;
    # its bilinear stages export as ONNX Resize and must still match PyTorch.
    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 32, 32), ngf=8, g_upsample="resize")
    G = _varied(build_generator(spec))
    for module in G.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.data.normal_(0.0, (2.0 / (module.in_channels * 9)) ** 0.5)
    R, count = rewrite_for_onnx(G)
    assert count == 1
    z = torch.randn(6, spec.nz, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert G(z).std() > 0.05
        torch.testing.assert_close(R(z), G(z), atol=ATOL, rtol=0)
    path = export_generator(
        G, spec, tmp_path / "g.onnx", metadata=build_metadata(spec), subpixel=True
    )
    assert "Resize" in {node.op_type for node in onnx.load(str(path)).graph.node}
    assert check_parity(G, spec, path, batches=[1, 7], atol=ATOL).passed
