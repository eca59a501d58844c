"""`ganforge serve` as a real server process on loopback: API, limits, errors, concurrency."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serve_helpers import call, export_models, free_port, start_server, stop
from typer.testing import CliRunner

from ganforge.cli import app as cli
from ganforge.inference import Generator, web

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 60


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ganforge.models import GeneratorSpec

    out = tmp_path_factory.mktemp("serve")
    specs = {
        "uncond": GeneratorSpec(arch="dcgan", nz=16, sample_shape=(1, 16, 16), ngf=8, ndf=8),
        "cond": GeneratorSpec(
            arch="dcgan", nz=8, sample_shape=(3, 16, 16), ngf=8, ndf=8, num_classes=3
        ),
    }
    return export_models(out, specs)


@pytest.fixture(scope="module")
def server(models):
    proc, url = start_server(models["cond"], "--max-num", "64")
    yield url
    stop(proc)


def test_health_info_and_openapi(server, models):
    assert call(server, "/healthz")[:2] == (200, "application/json")
    status, _, body = call(server, "/v1/info")
    info = json.loads(body)
    meta = Generator.load(models["cond"], "cpu").metadata
    assert status == 200
    assert info["model"]["nz"] == meta.nz and info["model"]["num_classes"] == 3
    assert info["limits"]["max_num"] == 64
    assert info["latents"]["algorithm"] == "ganforge-normal-v1"
    schema = json.loads(call(server, "/openapi.json")[2])
    assert "/v1/generate" in schema["paths"]
    status, kind, page = call(server, "/docs")
    if web.missing(web.DOCS_FILES):
        assert status == 503 and b"npm" in page
    else:
        assert status == 200 and b"/static/vendor/swagger-ui-bundle.js" in page
        assert call(server, "/static/vendor/swagger-ui-bundle.js")[0] == 200


def test_png_grid_is_byte_identical_to_ganforge_generate(server, models, tmp_path):
    out = tmp_path / "cli.png"
    args = ["generate", "--model", str(models["cond"]), "--num", "6", "--seed", "11",
            "--label", "2", "--out", str(out), "--provider", "cpu"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    status, kind, png = call(server, "/v1/generate", {"num": 6, "seed": 11, "labels": 2})
    assert (status, kind) == (200, "image/png")
    assert png == out.read_bytes()


def test_json_samples_match_the_library(server, models):
    gen = Generator.load(models["cond"], "cpu")
    labels = [0, 1, 2, 2]
    status, _, body = call(
        server, "/v1/generate",
        {"num": 4, "seed": 5, "labels": labels, "truncation": 0.7, "format": "json"},
    )  # fmt: skip
    assert status == 200
    images = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b)))) for b in
              json.loads(body)["images"]]  # fmt: skip
    expected = gen.sample(4, seed=5, labels=labels, truncation=0.7)
    np.testing.assert_array_equal(np.stack(images), expected)
    # truncation does something, and ψ = 1 is the plain draw
    assert not np.array_equal(expected, gen.sample(4, seed=5, labels=labels))
    plain = json.loads(call(server, "/v1/generate", {"num": 1, "seed": 5, "format": "json",
                                                      "truncation": 1.0})[2])  # fmt: skip
    first = np.asarray(Image.open(io.BytesIO(base64.b64decode(plain["images"][0]))))
    np.testing.assert_array_equal(first, gen.sample(1, seed=5)[0])


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"num": 65}, 422, "max_num 64"),
        ({"num": 0}, 422, "num:"),
        ({"seed": -3}, 422, "seed:"),
        ({"truncation": 1.5}, 422, "truncation:"),
        ({"labels": 9, "num": 2}, 422, "out of range"),
        ({"labels": [1, 2], "num": 3}, 422, "2 labels for 3 samples"),
        ({"format": "gif"}, 422, "format:"),
        ({"nmu": 3}, 422, "nmu: Extra inputs"),
        (b"{not json", 422, "json"),
        ({"labels": [1] * 40_000}, 413, "request body over"),
    ],
)
def test_bad_requests_get_a_4xx_with_one_line(server, body, status, words):
    got, kind, reply = call(server, "/v1/generate", body)
    assert got == status and kind == "application/json"
    message = json.loads(reply)["error"]
    assert words.lower() in message.lower() and "\n" not in message


def test_concurrent_requests_are_all_served_correctly(server):
    expected = {
        seed: call(server, "/v1/generate", {"num": 8, "seed": seed})[2] for seed in range(6)
    }
    with ThreadPoolExecutor(max_workers=12) as pool:
        seeds = list(range(6)) * 4
        replies = list(pool.map(
            lambda s: call(server, "/v1/generate", {"num": 8, "seed": s}), seeds
        ))  # fmt: skip
    for seed, (status, _, png) in zip(seeds, replies, strict=True):
        assert status == 200 and png == expected[seed]


def test_point_generator_answers_json_points(tmp_path):
    from ganforge.models import GeneratorSpec

    spec = GeneratorSpec(arch="mlp", nz=4, sample_shape=(2,))
    path = export_models(tmp_path, {"points": spec})["points"]
    proc, url = start_server(path)
    try:
        status, _, body = call(url, "/v1/generate", {"num": 5, "seed": 2, "format": "json"})
        points = np.asarray(json.loads(body)["points"], np.float32)
        np.testing.assert_allclose(points, Generator.load(path, "cpu").sample(5, seed=2))
        status, _, body = call(url, "/v1/generate", {"num": 5})
        assert status == 422 and "format json" in json.loads(body)["error"]
        assert call(url, "/")[0] == 404
    finally:
        stop(proc)


def test_unconditional_model_and_bad_model_file(models, tmp_path):
    proc, url = start_server(models["uncond"])
    try:
        status, _, body = call(url, "/v1/generate", {"num": 2, "labels": 1})
        error = json.loads(body)["error"]
        assert status == 422 and error.startswith("labels: this generator has no classes")
        status, kind, png = call(url, "/v1/generate", {"num": 3, "seed": 1, "nrow": 3})
        assert status == 200 and Image.open(io.BytesIO(png)).size == (2 + 3 * 18, 20)
    finally:
        stop(proc)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    result = CliRunner().invoke(cli, ["serve", "--model", str(bad), "--port", str(free_port())])
    assert result.exit_code == 1 and "not a loadable ONNX model" in result.output


def test_serving_never_imports_torch():
    code = (
        "import sys, ganforge.cli, ganforge.inference.serve, ganforge.inference.web\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})  # fmt: skip
