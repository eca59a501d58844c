"""A class on request: latent-class generators take a label everywhere, classless ones refuse it.

The library, the CLI (with --truncation), the HTTP API and the MLflow pyfunc loader, on
untrained generators exported to ONNX: the class a latent-class file draws for a placed z₀ is
checked against PyTorch's own class rule, k = F⁻¹(Φ(z₀)).
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from typer.testing import CliRunner

from ganforge.cli import app
from ganforge.inference import Generator, GeneratorInputError, ModelMetadata, make_grid
from ganforge.inference.latent import classes_of, normal_cdf, normal_ppf, place_in_class

PRIOR = (0.15, 0.5, 0.05, 0.3)
runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from serve_helpers import export_models

    from ganforge.models import GeneratorSpec

    out = tmp_path_factory.mktemp("classes")
    base = {"arch": "dcgan", "nz": 8, "sample_shape": (1, 16, 16), "ngf": 8, "ndf": 8}
    specs = {
        "latent": GeneratorSpec(**base, num_classes=4, class_prior=PRIOR),
        "cond": GeneratorSpec(**base, num_classes=4),
        "plain": GeneratorSpec(**base),
    }
    return export_models(out, specs)


def test_normal_cdf_and_ppf_match_the_reference() -> None:
    x = np.linspace(-12.0, 12.0, 4001)
    ref = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x])
    assert np.abs(normal_cdf(x) - ref).max() < 1e-14
    p = np.concatenate([np.logspace(-12, -1, 500), np.linspace(0.01, 0.99, 981)])
    ref = np.array([NormalDist().inv_cdf(v) for v in p])
    assert np.abs(normal_ppf(p) - ref).max() < 1e-9


def test_placed_latents_draw_the_class_in_torch_too() -> None:
    import torch

    from ganforge.models.latent_class import _bounds, classes_from_z

    z0 = np.random.default_rng(0).standard_normal(20_000).astype(np.float32)
    inner = _bounds(PRIOR)[1:-1].float()
    for k in range(len(PRIOR)):
        placed = place_in_class(z0, np.full(len(z0), k), PRIOR)
        assert (classes_of(placed, PRIOR) == k).all()
        assert (classes_from_z(torch.from_numpy(placed), inner) == k).all()
    # z₀ ~ N(0, 1) placed in a class is N(0, 1) restricted to its interval: its mean is the
    # truncated normal's, (φ(a) − φ(b)) / (Φ(b) − Φ(a)).
    k, nd = 1, NormalDist()
    a, b = nd.inv_cdf(PRIOR[0]), nd.inv_cdf(PRIOR[0] + PRIOR[1])
    expected = (nd.pdf(a) - nd.pdf(b)) / PRIOR[1]
    placed = place_in_class(z0, np.full(len(z0), k), PRIOR)
    assert abs(placed.mean() - expected) < 0.01


def test_metadata_carries_the_prior(models) -> None:
    meta = Generator.load(models["latent"], "cpu").metadata
    assert meta.latent_class and meta.has_classes and not meta.conditional
    assert meta.num_classes == 4 and meta.class_prior == PRIOR
    assert meta.input_names == ("z",)
    props = meta.to_props()
    assert ModelMetadata.from_props(props) == meta
    plain = Generator.load(models["plain"], "cpu").metadata
    assert not plain.has_classes and plain.class_prior == ()
    bad_priors = ("[0.5, 0.5]", "[0.5, 0.2, 0.2, 0.2]", '[1, 0, 0, "x"]', "[0.5, 0.5, 0.5, -0.5]")
    for bad in bad_priors:
        with pytest.raises(ValueError, match="class_prior|expected a number"):
            ModelMetadata.from_props({**props, "class_prior": bad})


def test_library_gives_the_class_asked_for(models) -> None:
    import torch

    from ganforge.models import GeneratorSpec, build_generator

    gen = Generator.load(models["latent"], "cpu")
    z = gen.latents(12, seed=3)
    # Without a label, the latent decides (the seed's own samples, unchanged).
    np.testing.assert_array_equal(gen.sample(12, seed=3), gen.decode(z))
    # With one, the ONNX output is the conditional G's for that class at the placed z₀.
    spec = GeneratorSpec(
        arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=8, ndf=8, num_classes=4,
        class_prior=PRIOR,
    )  # fmt: skip
    torch.manual_seed(0)
    G = build_generator(spec).eval()
    for module in G.modules():  # as serve_helpers.export_models initialises them
        if isinstance(module, torch.nn.ConvTranspose2d):
            torch.nn.init.normal_(module.weight, 0.0, (2.0 / (module.in_channels * 4)) ** 0.5)
    for k in (0, 2, 3):
        placed = z.copy()
        placed[:, 0] = place_in_class(z[:, 0], np.full(12, k), PRIOR)
        with torch.no_grad():
            want = G.conditional(torch.from_numpy(placed), torch.full((12,), k)).numpy()
        np.testing.assert_allclose(gen.run(z, k), want, atol=1e-4)
    assert gen.labels_for(3) is None
    with pytest.raises(GeneratorInputError, match="out of range"):
        gen.sample(2, labels=4)
    with pytest.raises(GeneratorInputError, match="has no classes"):
        Generator.load(models["plain"], "cpu").sample(2, labels=0)


def test_cli_label_and_truncation(models, tmp_path: Path) -> None:
    gen = Generator.load(models["latent"], "cpu")
    out = tmp_path / "twos.png"
    args = ["generate", "-m", str(models["latent"]), "-n", "6", "--seed", "5", "--label", "2"]
    result = runner.invoke(app, [*args, "--truncation", "0.7", "--nrow", "6", "-o", str(out)])
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(out) as picture:
        shown = np.asarray(picture)
    want = make_grid(gen.sample(6, seed=5, labels=2, truncation=0.7), nrow=6)[..., 0]
    np.testing.assert_array_equal(shown, want)
    # a folder too, batch by batch
    folder = tmp_path / "folder"
    result = runner.invoke(app, [*args, "--truncation", "0.7", "-o", str(folder)])
    assert result.exit_code == 0, result.output
    with Image.open(folder / "sample_0000005.png") as picture:
        np.testing.assert_array_equal(
            np.asarray(picture), gen.sample(6, seed=5, labels=2, truncation=0.7)[5, ..., 0]
        )
    walk = tmp_path / "walk.png"
    walk_args = ["interpolate", "-m", str(models["latent"]), "--label", "1", "--truncation", "0.5"]
    result = runner.invoke(app, [*walk_args, "--rows", "1", "-o", str(walk)])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", "-m", str(models["latent"])], terminal_width=120)
    assert "4, drawn from z₀" in info.output


@pytest.mark.parametrize(
    ("name", "extra", "words"),
    [
        ("plain", ["--label", "1"], "--label 1: this generator has no classes"),
        ("latent", ["--label", "4"], "out of range"),
        ("latent", ["--truncation", "0"], "--truncation = 0.0: must be in (0, 1]"),
        ("latent", ["--truncation", "1.5"], "--truncation = 1.5"),
    ],
)
def test_cli_refusals_are_one_line(models, tmp_path: Path, name, extra, words) -> None:
    out = tmp_path / "x.png"
    result = runner.invoke(app, ["generate", "-m", str(models[name]), "-o", str(out), *extra])
    assert result.exit_code == 1
    assert words in result.output and result.output.count("\n") == 1, result.output
    assert not out.exists()


def test_cli_missing_default_model_says_run_the_pipeline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["generate"], terminal_width=200)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: models/generator.onnx: no such model file (run `./run.sh pipeline` first: it "
        "writes it)"
    )


def test_http_api_label_for_latent_class_and_refusal_without_classes(models) -> None:
    import json

    from serve_helpers import call, start_server, stop

    from ganforge.inference.grid import grid_png

    gen = Generator.load(models["latent"], "cpu")
    proc, url = start_server(models["latent"])
    try:
        info = json.loads(call(url, "/v1/info")[2])["model"]
        assert info["latent_class"] and info["class_prior"] == list(PRIOR)
        status, _, png = call(url, "/v1/generate", {"num": 4, "seed": 2, "labels": 3})
        assert status == 200 and png == grid_png(gen.sample(4, seed=2, labels=3))
    finally:
        stop(proc)
    proc, url = start_server(models["plain"])
    try:
        status, _, body = call(url, "/v1/generate", {"num": 2, "labels": [0, 1]})
        assert status == 422
        assert json.loads(body)["error"] == (
            "labels: this generator has no classes (it was trained without labels); "
            "leave labels out"
        )
    finally:
        stop(proc)


def test_mlflow_pyfunc_loader(models) -> None:
    from mlflow.exceptions import MlflowException

    from ganforge.inference.mlflow_pyfunc import _load_pyfunc

    latent = _load_pyfunc(str(models["latent"]))
    gen = latent.generator
    z = gen.latents(5, seed=9)
    out = latent.predict({"z": z, "label": np.array([1])})["image"]
    np.testing.assert_array_equal(out, gen.run(z, 1))
    np.testing.assert_array_equal(latent.predict(z)["image"], gen.run(z))
    plain = _load_pyfunc(str(models["plain"]))
    cond = _load_pyfunc(str(models["cond"]))
    cases = [
        (plain, {"z": z, "label": np.array([3])}, "label: this generator has no classes"),
        (cond, {"z": z}, "label: this generator is conditional"),
        (latent, {"z": z, "label": np.array([0.5])}, "label: expected integers"),
        (latent, {"z": z, "lable": np.array([1])}, "unknown input 'lable'"),
        (latent, {"z": z[:, :3]}, "z: expected [N, 8]"),
        (latent, {"z": z, "label": np.array([1, 2])}, "label: got 2 labels for 5 rows"),
    ]
    for model, data, words in cases:
        with pytest.raises(MlflowException, match="^" + words.replace("[", r"\[")):
            model.predict(data)
