"""Class arithmetic a − b + c on averaged latents (`Generator.class_arithmetic`) and its grid."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hostile_models import image_model
from serve_helpers import export_models

from ganforge.inference import (
    ClassArithmetic,
    Generator,
    GeneratorInputError,
    arithmetic_grid,
    latent_arithmetic,
    prng,
    save_image,
)
from ganforge.inference.arithmetic import MAX_PER_CLASS
from ganforge.inference.latent import arithmetic_table, classes_of, place_in_class

PRNG_JS = Path(__file__).resolve().parents[3] / "src/ganforge/inference/web/static/prng.js"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ganforge.models import GeneratorSpec

    out = tmp_path_factory.mktemp("arithmetic")
    dcgan = {"arch": "dcgan", "ngf": 8, "ndf": 8}
    specs = {
        "uncond": GeneratorSpec(nz=8, sample_shape=(1, 16, 16), **dcgan),
        "cond": GeneratorSpec(nz=8, sample_shape=(3, 16, 16), num_classes=4, **dcgan),
        "latent": GeneratorSpec(
            nz=8, sample_shape=(1, 16, 16), num_classes=3, class_prior=(0.2, 0.5, 0.3), **dcgan
        ),
    }
    paths = export_models(out, specs)
    paths["points"] = image_model(out / "points.onnx", nz=4, shape=(2,), num_classes=3)
    return paths


@pytest.fixture(scope="module")
def gens(models) -> dict[str, Generator]:
    return {name: Generator.load(path, provider="cpu", threads=1) for name, path in models.items()}


@pytest.mark.parametrize("name", ["cond", "latent"])
def test_grid_is_rows_a_b_c_result_of_samples_and_mean(gens, name) -> None:
    gen = gens[name]
    got = gen.class_arithmetic(2, 0, 1, per_class=3, seed=5)
    shape = tuple(gen.metadata.sample_shape)
    assert isinstance(got, ClassArithmetic)
    assert got.images.shape == (4, 4, shape[1], shape[2], shape[0])
    assert got.images.dtype == np.uint8
    assert got.latents.shape == (4, 4, gen.nz) and got.latents.dtype == np.float32
    assert got.classes == (2, 0, 1) and got.labels == (2, 0, 1, 1) and got.seed == 5
    np.testing.assert_array_equal(got.result, got.images[3, 3])
    # class k's samples are latents k·MAX_PER_CLASS onward of the seed's stream
    for row, label in enumerate((2, 0, 1)):
        z = gen.latents(3, seed=5, start=label * MAX_PER_CLASS)
        np.testing.assert_array_equal(got.latents[row, :3], z)
        np.testing.assert_array_equal(got.images[row, :3], gen.decode(z, labels=label))
    # so a row depends on its class only, and more samples per class extend it
    other = gen.class_arithmetic(2, 3 if name == "cond" else 2, 0, per_class=4, seed=5)
    np.testing.assert_array_equal(other.images[0, :3], got.images[0, :3])
    np.testing.assert_array_equal(other.images[2, :3], got.images[1, :3])
    assert not np.array_equal(other.images[0, 4], got.images[0, 3])  # a mean of 4, not 3


@pytest.mark.parametrize("name", ["cond", "latent"])
def test_result_is_the_decode_of_the_hand_computed_mean_combination(gens, name) -> None:
    gen = gens[name]
    a, b, c, k = 1, 2, 0, 3
    got = gen.class_arithmetic(a, b, c, per_class=k, seed=11)
    za, zb, zc = (
        gen.latents(k, seed=11, start=label * MAX_PER_CLASS).astype(np.float64)
        for label in (a, b, c)
    )
    mean_a, mean_b, mean_c = za.mean(0), zb.mean(0), zc.mean(0)
    np.testing.assert_allclose(got.latents[3, k], mean_a - mean_b + mean_c, atol=1e-6)
    np.testing.assert_array_equal(got.latents[3, k], latent_arithmetic([za, zc], [zb]))
    # the result is decoded as class c; each mean in its own class
    np.testing.assert_array_equal(got.result, gen.arithmetic([za, zc], [zb], labels=c)[0])
    for row, (label, mean) in enumerate([(a, mean_a), (b, mean_b), (c, mean_c)]):
        want = gen.decode(mean.astype(np.float32)[None], labels=label)[0]
        np.testing.assert_array_equal(got.images[row, k], want)
    # per column, one sample of each class: a_j − b_j + c_j, also as class c
    single = (za + zc - zb).astype(np.float32)
    np.testing.assert_allclose(got.latents[3, :k], single, atol=1e-6)
    np.testing.assert_array_equal(got.images[3, :k], gen.decode(got.latents[3, :k], labels=c))
    # the result is not one of the rows it came from
    assert not np.array_equal(got.result, got.images[2, k])


@pytest.mark.parametrize("name", ["cond", "latent"])
def test_a_minus_a_plus_c_is_c_s_mean(gens, name) -> None:
    got = gens[name].class_arithmetic(1, 1, 2, per_class=2, seed=3)
    np.testing.assert_array_equal(got.latents[3, 2], got.latents[2, 2])
    np.testing.assert_array_equal(got.result, got.images[2, 2])


def test_latent_class_rows_show_their_class(gens) -> None:
    """A latent-class model's z₀ of every row, means and result included, lies in its class."""
    gen = gens["latent"]
    prior = gen.metadata.class_prior
    got = gen.class_arithmetic(0, 2, 1, per_class=4, seed=9)
    for row, label in enumerate(got.labels):
        placed = place_in_class(got.latents[row, :, 0], np.full(5, label), prior)
        np.testing.assert_array_equal(classes_of(placed, prior), label)
    # the decode placed them: the same latents without a class give other images
    assert not np.array_equal(got.images[3], gen.decode(got.latents[3]))


@pytest.mark.parametrize("name", ["cond", "latent"])
def test_same_seed_same_grid_and_truncation(gens, name) -> None:
    gen = gens[name]
    first = gen.class_arithmetic(0, 1, 2, per_class=2, seed=4)
    np.testing.assert_array_equal(first.images, gen.class_arithmetic(0, 1, 2, 2, seed=4).images)
    assert not np.array_equal(first.images, gen.class_arithmetic(0, 1, 2, 2, seed=5).images)
    short = gen.class_arithmetic(0, 1, 2, per_class=2, seed=4, truncation=0.5)
    np.testing.assert_array_equal(short.latents[1, :2], gen.latents(2, 4, 0.5, MAX_PER_CLASS))
    drawn = gen.class_arithmetic(0, 1, 2, per_class=2, seed=None)
    np.testing.assert_array_equal(
        drawn.images, gen.class_arithmetic(0, 1, 2, 2, seed=drawn.seed).images
    )


def test_refusals(gens) -> None:
    with pytest.raises(GeneratorInputError, match="has no classes.*conditional or latent-class"):
        gens["uncond"].class_arithmetic(0, 1, 2)
    with pytest.raises(GeneratorInputError, match="points, not images"):
        gens["points"].class_arithmetic(0, 1, 2)
    cond = gens["cond"]
    with pytest.raises(GeneratorInputError, match="label 4 is out of range.*0..3"):
        cond.class_arithmetic(0, 4, 1)
    with pytest.raises(GeneratorInputError, match="label -1 is out of range"):
        cond.class_arithmetic(-1, 0, 1)
    with pytest.raises(GeneratorInputError, match="not an integer"):
        cond.class_arithmetic(0, "1", 2)  # type: ignore[arg-type]
    with pytest.raises(GeneratorInputError, match="per_class = 0: must be a positive"):
        cond.class_arithmetic(0, 1, 2, per_class=0)
    with pytest.raises(GeneratorInputError, match=f"at most {MAX_PER_CLASS} samples per class"):
        cond.class_arithmetic(0, 1, 2, per_class=MAX_PER_CLASS + 1)
    with pytest.raises(GeneratorInputError, match="truncation"):
        cond.class_arithmetic(0, 1, 2, truncation=0.0)
    assert cond.class_arithmetic(0, 1, 2, per_class=MAX_PER_CLASS).images.shape[1] == 17


def test_arithmetic_table_steps() -> None:
    groups = np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4)
    table = arithmetic_table(groups)
    assert table.shape == (4, 3, 4) and table.dtype == np.float32
    np.testing.assert_array_equal(table[:3, :2], groups)
    np.testing.assert_array_equal(table[:3, 2], groups.mean(axis=1))
    np.testing.assert_array_equal(table[3], table[0] - table[1] + table[2])
    with pytest.raises(ValueError, match=r"\[3, k, nz\]"):
        arithmetic_table(groups[:2])
    with pytest.raises(ValueError, match=r"\[3, k, nz\]"):
        arithmetic_table(groups[:, :0])


def test_arithmetic_grid_layout(tmp_path: Path) -> None:
    from PIL import Image

    # tile (r, c) of 3×2 pixels holds the value 10·r + c + 1
    values = (10 * np.arange(4)[:, None] + np.arange(3)[None] + 1).astype(np.uint8)
    images = np.broadcast_to(values[:, :, None, None, None], (4, 3, 3, 2, 1)).copy()
    grid = arithmetic_grid(images, padding=2, line=200)
    # columns: pad 2, tile 2, pad 2, tile 2, pad 2, line 1, pad 2, tile 2, pad 2
    # rows:    pad 2, (tile 3, pad 2) × 3, line 1, pad 2, tile 3, pad 2
    assert grid.shape == (2 + 3 * 5 + 1 + 2 + 3 + 2, 2 + 2 * 4 + 1 + 2 + 2 + 2, 1)
    xs, ys = [2, 6, 13], [2, 7, 12, 20]
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            assert (grid[y : y + 3, x : x + 2] == values[r, c]).all(), (r, c)
    assert (grid[:, 10] == 200).all() and (grid[17, :] == 200).all()
    tiles = sum(3 * 2 for _ in xs for _ in ys)
    lines = grid.shape[0] + grid.shape[1] - 1
    assert (grid == 0).sum() == grid.size - tiles - lines  # the rest is black padding
    path = save_image(np.repeat(grid, 3, axis=-1), tmp_path / "a.png")
    with Image.open(path) as picture:
        assert picture.mode == "RGB" and picture.size == (grid.shape[1], grid.shape[0])
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    with pytest.raises(ValueError, match="uint8 images"):
        arithmetic_grid(images.astype(np.float32))
    with pytest.raises(ValueError, match="at least 2 rows"):
        arithmetic_grid(images[:, :1])


def test_class_arithmetic_grid_is_the_layout_of_its_images(gens) -> None:
    got = gens["cond"].class_arithmetic(3, 2, 1, per_class=3, seed=0)
    np.testing.assert_array_equal(got.grid(), arithmetic_grid(got.images))
    assert got.grid().shape == (2 + 4 * 18 + 3, 2 + 4 * 18 + 3, 3)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_twin_draws_from_the_same_place_in_the_stream(tmp_path: Path) -> None:
    """The page draws class k's samples from latent k·16 on: prng.js's `start` (odd widths too)."""
    cases = [(0, 3, 33, 0), (5, 4, 7, 3), (7, 2, 8, 32), (2**40 + 7, 3, 1, 5)]
    script = tmp_path / "check.mjs"
    script.write_text(
        f"import {{ normals }} from {json.dumps(PRNG_JS.as_uri())};\n"
        f"const cases = {json.dumps(cases)};\n"
        "const out = cases.map(([s, n, nz, k]) => Array.from(normals(s, n, nz, k)));\n"
        "console.log(JSON.stringify(out));\n"
    )
    run = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for (seed, num, nz, start), got in zip(cases, json.loads(run.stdout), strict=True):
        want = prng.normals(seed, num, nz, start)
        # float64 libm results may differ in the last bit: at most one float32 ulp apart
        np.testing.assert_array_max_ulp(np.asarray(got, np.float32).reshape(num, nz), want, 1)


# ------------------------------------------------------------------ `ganforge arithmetic`


def test_cli_writes_the_librarys_grid(models, gens, tmp_path: Path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from ganforge.cli import app

    out = tmp_path / "arith.png"
    result = CliRunner().invoke(
        app,
        ["arithmetic", "2", "1", "0", "-m", str(models["latent"]), "--per-class", "2"]
        + ["--seed", "7", "-o", str(out), "--provider", "cpu"],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 2 − 1 + 0 (2 per class, seed 7)" in " ".join(result.output.split())
    expected = gens["latent"].class_arithmetic(2, 1, 0, per_class=2, seed=7).grid()
    np.testing.assert_array_equal(np.asarray(Image.open(out)).reshape(expected.shape), expected)


@pytest.mark.parametrize(
    ("model", "args", "message"),
    [
        ("uncond", ["0", "1", "2"], "has no classes"),
        ("cond", ["0", "1", "9"], "label 9 is out of range"),
        ("cond", ["0", "1", "2", "--per-class", str(MAX_PER_CLASS + 1)], "at most"),
        ("cond", ["0", "1", "2", "-o", "grid.jpg"], "give --out a .png name"),
    ],
)
def test_cli_refuses_in_one_line(models, tmp_path: Path, model, args, message) -> None:
    from typer.testing import CliRunner

    from ganforge.cli import app

    result = CliRunner().invoke(
        app, ["arithmetic", *args, "-m", str(models[model]), "--provider", "cpu"]
    )
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "grid.jpg").exists()
