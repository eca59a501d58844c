"""ONNX export: one self-contained checked file, dynamic batch, metadata, parity with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from ganforge.export import build_metadata, check_parity, export_generator, to_onnx
from ganforge.inference import create_session
from ganforge.inference.latent import place_in_class
from ganforge.models import GeneratorSpec, build_generator, load_generator, save_generator

UNCOND = GeneratorSpec(arch="dcgan", nz=16, sample_shape=(1, 32, 32), ngf=8, ndf=8)
COND = GeneratorSpec(
    arch="dcgan", nz=16, sample_shape=(3, 16, 16), ngf=8, ndf=8, num_classes=4,
    class_names=("a", "b", "c", "d"),
)  # fmt: skip
# Resize-convolution G (Odena et al. 2016): bilinear Resize ops in the graph.
RESIZE = UNCOND.model_copy(update={"g_upsample": "resize"})
# Latent class: the conditional net fed the class z[:, 0] draws (Erf, Greater, ReduceSum).
LATENT = COND.model_copy(update={"class_prior": (0.1, 0.2, 0.3, 0.4)})


def trained_looking(spec: GeneratorSpec, seed: int = 0) -> torch.nn.Module:
    """An untrained generator with non-trivial BatchNorm statistics and larger weights.

    Freshly initialised DCGAN outputs are ~1e-3, which would make any parity check pass;
    these produce outputs spread over [-1, 1].
    """
    torch.manual_seed(seed)
    G = build_generator(spec)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            elif isinstance(m, torch.nn.ConvTranspose2d | torch.nn.Conv2d):
                m.weight.normal_(0.0, 0.2)
    return G.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    out = tmp_path_factory.mktemp("onnx")
    files = {}
    for name, spec in (("uncond", UNCOND), ("cond", COND), ("resize", RESIZE), ("latent", LATENT)):
        G = trained_looking(spec)
        meta = build_metadata(spec, {"weights": "ema", "run_id": "abc123", "dataset_hash": "h1"})
        path = export_generator(G, spec, out / f"{name}.onnx", opset=18, metadata=meta)
        files[name] = (G, spec, path)
    return files


@pytest.mark.parametrize("name", ["uncond", "cond", "latent"])
def test_file_is_self_contained_checked_and_pinned(exported, name: str) -> None:
    _, spec, path = exported[name]
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(path.name)] == [path.name]
    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(model, full_check=True)
    assert all(not init.external_data for init in model.graph.initializer)
    assert {o.domain: o.version for o in model.opset_import}[""] == 18
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert list(inputs) == (["z", "label"] if spec.conditional else ["z"])
    assert inputs["z"].elem_type == onnx.TensorProto.FLOAT
    assert inputs["z"].shape.dim[0].dim_param  # symbolic batch axis
    assert inputs["z"].shape.dim[1].dim_value == spec.nz
    if spec.conditional:
        assert inputs["label"].elem_type == onnx.TensorProto.INT64
    (output,) = model.graph.output
    assert output.name == "image"
    assert [d.dim_value for d in output.type.tensor_type.shape.dim[1:]] == list(spec.sample_shape)


def test_metadata_props_describe_the_model(exported) -> None:
    import ganforge

    _, spec, path = exported["cond"]
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["nz"] == "16"
    assert json.loads(props["image_shape"]) == [3, 16, 16]
    assert props["channels"] == "3" and props["image_size"] == "16"
    assert props["num_classes"] == "4"
    assert json.loads(props["class_names"]) == ["a", "b", "c", "d"]
    assert json.loads(props["value_range"]) == [-1.0, 1.0]
    assert props["ganforge_version"] == ganforge.__version__
    assert props["mlflow_run_id"] == "abc123"
    assert props["weights"] == "ema" and props["arch"] == "dcgan"
    assert props["dataset_hash"] == "h1"


@pytest.mark.parametrize("name", ["uncond", "cond", "resize", "latent"])
def test_parity_with_pytorch_at_several_batch_sizes(exported, name: str) -> None:
    G, spec, path = exported[name]
    report = check_parity(G, spec, path, batches=[1, 3, 64], atol=1e-4)
    assert set(report.max_abs_diff) == {"1", "3", "64"}
    assert report.passed, report.max_abs_diff
    # the check is not vacuous: the outputs span the value range
    z = torch.randn(8, spec.nz)
    y = torch.arange(8) % spec.num_classes if spec.conditional else None
    with torch.no_grad():
        assert G(z, y).abs().max() > 0.5


def test_a_latent_class_generator_exports_as_z_only_and_draws_every_class(exported) -> None:
    from ganforge.inference import Generator

    G, spec, path = exported["latent"]
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    # no label input for its users, but its classes and their prior, so that apps can ask
    # for a class by placing z₀ (ganforge.inference.latent.place_in_class)
    assert json.loads(props["inputs"]) == ["z"]
    assert props["num_classes"] == "4"
    assert json.loads(props["class_prior"]) == pytest.approx(list(spec.class_prior))
    z = torch.randn(2000, spec.nz, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = G(z).numpy()
    onnx_g = Generator.load(path, provider="cpu")
    assert not onnx_g.metadata.conditional
    assert np.abs(onnx_g.run(z.numpy()) - expected).max() < 1e-4
    shares = np.bincount(G.classes(z).numpy(), minlength=4) / 2000
    np.testing.assert_allclose(shares, spec.class_prior, atol=0.04)
    # a class on request: the file's output is G's for z₀ moved into that class's interval
    assert onnx_g.metadata.latent_class and onnx_g.metadata.input_names == ("z",)
    placed = onnx_g.run(z[:50].numpy(), 2)
    z_placed = z[:50].clone()
    z_placed[:, 0] = torch.from_numpy(
        place_in_class(z[:50, 0].numpy(), np.full(50, 2), spec.class_prior)
    )
    assert (G.classes(z_placed) == 2).all()
    with torch.no_grad():
        assert np.abs(placed - G(z_placed).numpy()).max() < 1e-4


def test_parity_report_fails_beyond_atol(exported) -> None:
    from ganforge.export import ParityError

    G, spec, path = exported["uncond"]
    other = trained_looking(spec, seed=1)
    report = check_parity(other, spec, path, batches=[2], atol=1e-4)
    assert not report.passed
    with pytest.raises(ParityError, match="exceeds atol"):
        report.raise_if_failed()


def test_export_leaves_the_callers_module_alone() -> None:
    G = trained_looking(UNCOND).train()
    to_onnx(G, UNCOND, opset=17, fp16=True)
    assert G.training
    assert next(G.parameters()).dtype == torch.float32


def test_legacy_opset_goes_through_torchscript_exporter(tmp_path: Path) -> None:
    G = trained_looking(COND)
    path = export_generator(G, COND, tmp_path / "g13.onnx", opset=13)
    model = onnx.load(str(path))
    assert {o.domain: o.version for o in model.opset_import}[""] == 13
    assert check_parity(G, COND, path, batches=[1, 5]).passed


def test_fp16_variant_keeps_float32_io_and_a_looser_parity(tmp_path: Path) -> None:
    G = trained_looking(UNCOND)
    path = export_generator(G, UNCOND, tmp_path / "g16.onnx", opset=17, fp16=True)
    session = create_session(path, "cpu")
    assert session.get_inputs()[0].type == "tensor(float)"
    assert session.get_outputs()[0].type == "tensor(float)"
    report = check_parity(G, UNCOND, path, batches=[4], atol=1e-2)
    assert report.passed, report.max_abs_diff
    assert report.worst > 0  # really computed in half precision


def test_ema_weights_are_exported_when_present(tmp_path: Path) -> None:
    G, ema = trained_looking(UNCOND, seed=0), trained_looking(UNCOND, seed=2)
    save_generator(tmp_path / "g.pt", UNCOND, G, ema=ema, extra={"run_id": "r1"})
    loaded, spec, extra = load_generator(tmp_path / "g.pt", use_ema=True)
    meta = build_metadata(spec, extra)
    assert meta.weights == "ema" and meta.mlflow_run_id == "r1"
    path = export_generator(loaded, spec, tmp_path / "g.onnx", opset=17, metadata=meta)
    assert check_parity(ema, spec, path, batches=[2]).passed
    assert not check_parity(G, spec, path, batches=[2]).passed


def test_point_generator_exports_samples(tmp_path: Path) -> None:
    pytest.importorskip("ganforge.models.mlp")
    spec = GeneratorSpec(arch="mlp", nz=4, sample_shape=(2,), ngf=16, ndf=16)
    G = build_generator(spec).eval()
    meta = build_metadata(spec, {"weights": "raw"})
    path = export_generator(G, spec, tmp_path / "toy.onnx", opset=18, metadata=meta)
    session = create_session(path, "cpu")
    assert session.get_outputs()[0].name == "sample"
    out = session.run(None, {"z": np.zeros((5, 4), np.float32)})[0]
    assert out.shape == (5, 2)
    assert check_parity(G, spec, path, batches=[1, 9]).passed
