"""The exact rewrites of transposed convs (Gemm projection, sub-pixel): in PyTorch and in ONNX."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from ganforge.export import REWRITES, build_metadata, check_parity, export_generator
from ganforge.export.rewrite import rewrite_for_onnx, subpixel_conv
from ganforge.models import GeneratorSpec, build_generator

ROOT = Path(__file__).resolve().parents[3]
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
    R, count = rewrite_for_onnx(G, "subpixel")
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
        G, spec, tmp_path / "g.onnx", metadata=build_metadata(spec), rewrite="subpixel"
    )
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "ConvTranspose" not in ops and "DepthToSpace" in ops and "Conv" in ops
    report = check_parity(G, spec, path, batches=[1, 7, 64], atol=ATOL)
    assert report.passed, report.as_dict()


def test_mlp_generator_is_left_alone():
    spec = GeneratorSpec(arch="mlp", nz=8, sample_shape=(1, 8, 8))
    for rewrite in REWRITES:
        R, count = rewrite_for_onnx(build_generator(spec), rewrite)
        assert count == 0


LATENT_CLASS = GeneratorSpec(
    arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=8, num_classes=4,
    class_prior=(0.1, 0.2, 0.3, 0.4),
)  # fmt: skip


@pytest.mark.parametrize(
    "spec", [SPECS[0], SPECS[3], LATENT_CLASS], ids=["plain", "conditional", "latent-class"]
)
def test_default_export_runs_the_projection_as_one_gemm(spec, tmp_path):
    # onnxruntime runs a ConvTranspose on the 1×1 latent as one matrix-vector product per
    # sample; the default export turns it (with its BatchNorm and ReLU) into one Gemm over
    # the batch and keeps the stride-2 transposed convs. The latent-class G nests the DCGAN
    # net one level down, which an earlier rewrite missed.
    G = _varied(build_generator(spec))
    stride2 = sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules()) - 1
    R, count = rewrite_for_onnx(G, "projection")
    assert count == 1
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in R.modules()) == stride2
    path = export_generator(G, spec, tmp_path / "g.onnx", metadata=build_metadata(spec))
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("ConvTranspose") == stride2 and "Gemm" in ops
    assert "BatchNormalization" not in ops
    report = check_parity(G, spec, path, batches=[1, 7, 64], atol=ATOL)
    assert report.passed, report.as_dict()


def test_rewrite_none_traces_the_module_as_it_is(tmp_path):
    spec = SPECS[0]
    G = _varied(build_generator(spec))
    R, count = rewrite_for_onnx(G, "none")
    assert count == 0 and R is not G
    path = export_generator(
        G, spec, tmp_path / "g.onnx", metadata=build_metadata(spec), rewrite="none"
    )
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    deconvs = sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules())
    assert ops.count("ConvTranspose") == deconvs and "Gemm" not in ops
    assert check_parity(G, spec, path, batches=[1, 7], atol=ATOL).passed


def test_unknown_rewrite_is_refused_with_the_choices():
    G = build_generator(SPECS[0])
    with pytest.raises(ValueError, match="rewrite 'fast': expected one of none, projection"):
        rewrite_for_onnx(G, "fast")  # type: ignore[arg-type]


def test_latency_bench_times_every_contender_in_its_own_worker():
    args = [
        "--image-size", "16", "--ngf", "4", "--rounds", "1", "--calls", "2",
        "--threads", "1", "--batches", "1", "64",
    ]  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "onnx_latency.py"), *args],
        capture_output=True, text=True, timeout=300, check=True,
        env={"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    contenders = ["eager", "eager-tuned", "ort", "ort-traced", "ort-subpx", "ganforge"]
    for table in ("wall-clock, 1 thread(s) each", "CPU time, one thread each"):
        block = out.split(table)[1].splitlines()
        rows = {line.split()[0]: line.split()[1:] for line in block[2:8]}
        assert list(rows) == contenders, out
        for cells in rows.values():  # batch 1 and 64: "median [best]" in ms
            assert len(cells) == 4 and all(float(c.strip("[]")) > 0 for c in cells), out
    assert "parity max |ORT − torch|: ort " in out
    assert re.search(r"multiply-adds per sample: \d+\.\d\d M, \d+ % in the stride-2", out), out
    # the verdicts name the measured ratios against both baselines, whichever way they fall
    for line in ("ort ÷ eager:", "ort ÷ eager-tuned:", "ganforge ÷ eager:"):
        assert re.search(re.escape(line) + r" \d+\.\d\d× \(1 thread\(s\)\)", out), out


def test_resize_generator_keeps_its_resize_stages_and_parity(tmp_path):
    # A resize-convolution G (train.g_upsample: resize) has only its 4x4 projection to rewrite;
    # its bilinear stages export as ONNX Resize and must still match PyTorch.
    spec = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 32, 32), ngf=8, g_upsample="resize")
    G = _varied(build_generator(spec))
    for module in G.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.data.normal_(0.0, (2.0 / (module.in_channels * 9)) ** 0.5)
    R, count = rewrite_for_onnx(G, "subpixel")
    assert count == 1
    z = torch.randn(6, spec.nz, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert G(z).std() > 0.05
        torch.testing.assert_close(R(z), G(z), atol=ATOL, rtol=0)
    path = export_generator(
        G, spec, tmp_path / "g.onnx", metadata=build_metadata(spec), rewrite="subpixel"
    )
    assert "Resize" in {node.op_type for node in onnx.load(str(path)).graph.node}
    assert check_parity(G, spec, path, batches=[1, 7], atol=ATOL).passed
